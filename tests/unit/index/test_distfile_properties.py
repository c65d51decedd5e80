"""
Properties of the file name parser and the name normaliser, over generated
names: never an exception, only normalised PEP 508 projects, round trips for
valid wheel and sdist names.
"""

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name
from packaging.version import Version

from twistedpypi.index.distfile import SDIST_SUFFIXES, normalize_name, parse_filename

NORMALIZED = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")

# PEP 508 names: letters and digits, with ._- inside.
names = st.from_regex(r"\A[A-Za-z0-9](?:[A-Za-z0-9._-]{0,30}[A-Za-z0-9])?\Z")
versions = st.builds(
    lambda release, pre, post, dev: Version(
        ".".join(map(str, release)) + pre + post + dev
    ),
    st.lists(st.integers(0, 999), min_size=1, max_size=4),
    st.sampled_from(["", "a1", "b2", "rc3"]),
    st.sampled_from(["", ".post1"]),
    st.sampled_from(["", ".dev4"]),
)
tags = st.sampled_from(["py3-none-any", "cp311-cp311-manylinux_2_17_x86_64", "py2.py3-none-any", "cp312-abi3-win_amd64"])
hostile_text = st.text(
    alphabet=st.characters() | st.sampled_from(list("-_.<>\"'&/\\%\x00\r\n ")),
    max_size=60,
)
suffixes = st.sampled_from([".whl", ".egg", *SDIST_SUFFIXES, ""])


@settings(max_examples=300)
@given(hostile_text, suffixes)
def test_parsing_any_name_never_raises_and_gives_only_normalised_projects(stem, suffix):
    dist = parse_filename(stem + suffix)
    if dist is not None:
        assert NORMALIZED.match(dist.project)
        assert normalize_name(dist.project) == dist.project
        assert dist.kind in ("bdist_wheel", "sdist", "bdist_egg")
        assert re.fullmatch(r"[A-Za-z0-9._+!-]+", dist.version)


@given(names, versions, tags)
def test_valid_wheel_names_round_trip(name, version, tag):
    wheel_name = re.sub(r"[-_.]+", "_", name)
    dist = parse_filename(f"{wheel_name}-{version}-{tag}.whl")
    assert dist is not None
    assert dist.project == canonicalize_name(name)
    assert Version(dist.version) == version
    assert dist.kind == "bdist_wheel"


@given(names, versions, st.sampled_from(SDIST_SUFFIXES))
def test_valid_sdist_names_round_trip(name, version, suffix):
    dist = parse_filename(f"{name}-{version}{suffix}")
    assert dist is not None
    assert dist.project == canonicalize_name(name)
    assert Version(dist.version) == version
    assert dist.kind == "sdist"


@given(st.text(max_size=40))
def test_normalising_is_idempotent(name):
    once = normalize_name(name)
    assert normalize_name(once) == once


@given(names)
def test_normalising_matches_packaging(name):
    assert normalize_name(name) == canonicalize_name(name)
