"""
What marker files found on disk change in the index: events name some, a
full scan names them all.
"""

from twistedpypi.index.markers import ProjectStatus
from twistedpypi.scan.plan import plan_markers


def test_markers_that_came_change_only_what_differs():
    changes = plan_markers(
        {"/p/a-1.0.tar.gz": "old"},
        {},
        {"/p/a-1.0.tar.gz.yanked": b"old\n", "/p/b-1.0.tar.gz.yanked": b"", "/p/My_Proj.status": b"archived\nbye"},
        complete=False,
    )
    assert changes.yanks == {"/p/b-1.0.tar.gz": ""}
    assert changes.statuses == {"my-proj": ProjectStatus("archived", "bye")}


def test_markers_gone_unyank_and_a_full_scan_drops_what_it_did_not_find():
    yanks = {"/p/a-1.0.tar.gz": "", "/p/b-1.0.tar.gz": "", "/p/c-1.0.tar.gz": ""}
    statuses = {"x": ProjectStatus("archived"), "y": ProjectStatus("deprecated")}
    changes = plan_markers(
        yanks,
        statuses,
        {"/p/a-1.0.tar.gz.yanked": b"", "/p/x.status": b"archived\n"},
        complete=True,
        newer={"/p/c-1.0.tar.gz.yanked"},
    )
    assert changes.yanks == {"/p/b-1.0.tar.gz": None}
    assert changes.statuses == {"y": None}
    assert plan_markers(yanks, {}, {"/p/a-1.0.tar.gz.yanked": None}, complete=False).yanks == {"/p/a-1.0.tar.gz": None}


def test_a_status_file_naming_no_status_or_plain_active_leaves_the_project_active():
    changes = plan_markers({}, {"z": ProjectStatus("archived")}, {"/p/z.status": b"frozen\n", "/p/w.status": b"active\n"}, complete=False)
    assert changes.statuses == {"z": None}
