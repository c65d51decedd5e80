"""
Describing a file keeps its metadata's spelling of the project name only
when that is an ASCII project name normalising to the file's: a look-alike
such as C{\\u212aelvin} (KELVIN SIGN) is not even stored, so no description
cache or page built from the description can carry it.
"""

import pytest

from tests.distributions import KELVIN, wheel_named_in_metadata, write
from twistedpypi.scan.describe import describe, scan


@pytest.mark.parametrize(
    "project, metadata_name, stored",
    [
        ("kelvin", KELVIN, None),
        ("kelvin", "Kelvin", "Kelvin"),
        ("demo_pkg", "Demo.Pkg", "Demo.Pkg"),
        ("demo_pkg", "other", None),
    ],
)
def test_only_an_ascii_spelling_of_the_project_is_stored_as_its_display_name(
    tmp_path, project, metadata_name, stored
):
    path = write(tmp_path, wheel_named_in_metadata(project, "1.0", metadata_name))
    (state,) = scan([str(tmp_path)]).files.values()
    dist = describe(state, ("sha256",), signed=False)
    assert dist.metadata is not None and metadata_name.encode() in dist.metadata
    assert dist.path == path
    assert dist.display_name == stored
