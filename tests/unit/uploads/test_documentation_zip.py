"""
The check of a C{doc_upload}'s zip (L{twistedpypi.uploads.docs}): what
pypiserver's C{zipfile.ZipFile(...).getinfo("index.html")} accepts, read one
central directory entry at a time.
"""

import io
import zipfile

import pytest

from twistedpypi.uploads.docs import documentation_zip_problem


def zip_bytes(names, comment=b"", **options):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", **options) as archive:
        for name in names:
            archive.writestr(name, f"<p>{name}</p>")
        archive.comment = comment
    return buffer.getvalue()


def check(tmp_path, data):
    path = tmp_path / "docs.zip"
    path.write_bytes(data)
    return documentation_zip_problem(str(path))


@pytest.mark.parametrize(
    "data",
    [
        zip_bytes(["index.html"]),
        zip_bytes(["_static/a.css", "api/index.html", "index.html"], compression=zipfile.ZIP_DEFLATED),
        zip_bytes(["index.html"], comment=b"x" * 60000),
        b"#!/bin/sh\nexit 0\n" * 100 + zip_bytes(["index.html"]),
    ],
    ids=["plain", "deflated-among-others", "long-comment", "prepended-data"],
)
def test_a_zip_with_index_html_at_its_top_is_accepted(tmp_path, data):
    assert check(tmp_path, data) is None


def test_a_zip64_archive_is_read_through_its_zip64_end_record(tmp_path):
    # More than 65535 entries: zipfile writes the ZIP64 end record.
    names = [f"p/{i}" for i in range(65536)] + ["index.html"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, b"")
    data = buffer.getvalue()
    assert b"PK\x06\x06" in data[-200:]
    assert check(tmp_path, data) is None
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("index.html")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "not a zip archive"),
        (b"%PDF-1.4 not a zip at all" * 50, "not a zip archive"),
        (zip_bytes(["docs/index.html", "readme.txt"]), "no index.html at its top"),
        (zip_bytes([]), "no index.html at its top"),
        (zip_bytes(["index.html"])[:-30], "not a zip archive"),
    ],
    ids=["empty", "not-a-zip", "index-html-not-at-top", "empty-zip", "truncated"],
)
def test_anything_else_is_refused_with_the_reason(tmp_path, data, problem):
    found = check(tmp_path, data)
    assert found is not None and problem in found
    with pytest.raises(Exception):
        zipfile.ZipFile(io.BytesIO(data)).getinfo("index.html")


def test_a_damaged_central_directory_is_refused(tmp_path):
    data = bytearray(zip_bytes(["a.html", "index.html"]))
    directory = data.rfind(b"PK\x01\x02")
    data[directory : directory + 4] = b"XXXX"
    assert "damaged" in check(tmp_path, bytes(data))
