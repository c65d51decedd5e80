"""
Every default is written once, in L{twistedpypi.config}: the command line,
L{Config}, the site and the upstream client take that very value, so
changing it there changes it everywhere.
"""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from twistedpypi import config
from twistedpypi.config import Config
from twistedpypi.proxy.upstream import Upstream
from twistedpypi.tap import Options
from twistedpypi.web.root import RouteNames
from twistedpypi.web.site import IndexSite

CONFIG_DEFAULTS = {field.name: field.default for field in fields(Config)}


def parameter_default(function, name: str):
    return inspect.signature(function).parameters[name].default


@pytest.mark.parametrize(
    ("field", "constant"),
    [
        ("fallback_url", "DEFAULT_FALLBACK_URL"),
        ("hash_algo", "DEFAULT_HASH_ALGO"),
        ("health_endpoint", "DEFAULT_HEALTH_ENDPOINT"),
        ("max_upload_size", "DEFAULT_MAX_UPLOAD_SIZE"),
        ("upstream_ttl", "DEFAULT_UPSTREAM_TTL"),
        ("upstream_timeout", "DEFAULT_UPSTREAM_TIMEOUT"),
        ("header_timeout", "DEFAULT_HEADER_TIMEOUT"),
        ("file_cache_size", "DEFAULT_FILE_CACHE_SIZE"),
    ],
)
def test_config_fields_default_to_the_module_constants(field, constant):
    # "is": the constant itself, not a number that happens to be equal.
    assert CONFIG_DEFAULTS[field] is getattr(config, constant)


def test_the_site_and_the_upstream_client_default_to_configs_values():
    assert parameter_default(IndexSite.__init__, "header_timeout") is config.DEFAULT_HEADER_TIMEOUT
    assert parameter_default(IndexSite.__init__, "max_upload_size") is config.DEFAULT_MAX_UPLOAD_SIZE
    assert parameter_default(IndexSite.__init__, "health_path") == config.DEFAULT_HEALTH_ENDPOINT.encode()
    assert parameter_default(RouteNames.__init__, "health_path") == config.DEFAULT_HEALTH_ENDPOINT.encode()
    assert parameter_default(Upstream.__init__, "ttl") is config.DEFAULT_UPSTREAM_TTL
    assert parameter_default(Upstream.__init__, "timeout") is config.DEFAULT_UPSTREAM_TIMEOUT


def test_the_command_lines_defaults_are_configs(tmp_path):
    options = Options()
    options.parseOptions([str(tmp_path)])
    given = options.config()
    for name in (
        "fallback_url", "hash_algo", "health_endpoint", "max_upload_size", "fallback_mode",
        "upstream_ttl", "upstream_timeout", "header_timeout", "file_cache_size",
        "overwrite", "cache_control", "follow_symlinks", "access_log", "authenticate",
    ):
        assert getattr(given, name) == CONFIG_DEFAULTS[name], name
