"""
--watch poll: two servers on one package directory, as replicas on shared
storage are, each seeing what the other stored only by looking.
"""

import time

from tests.distributions import wheel_bytes
from tests.forms import fetch, twine
from tests.passwords import PASSWORD, USER, make_htpasswd
from tests.waiting import until


def test_an_upload_through_one_server_is_listed_by_the_other_within_two_seconds(start_server, packages, tmp_path):
    htpasswd = make_htpasswd(tmp_path / "htpasswd", "-B")
    servers = [
        start_server(
            "--watch", "poll:0.3", "-P", str(htpasswd), "--disable-fallback",
            "--describe-cache", str(tmp_path / f"describe-{node}.json"), str(packages),
        )
        for node in ("a", "b")
    ]
    first, second = servers
    assert all("polling every 0.3s" in server.log() for server in servers)
    filename, data = wheel_bytes("shared", "1.0")
    wheel = tmp_path / "dist" / filename
    wheel.parent.mkdir()
    wheel.write_bytes(data)

    twine("--repository-url", first.url + "/", "-u", USER, "-p", PASSWORD, str(wheel))
    stored = time.monotonic()
    assert filename.encode() in fetch(first.url + "/simple/shared/")[1]
    assert until(lambda: filename.encode() in fetch(second.url + "/simple/shared/")[1], timeout=2.0), second.log()
    assert time.monotonic() - stored < 2.0
    status, body = fetch(second.url + "/packages/" + filename)
    assert (status, body) == (200, data)
