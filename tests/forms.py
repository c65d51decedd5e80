"""
Upload forms as twine sends them, and the requests that carry them to a
running server.
"""

import base64
import http.client
import sys
import urllib.request

from tests.clients import run
from tests.passwords import PASSWORD, USER

BOUNDARY = "----twistedpypi-test-boundary"


def twine(*arguments, check=True, **kwargs):
    return run([sys.executable, "-m", "twine", "upload", "--disable-progress-bar", "--non-interactive", *arguments], check=check, **kwargs)


def fetch(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def auth_header(user=USER, password=PASSWORD):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def form_body(fields, files=(), boundary=BOUNDARY):
    body = b""
    for name, value in fields:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        body += value.encode() + b"\r\n"
    for name, filename, data in files:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def upload_form(filename, data, name="demo", version="1.0", **extra):
    fields = [(":action", "file_upload"), ("name", name), ("version", version), ("protocol_version", "1")]
    fields += list(extra.items())
    return form_body(fields, [("content", filename, data)])


def post(server, body, content_type=f"multipart/form-data; boundary={BOUNDARY}", path="/", headers=None, auth=True):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    all_headers = {"Content-Type": content_type}
    if auth:
        all_headers["Authorization"] = auth_header()
    all_headers.update(headers or {})
    connection.request("POST", path, body=body, headers=all_headers)
    response = connection.getresponse()
    result = response.status, response.reason, response.read(), response.headers
    connection.close()
    return result
