import pytest

from twistedpypi.pages.simple import HTML, SIMPLE_HTML, SIMPLE_JSON
from twistedpypi.web.negotiate import choose_media_type


@pytest.mark.parametrize(
    "accept, chosen",
    [
        (None, HTML),
        (b"*/*", HTML),
        (b"text/html", HTML),
        (b"application/vnd.pypi.simple.v1+json", SIMPLE_JSON),
        (b"application/vnd.pypi.simple.latest+json", SIMPLE_JSON),
        (b"application/vnd.pypi.simple.v1+html", SIMPLE_HTML),
        # pip's and uv's header
        (b"application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01", SIMPLE_JSON),
        (b"application/vnd.pypi.simple.v1+json;q=0.2, text/html", HTML),
        (b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", HTML),
        (b"application/*", SIMPLE_JSON),
        (b"image/png", None),
        (b"application/vnd.pypi.simple.v1+json;q=0", None),
        # An offer's quality is that of the most specific range naming it
        # (RFC 9110 12.5.1), and q=0 refuses it even when a wildcard allows
        # everything else.
        (b"text/html;q=0, */*;q=0.5", SIMPLE_JSON),
        (b"application/vnd.pypi.simple.v1+json;q=0, */*", HTML),
        (b"application/vnd.pypi.simple.v1+json;q=0, application/*", SIMPLE_HTML),
        (b"*/*, application/vnd.pypi.simple.v1+json;q=0, text/html;q=0", SIMPLE_HTML),
        (b"text/*;q=0, */*", SIMPLE_JSON),
        (b"text/html;q=0.5, */*", SIMPLE_JSON),
        (b"application/*;q=0.1, application/vnd.pypi.simple.v1+html", SIMPLE_HTML),
        (b"*/*;q=0", None),
        (b"*/*;q=0, text/html", HTML),
    ],
)
def test_the_accept_header_picks_the_representation(accept, chosen):
    assert choose_media_type(accept) == chosen


def test_the_format_parameter_wins_over_the_header():
    assert choose_media_type(b"text/html", b"application/vnd.pypi.simple.v1+json") == SIMPLE_JSON
    assert choose_media_type(b"application/vnd.pypi.simple.v1+json", b"text/html") == HTML
    assert choose_media_type(None, b"image/png") is None
