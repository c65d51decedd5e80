"""
The upload form, in memory: the streaming multipart parser (with the body
split at every position), the form it fills, and the upload checks.
"""

import hashlib

import pytest

from twistedpypi.uploads.form import (
    UploadForm,
    check_digests,
    check_filename,
    check_upload,
)
from twistedpypi.uploads.multipart import (
    MAX_PART_HEADERS,
    MultipartError,
    MultipartParser,
    UploadRejected,
    boundary_from_content_type,
)

BOUNDARY = b"----boundary42"


def multipart(fields, files=(), boundary=BOUNDARY):
    """A multipart/form-data body: fields as (name, value), files as (name, filename, bytes)."""
    body = b""
    for name, value in fields:
        body += b"--" + boundary + b"\r\n"
        body += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        body += value.encode() + b"\r\n"
    for name, filename, data in files:
        body += b"--" + boundary + b"\r\n"
        body += f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n"
        body += data + b"\r\n"
    body += b"--" + boundary + b"--\r\n"
    return body


class MemoryContent:
    """A content sink keeping the file in memory."""

    def __init__(self):
        self.filename = None
        self.data = bytearray()
        self.closed = False
        self.writes = 0

    def open(self, filename):
        self.filename = filename

    def write(self, data):
        self.writes += 1
        self.data += data

    def close(self):
        self.closed = True


def parse(body, chunks=None, boundary=BOUNDARY):
    content = MemoryContent()
    form = UploadForm(content=content)
    parser = MultipartParser(boundary, form)
    if chunks is None:
        parser.feed(body)
    else:
        for chunk in chunks:
            parser.feed(chunk)
    parser.close()
    return form, content


# Data that looks like the boundary's start, CRLFs and dashes: the places a
# streaming parser gets wrong.
TRICKY = b"\r\n--\r\n----boundary4\r\n--" + BOUNDARY[:-1] + b"x\r\n\r\n-" * 3 + bytes(range(256))

BODY = multipart(
    [(":action", "file_upload"), ("name", "demo"), ("version", "1.0"), ("sha256_digest", "ab")],
    [("content", "demo-1.0.tar.gz", TRICKY), ("gpg_signature", "demo-1.0.tar.gz.asc", b"SIG")],
)


def test_a_form_is_read_whole():
    form, content = parse(BODY)
    assert form.fields == {":action": "file_upload", "name": "demo", "version": "1.0", "sha256_digest": "ab"}
    assert form.action == "file_upload"
    assert content.filename == form.filename == "demo-1.0.tar.gz"
    assert bytes(content.data) == TRICKY
    assert content.closed and form.content_complete
    assert form.content_size == len(TRICKY)
    assert form.files == {"gpg_signature": b"SIG"}


def test_a_form_split_in_two_at_every_position_reads_the_same():
    for position in range(len(BODY) + 1):
        form, content = parse(BODY, [BODY[:position], BODY[position:]])
        assert bytes(content.data) == TRICKY, position
        assert form.fields["version"] == "1.0", position
        assert form.files == {"gpg_signature": b"SIG"}, position


def test_a_form_fed_byte_by_byte_reads_the_same():
    form, content = parse(BODY, [BODY[i : i + 1] for i in range(len(BODY))])
    assert bytes(content.data) == TRICKY
    assert form.fields["name"] == "demo"


def test_a_large_file_streams_through_in_pieces_without_being_buffered():
    data = hashlib.sha256(b"x").digest() * 40000  # 1.28 MB
    body = multipart([("name", "demo")], [("content", "demo-1.0.tar.gz", data)])
    form, content = parse(body, [body[i : i + 65536] for i in range(0, len(body), 65536)])
    assert bytes(content.data) == data
    assert content.writes > 10


def test_preamble_epilogue_and_quoted_boundary_are_accepted():
    body = b"preamble text\r\n" + multipart([("name", "demo")]) + b"epilogue"
    assert boundary_from_content_type(b'multipart/form-data; boundary="' + BOUNDARY + b'"') == BOUNDARY
    form, _ = parse(body)
    assert form.fields == {"name": "demo"}


@pytest.mark.parametrize(
    "content_type, boundary",
    [
        (b"multipart/form-data; boundary=abc", b"abc"),
        (b"Multipart/Form-Data; charset=utf-8; boundary=abc", b"abc"),
        (b"multipart/form-data", None),
        (b"multipart/form-data; boundary=", None),
        (b"multipart/form-data; boundary=" + b"x" * 71, None),
        (b"application/x-www-form-urlencoded", None),
        (b"text/xml", None),
        (None, None),
    ],
)
def test_boundary_from_content_type(content_type, boundary):
    assert boundary_from_content_type(content_type) == boundary


@pytest.mark.parametrize(
    "body",
    [
        b"--" + BOUNDARY + b"\r\nno colon here\r\n\r\nvalue\r\n--" + BOUNDARY + b"--\r\n",
        b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nvalue\r\n--" + BOUNDARY + b"--\r\n",
        b"--" + BOUNDARY + b"\r\nContent-Disposition: attachment\r\n\r\nv\r\n--" + BOUNDARY + b"--\r\n",
        b"--" + BOUNDARY + b"garbage\r\n",
        b"--" + BOUNDARY + b"\r\n" + b"X-Long: " + b"a" * (MAX_PART_HEADERS + 10) + b"\r\n\r\n",
    ],
    ids=["header-without-colon", "no-disposition", "not-form-data", "junk-after-boundary", "huge-headers"],
)
def test_garbage_is_a_multipart_error(body):
    with pytest.raises(MultipartError) as raised:
        parse(body)
    assert raised.value.code == 400


def test_a_body_without_the_closing_boundary_is_an_error():
    body = multipart([("name", "demo")])[:-10]
    with pytest.raises(MultipartError, match="closing boundary"):
        parse(body)


def test_a_body_that_is_not_multipart_at_all_is_an_error():
    with pytest.raises(MultipartError):
        parse(b"name=demo&version=1.0")


def test_two_content_files_are_refused():
    body = multipart([], [("content", "a-1.0.tar.gz", b"a"), ("content", "a-1.0.zip", b"b")])
    with pytest.raises(UploadRejected, match="more than one"):
        parse(body)


def test_an_oversized_field_is_refused():
    body = multipart([("description", "x" * (3 * 1024 * 1024))])
    with pytest.raises(UploadRejected) as raised:
        parse(body)
    assert raised.value.code == 413


def test_rfc5987_and_escaped_file_names_are_read():
    body = (
        b"--" + BOUNDARY + b"\r\n"
        b"Content-Disposition: form-data; name=\"content\"; filename*=UTF-8''d%C3%A9mo-1.0.tar.gz\r\n\r\n"
        b"data\r\n--" + BOUNDARY + b"--\r\n"
    )
    form, _ = parse(body)
    assert form.filename == "d\u00e9mo-1.0.tar.gz"
    body = body.replace(b"filename*=UTF-8''d%C3%A9mo-1.0.tar.gz", b'filename="a\\"b.tar.gz"')
    form, _ = parse(body)
    assert form.filename == 'a"b.tar.gz'


@pytest.mark.parametrize(
    "filename",
    ["", "../demo-1.0.tar.gz", "dir/demo-1.0.tar.gz", "dir\\demo-1.0.tar.gz", "demo\x00-1.0.tar.gz",
     ".demo-1.0.tar.gz", "demo-1.0.tar.gz.tmp", "demo..1.0.tar.gz", None],
)
def test_file_names_that_are_not_plain_base_names_are_refused(filename):
    with pytest.raises(UploadRejected) as raised:
        check_filename(filename)
    assert raised.value.code == 400


def form_for(filename, name="demo", version="1.0", **fields):
    form = UploadForm()
    form.filename = filename
    form.fields.update(name=name, version=version, **fields)
    return form


def test_a_matching_wheel_and_sdist_pass():
    assert check_upload(form_for("demo-1.0-py3-none-any.whl")).project == "demo"
    assert check_upload(form_for("My_Pkg-2.0.tar.gz", name="my.pkg", version="2.0.0")).project == "my-pkg"


@pytest.mark.parametrize(
    "filename, name, version, reason",
    [
        ("demo-1.0.exe", "demo", "1.0", "not a wheel or sdist"),
        ("README.txt", "demo", "1.0", "not a wheel or sdist"),
        ("other-1.0.tar.gz", "demo", "1.0", "not of project"),
        ("demo-1.1.tar.gz", "demo", "1.0", "not version"),
        ("demo-1.0.tar.gz", "", "1.0", "name"),
    ],
)
def test_mismatched_or_unknown_files_are_refused(filename, name, version, reason):
    with pytest.raises(UploadRejected, match=reason):
        check_upload(form_for(filename, name=name, version=version))


def test_digests_are_compared_case_insensitively_and_any_mismatch_refused():
    data = b"payload"
    digests = {
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "blake2_256": hashlib.blake2b(data, digest_size=32).hexdigest(),
        "blake2_512": hashlib.blake2b(data).hexdigest(),
    }
    good = form_for("demo-1.0.tar.gz", sha256_digest=digests["sha256"].upper(), md5_digest=digests["md5"])
    check_digests(good, digests)
    # The stdlib distutils sends a 64-byte BLAKE2b as blake2_256_digest.
    check_digests(form_for("demo-1.0.tar.gz", blake2_256_digest=digests["blake2_512"]), digests)
    check_digests(form_for("demo-1.0.tar.gz"), digests)  # no digest at all is fine
    bad = form_for("demo-1.0.tar.gz", sha256_digest="0" * 64)
    with pytest.raises(UploadRejected, match="sha256_digest does not match"):
        check_digests(bad, digests)
    with pytest.raises(UploadRejected, match="not a hexadecimal"):
        check_upload(form_for("demo-1.0.tar.gz", md5_digest="xyz"))
