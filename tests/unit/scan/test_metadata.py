import io
import tarfile
import zipfile

from tests.distributions import core_metadata, sdist_bytes, wheel_bytes, write
from twistedpypi.scan.metadata import MAX_METADATA_SIZE, read_core_metadata


def test_wheel_metadata_is_read_and_servable(tmp_path):
    path = write(tmp_path, wheel_bytes("demo", "1.0", requires=("dep>=1",), requires_python=">=3.8"))
    metadata = read_core_metadata(path, "bdist_wheel")
    assert metadata.servable
    assert metadata.raw == core_metadata("demo", "1.0", requires=("dep>=1",), requires_python=">=3.8")
    assert metadata.fields()["requires-python"] == ">=3.8"
    assert metadata.fields()["requires-dist"] == ["dep>=1"]


def test_sdist_metadata_is_servable_only_from_version_2_2(tmp_path):
    old = write(tmp_path, sdist_bytes("old", "1.0", metadata_version="2.1"))
    new = write(tmp_path, sdist_bytes("new", "1.0", metadata_version="2.2"))
    assert not read_core_metadata(old, "sdist").servable
    assert read_core_metadata(new, "sdist").servable


def test_a_wheel_that_is_not_a_zip_has_no_metadata(tmp_path):
    path = tmp_path / "bad-1.0-py3-none-any.whl"
    path.write_bytes(b"this is not a zip file")
    assert read_core_metadata(str(path), "bdist_wheel") is None


def test_a_truncated_sdist_has_no_metadata(tmp_path):
    filename, data = sdist_bytes("cut", "1.0")
    path = tmp_path / filename
    path.write_bytes(data[: len(data) // 2])
    assert read_core_metadata(str(path), "sdist") is None


def test_huge_metadata_is_not_read(tmp_path):
    path = tmp_path / "bomb-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb-1.0.dist-info/METADATA", b"Name: bomb\n" + b"x" * (MAX_METADATA_SIZE + 10))
    assert read_core_metadata(str(path), "bdist_wheel") is None


def test_metadata_outside_the_top_folder_is_ignored(tmp_path):
    path = tmp_path / "evil-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        data = core_metadata("evil", "1.0", metadata_version="2.2")
        member = tarfile.TarInfo("../PKG-INFO")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    assert read_core_metadata(str(path), "sdist") is None


def test_metadata_that_is_not_utf8_still_reads(tmp_path):
    path = tmp_path / "latin-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("latin-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: latin\nVersion: 1.0\nAuthor: J\xf6rg\n")
    metadata = read_core_metadata(str(path), "bdist_wheel")
    assert metadata.fields()["name"] == "latin"


# header_fields reads only the head of core metadata; it must agree with
# parsing all of it, whatever the bytes.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from twistedpypi.index.coremetadata import header_fields, parse_core_metadata

_PIECES = [b"\n", b"\r", b"\r\n", b"\n\n", b" ", b"\t", b":", b": ", b"Name", b"name", b" Name",
           b"Requires-Python", b"requires-python ", b"Summary", b">=3.8", b"x", b"\xc3", b"\xa9", b"\xff"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_header_fields_agree_with_parsing_the_whole_file(pieces):
    raw = b"".join(pieces)
    wanted = frozenset({"name", "requires-python"})
    whole = {key: value for key, value in parse_core_metadata(raw)[0] if key in wanted}
    assert header_fields(raw, wanted) == whole


def test_header_fields_come_from_the_head_only():
    raw = core_metadata("Demo", "1.0").rstrip(b"\n") + b"\n\nName: not-a-header\nRequires-Python: >=9\n"
    assert header_fields(raw, frozenset({"name", "requires-python"}))["name"] == "Demo"
