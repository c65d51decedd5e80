"""
An upstream index's project page (PEP 691 JSON or PEP 503 HTML), read into
one neutral structure the proxy renders its own pages from.

Pure: no I/O, no reactor.  Every file name is checked here, once, because
the proxy later uses it as a name on disk: anything that is not a plain
distribution file name is dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit, urlunsplit

from twistedpypi.index.distfile import parse_filename, version_sort_key

JSON_TYPES = ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.latest+json")
ACCEPT = (
    b"application/vnd.pypi.simple.v1+json,"
    b" application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
)
"""What the proxy asks an upstream for: PEP 691 JSON first, HTML otherwise."""


class UnreadablePage(ValueError):
    """
    The upstream answered something that is not a simple API project page.
    """


@dataclass(frozen=True, slots=True)
class UpstreamFile:
    """
    One file an upstream index lists.

    @ivar url: its absolute URL upstream, without fragment.
    @ivar hashes: hex digests by algorithm, as upstream gave them.
    @ivar yanked: C{False}, C{True}, or the reason given (PEP 592).
    @ivar core_metadata: C{False} when upstream offers no PEP 658 metadata
        file, C{True} when it offers one without hashes, else its hashes.
    """

    filename: str
    url: str
    hashes: dict[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: bool | str = False
    core_metadata: bool | dict[str, str] = False
    size: int | None = None
    upload_time: str | None = None
    version: str = ""

    @property
    def metadata_url(self) -> str:
        """Where PEP 658 puts the file's metadata upstream."""
        return self.url + ".metadata"

    def pep691(self, url: str) -> dict:
        """
        The file as an entry of a PEP 691 page, linked at C{url}; the optional
        keys only where upstream gave them.
        """
        document: dict = {
            "filename": self.filename,
            "url": url,
            "hashes": self.hashes,
            "yanked": self.yanked,
            "core-metadata": self.core_metadata,
        }
        if self.requires_python:
            document["requires-python"] = self.requires_python
        if self.size is not None:
            document["size"] = self.size
        if self.upload_time is not None:
            document["upload-time"] = self.upload_time
        return document


@dataclass(frozen=True, slots=True)
class UpstreamProject:
    """
    A project as an upstream index lists it.
    """

    name: str
    files: tuple[UpstreamFile, ...]
    _by_name: dict[str, UpstreamFile] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {entry.filename: entry for entry in self.files})

    def file(self, filename: str) -> UpstreamFile | None:
        """The file of that name, if upstream lists it."""
        return self._by_name.get(filename)

    def versions(self) -> list[str]:
        """The distinct versions, oldest first."""
        return sorted({entry.version for entry in self.files}, key=version_sort_key)

    def to_json(self) -> bytes:
        """
        The project as a PEP 691 document with absolute upstream URLs: the
        form the proxy keeps on disk, read back by L{parse_json}.
        """
        files = [entry.pep691(entry.url) for entry in self.files]
        return json.dumps(
            {"meta": {"api-version": "1.1"}, "name": self.name, "files": files},
            separators=(",", ":"),
        ).encode("utf-8")


_URL_SAFE = "%/:@!$&'()*+,;=~"
"""Characters a URL keeps as they are: reserved ones and existing escapes."""


def _ascii_url(url: str) -> str:
    """
    C{url} as it goes on the wire: a host outside ASCII in IDNA, anything
    else outside ASCII (or a space, a quote...) percent-encoded as UTF-8,
    reserved characters and existing escapes left alone.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if not netloc.isascii():
        userinfo, at, hostport = netloc.rpartition("@")
        host, colon, port = hostport.partition(":")
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnreadablePage(f"link {url!r} has a host name that is not valid") from None
        netloc = quote(userinfo, safe=_URL_SAFE) + at + host + colon + port
    return urlunsplit(
        parts._replace(
            netloc=netloc,
            path=quote(parts.path, safe=_URL_SAFE),
            query=quote(parts.query, safe=_URL_SAFE + "?"),
        )
    )


def _checked_url(base_url: str, href: str) -> tuple[str, str]:
    """
    The absolute URL of a link, in ASCII, and its fragment; only http(s) is
    accepted.
    """
    url, fragment = urldefrag(urljoin(base_url, href))
    if urlsplit(url).scheme not in ("http", "https"):
        raise UnreadablePage(f"link {href!r} is not http(s)")
    return _ascii_url(url), fragment


def _file_name(url: str, text: str | None) -> tuple[str, str] | None:
    """The file's name and version, if it is a distribution's."""
    candidates = [text.strip()] if text and text.strip() else []
    candidates.append(unquote(urlsplit(url).path.rsplit("/", 1)[-1]))
    for name in candidates:
        dist = parse_filename(name)
        if dist is not None:
            return name, dist.version
    return None


def _metadata_value(value: object) -> bool | dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()} or True
    return bool(value)


def parse_json(body: bytes, base_url: str, name: str) -> UpstreamProject:
    """
    Read a PEP 691 project page.

    @param base_url: the page's own URL, which relative file URLs are
        relative to.
    @param name: the normalised project name asked for.
    """
    try:
        document = json.loads(body)
        entries = document["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise UnreadablePage(f"not a PEP 691 project page: {error}") from None
    files = []
    for item in entries:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            continue
        try:
            url, _ = _checked_url(base_url, item["url"])
        except UnreadablePage:
            continue
        named = _file_name(url, item.get("filename"))
        if named is None:
            continue
        filename, version = named
        hashes = item.get("hashes") if isinstance(item.get("hashes"), dict) else {}
        yanked = item.get("yanked", False)
        metadata = item.get("core-metadata", item.get("dist-info-metadata", False))
        size = item.get("size")
        files.append(
            UpstreamFile(
                filename=filename,
                url=url,
                hashes={str(k).lower(): str(v).lower() for k, v in hashes.items()},
                requires_python=item.get("requires-python") or None,
                yanked=yanked if isinstance(yanked, str) and yanked else bool(yanked),
                core_metadata=_metadata_value(metadata),
                size=size if isinstance(size, int) and size >= 0 else None,
                upload_time=item.get("upload-time") if isinstance(item.get("upload-time"), str) else None,
                version=version,
            )
        )
    return UpstreamProject(name, tuple(files))


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict[str, str | None], str]] = []
        self.base: str | None = None
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self._open = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.links.append((self._open, "".join(self._text)))
            self._open = None


def _hash_of_fragment(fragment: str) -> dict[str, str]:
    algorithm, _, digest = fragment.partition("=")
    if not algorithm or not digest:
        return {}
    return {algorithm.lower(): digest.lower()}


def parse_html(body: bytes, base_url: str, name: str) -> UpstreamProject:
    """
    Read a PEP 503 project page, with PEP 592 (yanked), PEP 658/714
    (metadata) and C{data-requires-python} attributes.
    """
    parser = _LinkParser()
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    base = urljoin(base_url, parser.base) if parser.base else base_url
    files = []
    for attrs, text in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        try:
            url, fragment = _checked_url(base, href)
        except UnreadablePage:
            continue
        named = _file_name(url, text)
        if named is None:
            continue
        filename, version = named
        metadata_attribute = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        if metadata_attribute is None or metadata_attribute.lower() == "false":
            metadata: bool | dict[str, str] = False
        else:
            metadata = _hash_of_fragment(metadata_attribute) or True
        yanked: bool | str = False
        if "data-yanked" in attrs:
            yanked = attrs["data-yanked"] or True
        files.append(
            UpstreamFile(
                filename=filename,
                url=url,
                hashes=_hash_of_fragment(fragment),
                requires_python=attrs.get("data-requires-python") or None,
                yanked=yanked,
                core_metadata=metadata,
                version=version,
            )
        )
    return UpstreamProject(name, tuple(files))


def parse_project_page(body: bytes, content_type: str, base_url: str, name: str) -> UpstreamProject:
    """
    Read a project page in whichever representation the upstream chose.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in JSON_TYPES or media_type == "application/json":
        return parse_json(body, base_url, name)
    return parse_html(body, base_url, name)
