"""
Per-project permissions: a TOML file naming groups of users, and for
project names or C{fnmatch} patterns who may C{update} (upload, remove,
yank, set a status), C{download} and C{list}.  Pure: the file is read by
L{twistedpypi.auth.watched.WatchedFile}, in a thread.

    [groups]
    maintainers = ["alice", "carol"]

    [projects]
    demo = { update = ["alice"] }
    "acme-*" = { update = ["@maintainers"] }

    [default]            # projects no rule names (without it: any user)
    update = ["@maintainers"]

A project's rule is the one naming it exactly, else the first pattern
matching it.  An action the rule (or C{[default]}) does not name keeps
today's behaviour: any user with a password.  C{"*"} stands for any user.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from twistedpypi.auth.tokens import TOKEN_ACTIONS, matches, normalize_pattern

Rule = dict[str, frozenset[str]]
"""Who may do each action the rule names: user names, or C{*}."""


@dataclass(frozen=True)
class Permissions:
    """One reading of the permissions file."""

    exact: dict[str, Rule]
    patterns: tuple[tuple[str, Rule], ...]
    default: Rule

    def rule_for(self, project: str) -> Rule:
        """The rule for a project (any spelling)."""
        name = normalize_pattern(project)
        if name in self.exact:
            return self.exact[name]
        for pattern, rule in self.patterns:
            if matches((pattern,), name):
                return rule
        return self.default

    def may(self, user: str, action: str, project: str) -> bool:
        """Whether the authenticated C{user} may do C{action} to C{project}."""
        allowed = self.rule_for(project).get(action)
        if allowed is None:
            allowed = self.default.get(action)
        return allowed is None or "*" in allowed or user in allowed


def _names(value: object, where: str, groups: dict[str, frozenset[str]]) -> frozenset[str]:
    """A list of users and C{@groups}, the groups expanded."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where}: expected a list of user names and @groups")
    users: set[str] = set()
    for item in value:
        if item.startswith("@"):
            if item[1:] not in groups:
                raise ValueError(f"{where}: no group {item[1:]!r} in [groups]")
            users |= groups[item[1:]]
        else:
            users.add(item)
    return frozenset(users)


def _rule(table: object, where: str, groups: dict[str, frozenset[str]]) -> Rule:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table such as {{ update = [\"alice\"] }}")
    unknown = set(table) - set(TOKEN_ACTIONS)
    if unknown:
        raise ValueError(f"{where}: unknown action {sorted(unknown)[0]!r} (use update, download, list)")
    return {action: _names(users, f"{where}.{action}", groups) for action, users in table.items()}


def parse_permissions(data: bytes) -> Permissions:
    """
    The permissions file's rules.

    @raise ValueError: it is not TOML, or not a permissions file.
    """
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"not a TOML file: {error}") from None
    unknown = set(document) - {"groups", "projects", "default"}
    if unknown:
        raise ValueError(f"unknown table [{sorted(unknown)[0]}] (use [groups], [projects], [default])")
    groups: dict[str, frozenset[str]] = {}
    for group, members in document.get("groups", {}).items():
        groups[group] = _names(members, f"groups.{group}", groups)
    exact: dict[str, Rule] = {}
    patterns: list[tuple[str, Rule]] = []
    for name, table in document.get("projects", {}).items():
        rule = _rule(table, f"projects.{name!r}", groups)
        normal = normalize_pattern(name)
        if any(character in normal for character in "*?["):
            patterns.append((normal, rule))
        else:
            exact[normal] = rule
    return Permissions(exact, tuple(patterns), _rule(document.get("default", {}), "default", groups))
