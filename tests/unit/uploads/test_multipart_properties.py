"""
Properties of the streaming multipart parser, over generated forms and
garbage: a body split anywhere reads as it does whole, generated forms come
back field for field and byte for byte, and nothing but the parser's own
refusal (L{UploadRejected}, answered 400 or 413) ever comes out of it, with
what it holds back bounded at every step.
"""

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from twistedpypi.uploads.form import UploadForm
from twistedpypi.uploads.multipart import (
    MAX_BOUNDARY_LINE,
    MAX_PART_HEADERS,
    MultipartParser,
    UploadRejected,
)

# RFC 2046 boundary characters, 1 to 70 of them.
boundaries = st.text(
    alphabet="0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?",
    min_size=1,
    max_size=70,
).map(str.encode)
field_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20
).filter(lambda name: name != "content")
# Values full of what trips a streaming parser: CRLFs, dashes, NULs.
tricky = st.sampled_from(["\r\n", "--", "\r\n--", "-", "\r", "\n", "\x00"])
values = st.lists(st.text(max_size=10) | tricky, max_size=12).map("".join)
file_bytes = st.lists(
    st.binary(max_size=200) | tricky.map(str.encode), max_size=20
).map(b"".join)
file_names = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)


def quote(text: str) -> str:
    """A quoted-string for a Content-Disposition parameter."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_form(boundary: bytes, fields, files, preamble=b"", epilogue=b"") -> bytes:
    body = preamble
    for name, value in fields:
        body += b"--" + boundary + b"\r\n"
        body += f"Content-Disposition: form-data; name={quote(name)}\r\n\r\n".encode()
        body += value.encode() + b"\r\n"
    for name, filename, data in files:
        body += b"--" + boundary + b"\r\n"
        body += f"Content-Disposition: form-data; name={quote(name)}; filename={quote(filename)}\r\n".encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    return body + b"--" + boundary + b"--\r\n" + epilogue


class MemoryContent:
    def __init__(self):
        self.filename = None
        self.data = bytearray()
        self.closed = False

    def open(self, filename):
        self.filename = filename

    def write(self, data):
        self.data += data

    def close(self):
        self.closed = True


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    """The body cut at the given positions (modulo its length)."""
    points = sorted({c % (len(body) + 1) for c in cuts})
    chunks, start = [], 0
    for point in points:
        chunks.append(body[start:point])
        start = point
    chunks.append(body[start:])
    return chunks


def bound(boundary: bytes) -> int:
    """The most bytes the parser may hold back between chunks."""
    return max(MAX_PART_HEADERS + 3, MAX_BOUNDARY_LINE + 1, len(boundary) + 3)


def parse(boundary: bytes, chunks: list[bytes]):
    """
    Feed the chunks; the outcome as ("ok", fields, files, filename, data)
    or ("refused", code).  Fails the test if the parser holds back more
    than its bound, or raises anything but L{UploadRejected}.
    """
    content = MemoryContent()
    form = UploadForm(content=content)
    parser = MultipartParser(boundary, form)
    try:
        for chunk in chunks:
            parser.feed(chunk)
            assert parser.buffered <= bound(boundary)
        parser.close()
    except UploadRejected as refusal:
        assert refusal.code in (400, 413)
        return ("refused",)
    return ("ok", form.fields, form.files, form.filename, bytes(content.data), content.closed)


forms = st.tuples(
    boundaries,
    st.lists(st.tuples(field_names, values), max_size=6),
    st.lists(st.tuples(field_names, file_names, file_bytes), max_size=2),
    st.booleans(),
    file_names,
    file_bytes,
)


def build(boundary, fields, small_files, with_content, filename, data):
    files = list(small_files)
    if with_content:
        files.append(("content", filename, data))
    body = encode_form(boundary, fields, files)
    # A delimiter inside a value would end its part: not a valid form.
    inner = b"".join(v.encode() for _, v in fields) + b"".join(d for _, _, d in files)
    assume(b"\r\n--" + boundary not in b"\r\n" + inner + b"\r\n")
    return body, fields, files


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(forms, st.lists(st.integers(min_value=0), max_size=12))
def test_a_generated_form_round_trips_however_it_is_split(form, cuts):
    boundary = form[0]
    body, fields, files = build(*form)
    outcome = parse(boundary, split(body, cuts))
    assert outcome == parse(boundary, [body])
    assert outcome[0] == "ok"
    _, got_fields, got_files, filename, data, closed = outcome
    assert got_fields == dict(fields)
    assert got_files == {name: data for name, _, data in files if name != "content"}
    content = [f for f in files if f[0] == "content"]
    if content:
        assert (filename, data, closed) == (content[0][1], content[0][2], True)
    else:
        assert (filename, data) == (None, b"")


PADDED = b"--b" + b" " * (MAX_BOUNDARY_LINE + 40) + b'\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--b--\r\n'
LONG_HEADERS = b"--b\r\nContent-Disposition: form-data; name=a\r\nX: " + b"x" * (MAX_PART_HEADERS - 43) + b"\r\n\r\nv\r\n--b--\r\n"


@settings(max_examples=300, deadline=None)
@given(boundaries, st.binary(max_size=2000), st.lists(st.integers(min_value=0), max_size=12))
# Found by hand: padding after a boundary, and headers just at the bound,
# were accepted whole and refused when split before the line break.
@example(b"b", PADDED, [280])
@example(b"b", LONG_HEADERS, [MAX_PART_HEADERS + 6])
def test_garbage_is_refused_the_same_however_it_is_split(boundary, body, cuts):
    assert parse(boundary, split(body, cuts)) == parse(boundary, [body])


# Valid forms, damaged: bytes inserted, deleted or replaced at random places,
# which reach far deeper into the parser than random bytes do.
damage = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.integers(min_value=0),
        st.binary(min_size=1, max_size=8) | st.sampled_from([b"\r\n", b"--", b"\r\n\r\n", b'"', b";", b"\\"]),
    ),
    min_size=1,
    max_size=4,
)


def mutate(body: bytes, damages, boundary: bytes) -> bytes:
    for kind, position, data in damages:
        position %= len(body) + 1
        if kind == "insert":
            body = body[:position] + data + body[position:]
        elif kind == "delete":
            body = body[:position] + body[position + len(data):]
        else:
            body = body[:position] + data + body[position + len(data):]
    return body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(forms, damage, st.lists(st.integers(min_value=0), max_size=8))
def test_a_damaged_form_is_read_or_refused_never_a_crash_and_the_same_however_split(form, damages, cuts):
    boundary = form[0]
    body, _, _ = build(*form)
    body = mutate(body, damages, boundary)
    assert parse(boundary, split(body, cuts)) == parse(boundary, [body])


@settings(max_examples=50, deadline=None)
@given(boundaries, st.sampled_from([b"a", b"\r", b"\r\n", b"-", b" ", b"\r\n\r"]), st.integers(1, 4096))
def test_endless_headers_or_padding_are_refused_with_a_bounded_buffer(boundary, filler, chunk):
    """What the parser holds back stays bounded, however the filler streams in."""
    starts = [
        b"--" + boundary + b"\r\nX-Filler: ",  # inside a part's headers
        b"--" + boundary,  # after a boundary, before its line break
        b"preamble",
    ]
    for start in starts:
        content = MemoryContent()
        parser = MultipartParser(boundary, UploadForm(content=content))
        refused = False
        try:
            parser.feed(start)
            for _ in range((MAX_PART_HEADERS * 2) // chunk + 2):
                parser.feed(filler * chunk)
                assert parser.buffered <= bound(boundary)
        except UploadRejected:
            refused = True
        assert parser.buffered <= bound(boundary) + len(filler) * chunk
        if start != b"preamble":
            assert refused or parser.complete
