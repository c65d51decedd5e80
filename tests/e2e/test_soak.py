"""
A bounded soak test against the real C{twistd -n pypi}: for
L{SOAK_SECONDS}, threads upload distinct files, download what was stored
and read the index pages, each request on a new connection, all at once.
At the end every upload is on disk byte for byte, listed in C{/simple/}
with the right sha256, served identically, and the index is the directory.
"""

import base64
import hashlib
import http.client
import os
import random
import re
import threading
import time

from tests.distributions import sdist_bytes, wheel_bytes, write
from tests.forms import BOUNDARY, upload_form

SOAK_SECONDS = float(os.environ.get("TWISTEDPYPI_SOAK_SECONDS", "30"))
UPLOADERS, DOWNLOADERS, READERS = 3, 4, 3
USER, PASSWORD = "soak", "soak-pass"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def call(server, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def links(page: bytes) -> dict[str, str]:
    """File name -> sha256 of every link on a simple page."""
    return {
        name: digest
        for name, digest in re.findall(rb'href="[^"]*?([^/"#]+)#sha256=([0-9a-f]{64})"', page)
        for name, digest in [(name.decode(), digest.decode())]
    }


def test_mixed_uploads_downloads_and_reads_end_consistent(start_server, packages, tmp_path):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{USER}:{{SHA}}{base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()}\n")
    stored: dict[str, bytes] = {}
    for built in (wheel_bytes("seed", "1.0"), sdist_bytes("seed", "1.0")):
        write(packages, built)
        stored[built[0]] = built[1]
    server = start_server("-P", str(htpasswd), "--disable-fallback", str(packages))

    lock = threading.Lock()
    errors: list[str] = []
    counts = {"uploads": 0, "downloads": 0, "reads": 0, "bytes_up": 0, "bytes_down": 0}
    deadline = time.monotonic() + SOAK_SECONDS

    def failed(message):
        with lock:
            errors.append(message)

    def uploader(number):
        rng = random.Random(number)
        version = 0
        while time.monotonic() < deadline and not errors:
            version += 1
            project = f"soak-{number}-{rng.randrange(3)}"
            if rng.random() < 0.5:
                filename, data = wheel_bytes(project, f"{version}.0")
            else:
                # Random bulk, up to a body that streams through several writes.
                filename = f"{project.replace('-', '_')}-{version}.0.tar.gz"
                data = os.urandom(rng.choice([1, 50, 700, 2500]) * 1024)
            body = upload_form(filename, data, name=project, version=f"{version}.0",
                               sha256_digest=hashlib.sha256(data).hexdigest())
            status, text = call(server, "POST", "/", body, {
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Authorization": AUTHORIZATION})
            if status != 200:
                failed(f"upload {filename}: {status} {text[:200]!r}")
                return
            with lock:
                stored[filename] = data
                counts["uploads"] += 1
                counts["bytes_up"] += len(data)

    def downloader(number):
        rng = random.Random(100 + number)
        while time.monotonic() < deadline and not errors:
            with lock:
                filename, data = rng.choice(list(stored.items()))
            status, body = call(server, "GET", "/packages/" + filename)
            if status != 200 or body != data:
                failed(f"download {filename}: {status}, {len(body)} bytes, identical={body == data}")
                return
            with lock:
                counts["downloads"] += 1
                counts["bytes_down"] += len(body)

    def reader(number):
        rng = random.Random(200 + number)
        while time.monotonic() < deadline and not errors:
            with lock:
                filename = rng.choice(list(stored))
            project = re.split(r"-\d", filename)[0].replace("_", "-")
            path, headers = rng.choice([
                ("/simple/", {}),
                (f"/simple/{project}/", {}),
                (f"/simple/{project}/", {"Accept": "application/vnd.pypi.simple.v1+json"}),
                (f"/pypi/{project}/json", {}),
                ("/packages/", {}),
            ])
            status, body = call(server, "GET", path, headers=headers)
            # A file stored before this read began is on every page after.
            if status != 200 or (path.startswith("/simple/" + project) and filename.encode() not in body):
                failed(f"read {path}: {status}, lists {filename}: {filename.encode() in body}")
                return
            with lock:
                counts["reads"] += 1

    threads = [threading.Thread(target=uploader, args=(i,)) for i in range(UPLOADERS)]
    threads += [threading.Thread(target=downloader, args=(i,)) for i in range(DOWNLOADERS)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SOAK_SECONDS + 120)
    elapsed = time.monotonic() - started
    assert not errors, errors[:5]
    print(f"\nsoak: {elapsed:.1f}s, {counts}")
    assert counts["uploads"] >= 20 and counts["downloads"] >= 100 and counts["reads"] >= 100, counts

    # Every upload is on disk, byte for byte, and nothing else is.
    on_disk = sorted(os.listdir(packages))
    assert on_disk == sorted(stored), set(on_disk) ^ set(stored)
    for filename, data in stored.items():
        assert (packages / filename).read_bytes() == data, filename
    # The index is the directory: every project, every file, the right hash,
    # and the bytes served are the bytes stored.
    status, page = call(server, "GET", "/simple/")
    projects = set(re.findall(rb'href="[^"]*?([^/"]+)/"', page))
    expected = {re.split(r"-\d", name)[0].replace("_", "-").lower().encode() for name in stored}
    assert projects == expected
    listed: dict[str, str] = {}
    for project in expected:
        status, page = call(server, "GET", f"/simple/{project.decode()}/")
        assert status == 200
        listed.update(links(page))
    assert listed == {name: hashlib.sha256(data).hexdigest() for name, data in stored.items()}
    status, page = call(server, "GET", "/packages/")
    assert set(re.findall(rb'href="([^"/#]+)"', page)) == {name.encode() for name in stored}
    for filename, data in stored.items():
        assert call(server, "GET", "/packages/" + filename) == (200, data)
    assert "Traceback" not in server.log()
