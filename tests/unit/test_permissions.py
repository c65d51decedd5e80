"""
Per-project permissions: the TOML file's groups, exact names, patterns and
default, and what a user of the password file may do under them.
"""

import pytest

from twistedpypi.auth import Principal
from twistedpypi.auth.permissions import parse_permissions

EXAMPLE = b"""
[groups]
maintainers = ["alice", "carol"]

[projects]
demo = { update = ["alice"] }
"acme-*" = { update = ["@maintainers"], download = ["@maintainers", "bob"] }
"acme-public" = { update = ["*"] }

[default]
update = ["@maintainers"]
"""


@pytest.mark.parametrize(
    "user, action, project, allowed",
    [
        ("alice", "update", "demo", True),
        ("carol", "update", "Demo", False),
        ("carol", "update", "Acme_Tools", True),
        ("bob", "update", "acme-tools", False),
        ("bob", "download", "acme.tools", True),
        ("dave", "download", "acme-tools", False),
        ("dave", "update", "acme-public", True),
        ("bob", "update", "unnamed", False),
        ("carol", "update", "unnamed", True),
        ("dave", "list", "demo", True),
    ],
)
def test_exact_names_then_patterns_then_the_default(user, action, project, allowed):
    permissions = parse_permissions(EXAMPLE)
    assert permissions.may(user, action, project) is allowed
    refusal = Principal(user=user, permissions=permissions).refusal(action, project)
    assert (refusal is None) is allowed
    if refusal is not None:
        assert f"user {user}" in refusal and repr(project) in refusal


def test_without_a_default_projects_no_rule_names_are_open_to_every_user():
    permissions = parse_permissions(b'[projects]\ndemo = { update = ["alice"] }\n')
    assert permissions.may("bob", "update", "other")
    assert not permissions.may("bob", "update", "demo")


@pytest.mark.parametrize(
    "text, complaint",
    [
        (b"[projects\n", "not a TOML file"),
        (b'[projects]\ndemo = { update = ["@nobody"] }\n', "no group 'nobody'"),
        (b'[projects]\ndemo = { delete = ["alice"] }\n', "unknown action 'delete'"),
        (b'[projects]\ndemo = { update = "alice" }\n', "expected a list"),
        (b"[users]\n", "unknown table [users]"),
    ],
)
def test_a_broken_permissions_file_says_what_is_wrong(text, complaint):
    with pytest.raises(ValueError, match=complaint.replace("[", r"\[")):
        parse_permissions(text)
