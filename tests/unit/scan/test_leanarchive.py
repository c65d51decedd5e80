"""
The lean archive readers answer exactly what zipfile and tarfile answer, or
step aside (L{Unusual}) and let them.
"""

import bz2
import gzip
import io
import os
import tarfile
import tempfile
import zipfile
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.distributions import core_metadata, sdist_bytes, wheel_bytes
from twistedpypi.index.distfile import parse_filename
from twistedpypi.scan import describe as storage
from twistedpypi.scan import metadata
from twistedpypi.scan.leanarchive import Unusual

# Duplicate names are on purpose: the first match is the one read.
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")

WHEEL = "demo-1.0-py3-none-any.whl"
SDIST = "demo-1.0.tar.gz"
ZIP_SDIST = "demo-1.0.zip"
SMALL_METADATA = 200


def reference(filename: str, kind: str, data: bytes):
    """What zipfile and tarfile read from a real file holding C{data}."""
    with tempfile.TemporaryFile() as stream:
        stream.write(data)
        stream.flush()
        try:
            return metadata._read(filename, kind, stream)
        except metadata.UNREADABLE:
            return None


def lean(filename: str, kind: str, data: bytes):
    """What the lean readers answer, or L{Unusual}."""
    try:
        return metadata._read_lean(filename, kind, data)
    except Unusual:
        return Unusual


def read(filename: str, kind: str, data: bytes):
    """What read_core_metadata answers for a file holding C{data}."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, filename)
        with open(path, "wb") as stream:
            stream.write(data)
        return metadata.read_core_metadata(path, kind)


def assert_agrees(filename: str, kind: str, data: bytes) -> None:
    expected = reference(filename, kind, data)
    answer = lean(filename, kind, data)
    assert answer is Unusual or answer == expected
    assert read(filename, kind, data) == expected


# generated archives

_NAMES = st.sampled_from(
    [
        "demo-1.0.dist-info/METADATA",
        "demo-1.0/PKG-INFO",
        "other-2.0.dist-info/METADATA",
        "demo-1.0/sub/PKG-INFO",
        "PKG-INFO",
        "/PKG-INFO",
        "demo-1.0/",
        "demo/__init__.py",
        "x" * 120 + "/PKG-INFO",
        "d\u00e9mo-1.0/PKG-INFO",
        "demo-1.0.dist-info/RECORD",
    ]
)
_CONTENT = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda version: core_metadata("demo", "1.0", metadata_version=version), st.sampled_from(["2.1", "2.2", "x"])),
    # Near the size bound the tests below put on metadata.
    st.integers(0, 3).map(lambda n: b"Name: demo\n" + b"y" * (SMALL_METADATA - 11 - 2 + n)),
)


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """C{data}, or it cut short, with bytes changed, or with bytes around it."""
    how = draw(st.sampled_from(["intact", "cut", "flip", "prepend", "append"]))
    if how == "cut":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if how == "flip" and data:
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 3))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if how == "prepend":
        return draw(st.binary(min_size=1, max_size=40)) + data
    if how == "append":
        return data + draw(st.binary(min_size=1, max_size=40))
    return data


@st.composite
def zips(draw) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content, method in draw(
            st.lists(
                st.tuples(_NAMES, _CONTENT, st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])),
                max_size=5,
            )
        ):
            archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), content, compress_type=method)
        if draw(st.booleans()):
            archive.comment = draw(st.binary(max_size=10))
    return draw(damaged(buffer.getvalue()))


@st.composite
def tars(draw) -> bytes:
    buffer = io.BytesIO()
    tar_format = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as archive:
        for name, content, kind, pax in draw(
            st.lists(
                st.tuples(
                    _NAMES,
                    _CONTENT,
                    st.sampled_from([tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE]),
                    st.dictionaries(st.sampled_from(["comment", "path", "size", "mtime"]), st.text(max_size=8), max_size=2),
                ),
                max_size=5,
            )
        ):
            member = tarfile.TarInfo(name)
            member.type = kind
            member.size = len(content) if kind in tarfile.REGULAR_TYPES else 0
            if tar_format == tarfile.PAX_FORMAT:
                member.pax_headers = pax
            try:
                archive.addfile(member, io.BytesIO(content) if member.size else None)
            except ValueError:
                continue  # a name USTAR cannot hold
    packed = gzip.compress(buffer.getvalue(), compresslevel=draw(st.sampled_from([0, 1, 9])))
    if draw(st.booleans()):
        # A second gzip member, as concatenated gzip files have.
        packed += gzip.compress(draw(st.binary(max_size=600)))
    return draw(damaged(packed))


_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(zips(), st.sampled_from([(WHEEL, "bdist_wheel"), (ZIP_SDIST, "sdist")]))
def test_lean_zip_reader_agrees_with_zipfile(data, file):
    assert_agrees(*file, data)


@_SETTINGS
@given(tars())
def test_lean_tar_reader_agrees_with_tarfile(data):
    assert_agrees(SDIST, "sdist", data)


@_SETTINGS
@given(tars(), st.integers(1, 4), st.integers(1, 3000), st.integers(0, 600))
def test_lean_tar_reader_agrees_with_tarfile_near_its_bounds(data, members, unpacked, extended):
    with mock.patch.multiple(
        metadata,
        MAX_METADATA_SIZE=SMALL_METADATA,
        MAX_ARCHIVE_MEMBERS=members,
        MIN_UNPACKED_SCAN=unpacked,
        MAX_UNPACK_RATIO=1,
        MAX_TAR_EXTENDED_HEADER=extended,
    ):
        assert_agrees(SDIST, "sdist", data)


@_SETTINGS
@given(zips(), st.integers(0, 4), st.integers(0, 400))
def test_lean_zip_reader_agrees_with_zipfile_near_its_bounds(data, members, directory):
    with mock.patch.multiple(
        metadata, MAX_METADATA_SIZE=SMALL_METADATA, MAX_ZIP_MEMBERS=members, MAX_ZIP_DIRECTORY_SIZE=directory
    ):
        assert_agrees(WHEEL, "bdist_wheel", data)


# the plain cases are answered by the lean readers


def test_plain_wheels_and_sdists_are_read_by_the_lean_readers():
    for filename, data in (wheel_bytes("demo", "1.0"), sdist_bytes("demo", "1.0", metadata_version="2.2")):
        kind = parse_filename(filename).kind
        answer = lean(filename, kind, data)
        assert answer is not Unusual and answer is not None
        assert answer == reference(filename, kind, data)


def _tar_gz(*members: tuple[tarfile.TarInfo, bytes], tar_format=tarfile.PAX_FORMAT, compress=gzip.compress) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as archive:
        for member, content in members:
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    return compress(buffer.getvalue())


def _pkg_info(name: str = "demo-1.0/PKG-INFO") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), core_metadata("demo", "1.0", metadata_version="2.2")


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_are_read_by_the_lean_reader(tar_format):
    data = _tar_gz(
        (tarfile.TarInfo("demo-1.0/" + "long/" * 40 + "file.py"), b"x"),
        _pkg_info(),
        tar_format=tar_format,
    )
    answer = lean(SDIST, "sdist", data)
    assert answer is not Unusual and answer is not None
    assert answer == reference(SDIST, "sdist", data)


def test_a_pax_path_renames_the_member_for_the_lean_reader():
    member, content = _pkg_info("demo-1.0/NOT-PKG-INFO")
    member.pax_headers = {"path": "demo-1.0/PKG-INFO"}
    data = _tar_gz((member, content))
    assert lean(SDIST, "sdist", data).raw == content


# what the lean readers leave to zipfile and tarfile


def _unusual_but_read(filename: str, kind: str, data: bytes) -> None:
    assert lean(filename, kind, data) is Unusual
    expected = reference(filename, kind, data)
    assert expected is not None
    assert read(filename, kind, data) == expected


def _zip(comment: bytes = b"", method=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr("demo-1.0.dist-info/METADATA", core_metadata("demo", "1.0"))
        archive.comment = comment
    return buffer.getvalue()


def test_a_zip_with_a_comment_is_left_to_zipfile():
    _unusual_but_read(WHEEL, "bdist_wheel", _zip(comment=b"hello"))


def test_a_zip_after_other_data_is_left_to_zipfile():
    _unusual_but_read(WHEEL, "bdist_wheel", b"#!/bin/sh\n" + _zip())


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_other_zip_compression_methods_are_left_to_zipfile(method):
    _unusual_but_read(WHEEL, "bdist_wheel", _zip(method=method))


def test_a_zip64_end_record_is_left_to_zipfile():
    buffer = io.BytesIO()
    with mock.patch.object(zipfile, "ZIP_FILECOUNT_LIMIT", 0):
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("demo-1.0.dist-info/METADATA", core_metadata("demo", "1.0"))
    _unusual_but_read(WHEEL, "bdist_wheel", buffer.getvalue())


def test_an_encrypted_member_is_left_to_zipfile_which_refuses_it():
    data = bytearray(_zip(method=zipfile.ZIP_STORED))
    central = data.rindex(zipfile.stringCentralDir)
    data[central + 8] |= 0x1  # the encryption flag
    assert lean(WHEEL, "bdist_wheel", bytes(data)) is Unusual
    assert read(WHEEL, "bdist_wheel", bytes(data)) is None


def test_a_bzip2_sdist_is_left_to_tarfile():
    _unusual_but_read("demo-1.0.tar.bz2", "sdist", _tar_gz(_pkg_info(), compress=bz2.compress))


def test_a_global_pax_header_is_left_to_tarfile():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "hi"}) as archive:
        member, content = _pkg_info()
        member.size = len(content)
        archive.addfile(member, io.BytesIO(content))
    _unusual_but_read(SDIST, "sdist", gzip.compress(buffer.getvalue()))


def test_a_signed_tar_checksum_is_left_to_tarfile():
    member, content = _pkg_info()
    member.uname = "\u00e9" * 10  # bytes above 127 make the signed sum differ
    raw = bytearray(_tar_gz((member, content), tar_format=tarfile.GNU_FORMAT, compress=lambda data: data))
    signed = 256 + sum((b - 256 if b > 127 else b) for b in raw[:148] + raw[156:512])
    raw[148:156] = b"%06o\0 " % signed
    _unusual_but_read(SDIST, "sdist", gzip.compress(bytes(raw)))


# the bounds


def test_zips_listing_too_many_members_are_not_read():
    with mock.patch.object(metadata, "MAX_ZIP_MEMBERS", 0):
        assert lean(WHEEL, "bdist_wheel", _zip()) is None
        assert read(WHEEL, "bdist_wheel", _zip()) is None


def test_oversized_metadata_is_not_read_by_the_lean_readers():
    with mock.patch.object(metadata, "MAX_METADATA_SIZE", 10):
        assert lean(WHEEL, "bdist_wheel", _zip()) is None
        assert lean(SDIST, "sdist", _tar_gz(_pkg_info())) is None


def test_the_lean_tar_reader_stops_after_the_member_bound():
    data = _tar_gz(*[(tarfile.TarInfo(f"demo-1.0/{n}.py"), b"x") for n in range(5)], _pkg_info())
    with mock.patch.object(metadata, "MAX_ARCHIVE_MEMBERS", 5):
        assert lean(SDIST, "sdist", data) is None
    with mock.patch.object(metadata, "MAX_ARCHIVE_MEMBERS", 6):
        assert lean(SDIST, "sdist", data) is not None


def test_the_lean_tar_reader_stops_at_the_unpacking_bound():
    data = _tar_gz((tarfile.TarInfo("demo-1.0/big.bin"), bytes(100_000)), _pkg_info())
    with mock.patch.multiple(metadata, MIN_UNPACKED_SCAN=50_000, MAX_UNPACK_RATIO=1):
        assert lean(SDIST, "sdist", data) is None
        assert read(SDIST, "sdist", data) is None


def test_an_oversized_long_name_is_left_to_tarfile_which_refuses_it():
    data = _tar_gz((tarfile.TarInfo("demo-1.0/" + "n" * 300), b"x"), _pkg_info(), tar_format=tarfile.GNU_FORMAT)
    with mock.patch.object(metadata, "MAX_TAR_EXTENDED_HEADER", 100):
        assert lean(SDIST, "sdist", data) is Unusual
        assert read(SDIST, "sdist", data) is None


def test_files_larger_than_the_lean_size_are_described_by_the_reference(tmp_path):
    filename, data = sdist_bytes("demo", "1.0", metadata_version="2.2")
    path = tmp_path / filename
    path.write_bytes(data)
    status = path.stat()
    state = storage.FileState(str(path), parse_filename(filename), status.st_size, status.st_mtime_ns)
    small = storage.describe(state, ("sha256",), False)
    with mock.patch.object(storage, "MAX_LEAN_SIZE", 10), mock.patch.object(metadata, "MAX_LEAN_SIZE", 10):
        with mock.patch.object(metadata, "_read_lean", side_effect=AssertionError("lean reader used")):
            large = storage.describe(state, ("sha256",), False)
    assert small == large
    assert small.metadata == reference(filename, "sdist", data).raw
