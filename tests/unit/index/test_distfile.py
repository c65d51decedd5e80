import pytest

from twistedpypi.index.distfile import normalize_name, parse_filename, version_sort_key


@pytest.mark.parametrize(
    "filename, project, version, kind",
    [
        ("Demo_Pkg-1.0-py3-none-any.whl", "demo-pkg", "1.0", "bdist_wheel"),
        ("demo_pkg-2.0rc1.tar.gz", "demo-pkg", "2.0rc1", "sdist"),
        ("Foo.Bar-1.0.zip", "foo-bar", "1.0", "sdist"),
        ("foo-1.0.tar.bz2", "foo", "1.0", "sdist"),
        ("foo-1.0.tgz", "foo", "1.0", "sdist"),
        ("foo-1.0.tar.xz", "foo", "1.0", "sdist"),
        ("my-old-pkg-1.0.tar.gz", "my-old-pkg", "1.0", "sdist"),
        ("foo-1.0-py2.7.egg", "foo", "1.0", "bdist_egg"),
        ("numpy-1.26.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "numpy", "1.26.0", "bdist_wheel"),
    ],
)
def test_distribution_file_names_give_project_version_and_kind(filename, project, version, kind):
    dist = parse_filename(filename)
    assert (dist.project, dist.version, dist.kind) == (project, version, kind)


@pytest.mark.parametrize(
    "filename",
    [
        "README.txt",
        "foo-1.0.tar.gz.asc",
        ".foo-1.0.tar.gz",
        ".upload-foo-1.0.tar.gz.tmp",
        "foo-1.0.tar.gz~",
        "foo-1.0.tar.gz.part",
        "not-a-wheel.whl",
        "foo-1.0.tar.gz.metadata",
        "../foo-1.0.tar.gz",
    ],
)
def test_other_files_are_not_distributions(filename):
    assert parse_filename(filename) is None


@pytest.mark.parametrize(
    "name, normalized",
    [("Django", "django"), ("zope.interface", "zope-interface"), ("A__B--C..D", "a-b-c-d"), ("pkg_Lib", "pkg-lib")],
)
def test_names_are_normalized_as_pep_503_says(name, normalized):
    assert normalize_name(name) == normalized


def test_versions_sort_by_pep_440():
    versions = ["1.10", "1.2", "1.0rc1", "1.0", "1.0.post1", "2.0.dev1", "0.9"]
    assert sorted(versions, key=version_sort_key) == ["0.9", "1.0rc1", "1.0", "1.0.post1", "1.2", "1.10", "2.0.dev1"]


def test_unparseable_versions_sort_before_valid_ones():
    assert sorted(["1.0", "weird-version"], key=version_sort_key) == ["weird-version", "1.0"]
