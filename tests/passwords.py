"""
A user and a password file for protected servers, and plain requests with
or without credentials.
"""

import base64
import hashlib
import http.client
import os
import shutil

from tests.clients import run

USER, PASSWORD = "alice", "s3cret-pass"

HTPASSWD = shutil.which("htpasswd")
"""Apache's htpasswd, which writes password files of every scheme."""


def make_htpasswd(path, scheme="-B", user=USER, password=PASSWORD):
    """Add C{user} to the password file at C{path} (made if missing) with htpasswd's C{scheme} flag."""
    create = [] if os.path.exists(path) else ["-c"]
    run([HTPASSWD, *create, "-b", scheme, str(path), user, password])
    return path


def request(server, method, path, headers=None, body=None, auth=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    headers = dict(headers or {})
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    result = response.status, response.getheaders(), response.read()
    connection.close()
    return result


def sha1_entry(user, password):
    return f"{user}:{{SHA}}{base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()}\n"
