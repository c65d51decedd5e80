import os

import pytest
from twisted.python import usage

from twistedpypi.tap import Options, parse_size


def parse(*arguments):
    options = Options()
    options.parseOptions(list(arguments))
    return options


def test_defaults_are_pypiservers(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    options = parse()
    config = options.config()
    assert config.directories == [str(tmp_path / "packages")]
    assert os.path.isdir(tmp_path / "packages")
    assert options["endpoint"] == "tcp:8080:interface=0.0.0.0:backlog=511"
    assert options["address"] == ("0.0.0.0", 8080)
    assert config.authenticate == frozenset({"update"})
    assert config.passwords is None
    assert config.fallback_url == "https://pypi.org/simple/"
    assert config.hash_algo == "sha256"


def test_pypiserver_command_line_is_understood(tmp_path):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:{SHA}x\n")
    options = parse(
        "run", "-p", "9000", "-i", "127.0.0.1", "-P", str(htpasswd), "-a", "update,download",
        "-o", "--fallback-url", "https://mirror.example/simple", "--cache-control", "600",
        "--hash-algo", "md5", str(tmp_path / "a"), str(tmp_path / "b"),
    )
    config = options.config()
    assert options["endpoint"] == "tcp:9000:interface=127.0.0.1:backlog=511"
    assert options["address"] == ("127.0.0.1", 9000)
    assert config.directories == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert config.authenticate == frozenset({"update", "download"})
    assert config.overwrite
    assert config.fallback_url == "https://mirror.example/simple/"
    assert config.cache_control == 600
    assert config.hash_algorithms == ("sha256", "md5")


def test_endpoint_strings_and_open_servers(tmp_path):
    options = parse("-p", "tcp:0:interface=127.0.0.1", "-P", ".", "-a", ".", "--disable-fallback", str(tmp_path))
    assert options["endpoint"] == "tcp:0:interface=127.0.0.1"
    assert options["address"] is None  # an endpoint string is listened on as it says
    assert options.config().authenticate == frozenset()
    assert options.config().fallback_url is None


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["-a", "upload"], "unknown action"),
        (["-a", "update"], "needs a password file"),
        (["-P", "/nonexistent/htpasswd"], "cannot read the password file"),
        (["-p", "99999"], "not a port number"),
        (["-p", "nonsense:1:2"], "not a port number or endpoint"),
        (["--hash-algo", "nohash"], "--hash-algo"),
        (["--cache-control", "soon"], "--cache-control"),
        (["--max-upload-size", "big"], "not a size"),
        (["--welcome", "/nonexistent.html"], "--welcome"),
        (["/proc/cannot/create"], "cannot be created"),
    ],
)
def test_bad_values_stop_it_with_one_clear_line(tmp_path, arguments, message):
    with pytest.raises(usage.UsageError, match=message):
        parse(*arguments, *([] if arguments[0].startswith("/") else [str(tmp_path)]))


def test_sizes():
    assert parse_size("500") == 500
    assert parse_size("100M") == 100 * 1024**2
    assert parse_size("2G") == 2 * 1024**3
    assert parse_size("1.5KiB") == 1536


def test_header_timeout_is_a_positive_number_of_seconds(tmp_path):
    assert parse("--header-timeout", "2.5", str(tmp_path)).config().header_timeout == 2.5
    assert parse(str(tmp_path)).config().header_timeout == 20.0
    for bad in ("0", "-1", "soon"):
        with pytest.raises(usage.UsageError, match="--header-timeout"):
            parse("--header-timeout", bad, str(tmp_path))


def test_a_password_file_that_is_not_htpasswd_is_refused_at_start(tmp_path):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("this is not\nan htpasswd file\n")
    with pytest.raises(usage.UsageError, match="not an htpasswd file"):
        parse("-P", str(htpasswd), str(tmp_path / "packages"))


def test_file_cache_takes_a_size_or_zero_for_none(tmp_path):
    assert parse(str(tmp_path)).config().file_cache_size == 16 * 1024 * 1024
    assert parse("--file-cache", "8M", str(tmp_path)).config().file_cache_size == 8 * 1024 * 1024
    assert parse("--file-cache", "0", str(tmp_path)).config().file_cache_size == 0
    with pytest.raises(usage.UsageError, match="not a size"):
        parse("--file-cache", "lots", str(tmp_path))


def test_options_may_follow_the_directories_as_pypiserver_takes_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = parse(
        "run", str(tmp_path / "a"), "-p", "9000", "--workers", "2", str(tmp_path / "b"), "-o", "--hash-algo=md5"
    )
    assert options.config().directories == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert (options["workers"], options["address"], options["hash-algo"]) == (2, ("0.0.0.0", 9000), "md5")
    assert options.config().overwrite
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]  # no directory named after an option


def test_a_double_dash_ends_the_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = parse("-p", "9000", "--", "-odd")
    assert options.config().directories == [str(tmp_path / "-odd")]
    assert not options.config().overwrite


@pytest.mark.parametrize(
    "value, path",
    [("/pypi", "/pypi"), ("pypi/", "/pypi"), ("/team/pypi/", "/team/pypi"), ("/", ""), ("", ""), ("/my-index_2.0~", "/my-index_2.0~")],
)
def test_the_server_base_url_is_a_path_without_its_last_slash(tmp_path, value, path):
    assert parse("--server-base-url", value, str(tmp_path)).config().base_path == path


@pytest.mark.parametrize("value", ["/a b", "/../etc", "/a//b", "http://host/pypi", "/pypi?x=1", "/./x"])
def test_a_server_base_url_that_is_not_a_plain_path_is_refused(tmp_path, value):
    with pytest.raises(usage.UsageError, match="--server-base-url .* is not a plain path"):
        parse("--server-base-url", value, str(tmp_path))


def test_without_a_server_base_url_routes_are_at_the_root(tmp_path):
    assert parse(str(tmp_path)).config().base_path == ""
