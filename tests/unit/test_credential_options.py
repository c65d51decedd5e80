"""
--tokens and --permissions on the command line: a file that cannot be
used is a one-sentence usage error at start-up, saying what to do.
"""

import pytest
from twisted.python import usage

from twistedpypi.tap import Options


def parse(*arguments):
    options = Options()
    options.parseOptions(list(arguments))
    return options


def test_tokens_alone_protect_uploads(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text("")
    config = parse("--tokens", str(tokens), str(tmp_path / "p")).config()
    assert config.tokens == str(tokens) and config.passwords is None
    assert config.authenticate == frozenset({"update"})


@pytest.mark.parametrize(
    "arguments, complaint",
    [
        (("--tokens", "{tmp}/missing.json"), "cannot read the tokens file {tmp}/missing.json: No such file or directory; create it with: twistedpypi token create"),
        (("--tokens", "{tmp}/broken"), "the tokens file {tmp}/broken is broken (not a tokens file"),
        (("--tokens", "{tmp}/empty", "-a", "."), "--tokens was given but -a protects nothing"),
        (("--permissions", "{tmp}/permissions.toml", "--tokens", "{tmp}/empty"), "--permissions says what users of the password file may do: give -P HTPASSWD too"),
        (("--permissions", "{tmp}/broken", "--tokens", "{tmp}/empty"), "the permissions file {tmp}/broken is broken (not a TOML file"),
    ],
)
def test_an_unusable_credential_file_is_a_usage_error(tmp_path, arguments, complaint):
    (tmp_path / "broken").write_text("{[")
    (tmp_path / "empty").write_text("")
    (tmp_path / "permissions.toml").write_text('[projects]\ndemo = { update = ["alice"] }\n')
    with pytest.raises(usage.UsageError) as raised:
        parse(*(a.format(tmp=tmp_path) for a in arguments), str(tmp_path / "p"))
    assert str(raised.value).startswith(complaint.format(tmp=tmp_path))
