"""
The index's yanks (PEP 592) and project statuses (PEP 792): kept by path
and by name, applied to files as they come, and changing the pages.
"""

from twistedpypi.index.distfile import parse_filename
from twistedpypi.index.markers import ProjectStatus, format_status, parse_status, yank_reason
from twistedpypi.index.model import DistributionFile, PackageIndex


def dist(filename, directory="/srv"):
    return DistributionFile(filename, directory, parse_filename(filename), 10, 1, b"\0" * 32)


def test_a_yank_made_before_its_file_arrives_is_applied_when_it_does():
    index = PackageIndex()
    index.mark(yanks={"/srv/demo-1.0.tar.gz": "broken"})
    index.update(added=[dist("demo-1.0.tar.gz"), dist("demo-2.0.tar.gz")])
    assert index.file("demo-1.0.tar.gz").yanked == "broken"
    assert index.file("demo-2.0.tar.gz").yanked is None


def test_yanking_and_unyanking_forgets_the_projects_pages_and_bumps_the_serial():
    index = PackageIndex()
    index.update(added=[dist("demo-1.0.tar.gz")])
    project = index.project("demo")
    project.cached("html", lambda: None)
    serial = index.serial
    index.mark(yanks={"/srv/demo-1.0.tar.gz": ""})
    assert index.file("demo-1.0.tar.gz").yanked == ""
    assert project.pages == {} and index.serial == serial + 1
    assert project.files["demo-1.0.tar.gz"].yanked == ""
    index.mark(yanks={"/srv/demo-1.0.tar.gz": None})
    assert index.file("demo-1.0.tar.gz").yanked is None
    assert index.serial == serial + 2


def test_a_quarantined_project_offers_no_files_and_an_archived_one_takes_no_uploads():
    index = PackageIndex()
    index.update(added=[dist("demo-1.0.tar.gz")])
    index.mark(statuses={"demo": ProjectStatus("quarantined", "malware")})
    assert index.project("demo").offered_files() == []
    assert index.offered_file("demo-1.0.tar.gz") is None
    assert index.file("demo-1.0.tar.gz") is not None
    index.mark(statuses={"demo": ProjectStatus("archived")})
    assert index.offered_file("demo-1.0.tar.gz") is not None
    assert not index.status_of("demo").takes_uploads
    index.mark(statuses={"demo": None})
    assert index.status_of("demo").status == "active" and "demo" not in index.statuses


def test_a_status_set_before_the_project_has_files_is_its_status_when_they_come():
    index = PackageIndex()
    index.mark(statuses={"demo": ProjectStatus("deprecated", "use other")})
    index.update(added=[dist("demo-1.0.tar.gz")])
    assert index.project("demo").status == ProjectStatus("deprecated", "use other")


def test_marker_contents_are_read_forgivingly_and_bounded():
    assert yank_reason(b"  broken on 3.12\n") == "broken on 3.12"
    assert yank_reason(b"a\nb\x00c") == "a b c"
    assert len(yank_reason(b"x" * 100_000)) <= 1000
    assert parse_status(b"Archived\nno longer maintained\n") == ProjectStatus("archived", "no longer maintained")
    assert parse_status(b"quarantined") == ProjectStatus("quarantined", None)
    assert parse_status(b"sleeping\n") is None
    status = ProjectStatus("archived", "done")
    assert parse_status(format_status(status)) == status
