"""
C{twistedpypi COMMAND ...} (or C{python -m twistedpypi}): what the host's
administrator runs beside the server, which reads the files these commands
write.  Each command is one entry of L{COMMANDS}.

Blocking: a command-line program, never imported by the server.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable, Iterator

from twistedpypi.auth.tokens import (
    TOKEN_ACTIONS,
    Token,
    change_tokens_file,
    create_token,
    parse_expiry,
    read_tokens_file,
)
from twistedpypi.uploads import manage


class CommandError(Exception):
    """A mistake the user can fix; its message says how."""


@contextmanager
def _locked(path: str) -> Iterator[None]:
    """Hold a lock on the tokens file's directory: two commands never lose each other's change."""
    descriptor = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _actions(values: list[str]) -> list[str]:
    actions = sorted({a.strip().lower() for value in values for a in value.split(",") if a.strip()})
    unknown = [a for a in actions if a not in TOKEN_ACTIONS]
    if unknown:
        raise CommandError(f"--action {unknown[0]!r}: choose from {', '.join(TOKEN_ACTIONS)}")
    return actions


def token_create(arguments: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc)
    try:
        expires = parse_expiry(arguments.expires, now)
    except ValueError as error:
        raise CommandError(str(error)) from None
    actions = _actions(arguments.action or ["update"])
    secret, entry = create_token(arguments.name, arguments.project, actions, expires, now)
    with _locked(arguments.tokens):
        change_tokens_file(arguments.tokens, lambda entries: [*entries, entry])
    print(secret)
    print(
        f"created {entry.label}: {', '.join(sorted(entry.actions))} for"
        f" {', '.join(entry.projects)}, expires {_when(entry.expires)}.\n"
        "The token is shown this once; the tokens file keeps only its hash."
        " Clients send it as user __token__ with the token as password.",
        file=sys.stderr,
    )
    return 0


def token_list(arguments: argparse.Namespace) -> int:
    if not os.path.exists(arguments.tokens):
        raise CommandError(
            f"the tokens file {arguments.tokens} does not exist yet:"
            f" create a token with: twistedpypi token create --tokens {arguments.tokens} --project NAME"
        )
    entries = read_tokens_file(arguments.tokens).entries
    now = datetime.now(timezone.utc)
    rows = [("ID", "NAME", "STATE", "ACTIONS", "PROJECTS", "EXPIRES", "CREATED")]
    for entry in entries:
        rows.append(
            (
                entry.id,
                entry.name or "-",
                entry.state(now),
                ",".join(sorted(entry.actions)),
                ",".join(entry.projects),
                _when(entry.expires),
                _when(entry.created),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if not entries:
        print("(no tokens)")
    return 0


def token_revoke(arguments: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    found: list[Token] = []

    def revoke(entries: list[Token]) -> list[Token]:
        changed = []
        for entry in entries:
            if entry.id == arguments.id:
                found.append(entry)
                if entry.revoked is None:
                    entry = replace(entry, revoked=now)
            changed.append(entry)
        return changed

    if not os.path.exists(arguments.tokens):
        raise CommandError(f"the tokens file {arguments.tokens} does not exist: there is no token to revoke")
    with _locked(arguments.tokens):
        change_tokens_file(arguments.tokens, revoke)
    if not found:
        raise CommandError(
            f"no token {arguments.id!r} in {arguments.tokens}; see the ids with:"
            f" twistedpypi token list --tokens {arguments.tokens}"
        )
    if found[0].revoked is not None:
        print(f"{found[0].label} was already revoked on {_when(found[0].revoked)}")
    else:
        print(f"revoked {found[0].label}: the server refuses it from its next request")
    return 0


def _token_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twistedpypi token", description="Manage the upload tokens file the server reads with --tokens."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="create|list|revoke")
    create = commands.add_parser("create", help="make a token and print it, once")
    create.add_argument("--tokens", required=True, metavar="FILE", help="the tokens file (created if missing)")
    create.add_argument(
        "-p", "--project", action="append", required=True, metavar="NAME",
        help="a project name or fnmatch pattern such as 'acme-*' (repeat for more)",
    )
    create.add_argument(
        "-a", "--action", action="append", metavar="ACTION",
        help="update (upload, remove), download or list; repeat or separate with commas (default: update)",
    )
    create.add_argument("--expires", default="never", help="90d, 12h, 30m, 2w, a date such as 2027-01-31, or never (default)")
    create.add_argument("-n", "--name", default="", help="what the token is for, e.g. ci-acme")
    create.set_defaults(run=token_create)
    listing = commands.add_parser("list", help="show every token but its secret")
    listing.add_argument("--tokens", required=True, metavar="FILE")
    listing.set_defaults(run=token_list)
    revoke = commands.add_parser("revoke", help="refuse a token from now on")
    revoke.add_argument("--tokens", required=True, metavar="FILE")
    revoke.add_argument("id", metavar="ID", help="the token's id, as 'token list' shows it")
    revoke.set_defaults(run=token_revoke)
    return parser


def token_main(argv: list[str]) -> int:
    """C{twistedpypi token create|list|revoke}."""
    parser = _token_parser()
    arguments = parser.parse_args(argv)
    try:
        return arguments.run(arguments)
    except CommandError as error:
        parser.exit(2, f"twistedpypi token {arguments.command}: error: {error}\n")
    except OSError as error:
        parser.exit(1, f"twistedpypi token {arguments.command}: error: {error.filename}: {error.strerror}\n")
    except ValueError as error:
        parser.exit(1, f"twistedpypi token {arguments.command}: error: {arguments.tokens}: {error}\n")


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "token": (token_main, "create, list or revoke upload tokens (--tokens FILE)"),
    **{
        name: (lambda argv, name=name: manage.run(name, argv), summary)
        for name, summary in manage.COMMAND_SUMMARIES.items()
    },
}
"""Each command: what runs it, and what it does."""


def main(argv: list[str] | None = None) -> int:
    """Run the command C{argv} names."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        lines = [f"  {name:8} {summary}" for name, (_, summary) in COMMANDS.items()]
        wrong = f"twistedpypi: unknown command {argv[0]!r}\n" if argv and argv[0] not in ("-h", "--help") else ""
        sys.stderr.write(wrong + "usage: twistedpypi COMMAND ...\n\ncommands:\n" + "\n".join(lines) + "\n")
        return 0 if argv and not wrong else 2
    run, _ = COMMANDS[argv[0]]
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
