"""
Lean readers of one member of a zip or a gzip-compressed tar held in memory:
the fast path of L{twistedpypi.scan.metadata} for the thousands of files indexed
at start-up.

They only answer for the plain case, and answer exactly what C{zipfile} and
C{tarfile} would (the same bytes, or L{None}).  Anything else (zip64, a
comment after the zip, encryption, other compression methods, pax headers
beyond a plain path, several gzip members, damage of any kind) raises
L{Unusual}, and the caller asks C{zipfile} or C{tarfile}, which stay the
reference.  Blocking and CPU-bound: call them from a thread.
"""

from __future__ import annotations

import io
import re
import struct
import tarfile
import zipfile
import zlib
from typing import Callable

_END = struct.Struct(zipfile.structEndArchive)
_CENTRAL = struct.Struct(zipfile.structCentralDir)
_LOCAL = struct.Struct(zipfile.structFileHeader)
_ZIP64_LOCATOR = zipfile.stringEndArchive64Locator
_UTF8_NAME = 0x800
# Encrypted, compressed patch data, strong encryption: zipfile refuses them.
_REFUSED_FLAGS = 0x1 | 0x20 | 0x40
_ZIP64_MARK = 0xFFFF_FFFF


class Unusual(Exception):
    """
    The archive is not the plain case a lean reader answers for: read it
    with C{zipfile} or C{tarfile} instead.
    """


def zip_member(
    data: bytes,
    wanted: Callable[[str], bool],
    max_size: int,
    max_members: int,
    max_directory: int,
) -> bytes | None:
    """
    The first member of a zip whose name is C{wanted}, as C{zipfile} reads
    it; L{None} if there is none or it is larger than C{max_size}.

    The whole central directory is checked the way C{zipfile} checks it
    when it opens an archive, so a zip it refuses is never answered for.

    @param max_members: zips announcing more members are refused (L{None}).
    @param max_directory: so are zips with a larger central directory.
    @raise Unusual: see the module docstring.
    """
    start, size, members = _central_directory(data)
    if members > max_members or size > max_directory:
        return None
    entry = _find_entry(data, start, start + size, wanted)
    if entry is None:
        return None
    flags, method, crc, compressed, file_size, offset, raw_name = entry
    if file_size > max_size:
        return None
    if flags & _REFUSED_FLAGS or method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Unusual("encrypted or compressed with another method")
    begin = _member_data_offset(data, offset, flags, raw_name)
    stored = data[begin : begin + compressed]
    if len(stored) != compressed:
        raise Unusual("member data runs past the end")
    if method == zipfile.ZIP_STORED:
        if compressed != file_size:
            raise Unusual("stored member with two sizes")
        content = stored
    else:
        content = _inflate_exactly(stored, file_size)
    if zlib.crc32(content) != crc:
        raise Unusual("bad CRC")
    return content


def _central_directory(data: bytes) -> tuple[int, int, int]:
    """
    Where the central directory starts, its size and the member count its
    end record announces, for a zip without comment, zip64 records or data
    before it.
    """
    end = len(data) - _END.size
    if end < 0 or data[end : end + 4] != zipfile.stringEndArchive or data[-2:] != b"\0\0":
        raise Unusual("no plain end record")
    if end >= 20 and data[end - 20 : end - 16] == _ZIP64_LOCATOR:
        raise Unusual("zip64")
    fields = _END.unpack_from(data, end)
    members, size, start = fields[4], fields[5], fields[6]
    if start + size != end:
        raise Unusual("data before the zip, or a misplaced central directory")
    return start, size, members


def _find_entry(data: bytes, position: int, stop: int, wanted: Callable[[str], bool]):
    """
    Walk every central directory entry as C{zipfile} does; the first
    C{wanted} one as C{(flags, method, crc, compressed size, size, local
    header offset, raw name)}, or L{None}.
    """
    found = None
    while position < stop:
        if position + _CENTRAL.size > stop:
            raise Unusual("truncated central directory")
        fields = _CENTRAL.unpack_from(data, position)
        if fields[0] != zipfile.stringCentralDir:
            raise Unusual("bad central directory entry")
        name_end = position + _CENTRAL.size + fields[12]
        extra_end = name_end + fields[13]
        following = extra_end + fields[14]
        if following > stop:
            raise Unusual("central directory entry runs past the directory")
        flags, method, crc, compressed, file_size, offset = (
            fields[5], fields[6], fields[9], fields[10], fields[11], fields[18]
        )
        if fields[3] > zipfile.MAX_EXTRACT_VERSION:
            raise Unusual("zip version too recent")
        if _ZIP64_MARK in (compressed, file_size, offset):
            raise Unusual("zip64 sizes")
        _check_extra(data[name_end:extra_end])
        raw_name = data[position + _CENTRAL.size : name_end]
        try:
            name = raw_name.decode("utf-8" if flags & _UTF8_NAME else "cp437")
        except UnicodeDecodeError:
            raise Unusual("undecodable name") from None
        # zipfile.ZipInfo cuts a name at its first NUL.
        if found is None and wanted(name.partition("\0")[0]):
            found = (flags, method, crc, compressed, file_size, offset, raw_name)
        position = following
    return found


def _check_extra(extra: bytes) -> None:
    """Refuse extra fields zipfile would refuse or read as zip64."""
    while len(extra) >= 4:
        kind, length = struct.unpack_from("<HH", extra)
        if length + 4 > len(extra) or kind == 0x0001:
            raise Unusual("corrupt or zip64 extra field")
        extra = extra[length + 4 :]


def _member_data_offset(data: bytes, offset: int, flags: int, raw_name: bytes) -> int:
    """Where a member's data starts, after a local header that agrees with its entry."""
    header = data[offset : offset + _LOCAL.size]
    if len(header) != _LOCAL.size:
        raise Unusual("truncated local header")
    fields = _LOCAL.unpack(header)
    name_end = offset + _LOCAL.size + fields[10]
    if (
        fields[0] != zipfile.stringFileHeader
        or data[offset + _LOCAL.size : name_end] != raw_name
        or (fields[3] ^ flags) & _UTF8_NAME
    ):
        raise Unusual("local header disagrees with the central directory")
    return name_end + fields[11]


def _inflate_exactly(compressed: bytes, size: int) -> bytes:
    """A raw deflate stream that ends within C{compressed} and inflates to C{size} bytes."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        content = inflater.decompress(compressed, size + 1)
    except zlib.error:
        raise Unusual("corrupt deflate data") from None
    if not inflater.eof or len(content) != size:
        raise Unusual("deflate data of another size")
    return content


_BLOCK = tarfile.BLOCKSIZE
_IN_CHUNK = 256 * 1024
_OUT_CHUNK = 1024 * 1024
_READ_CHUNK = 64 * 1024
# tarfile reads through gzip.GzipFile's buffer, which it fills up to
# io.DEFAULT_BUFFER_SIZE bytes beyond what it needs: damage found there
# makes tarfile fail, so the lean reader looks that far too.
_READ_AHEAD = io.DEFAULT_BUFFER_SIZE
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
_PAX_HDRCHARSET = re.compile(rb"\d+ hdrcharset=([^\n]+)\n")
EXTENDED_HEADER_TYPES = frozenset(
    {
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
    }
)
"""Tar members whose data is a header for another member (GNU long names,
pax records), which C{tarfile} reads whole into memory."""
# Members that are not plain ones: extended headers, and sparse files.
_NOT_PLAIN = EXTENDED_HEADER_TYPES | {tarfile.GNUTYPE_SPARSE}


class _Inflated:
    """
    A gzip stream inflated on demand, read forwards only, as far as its
    first member ends.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._taken = 0
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buffer = b""
        self._offset = 0
        self.position = 0
        """How many inflated bytes were read or skipped."""

    def _more(self, wanted: int) -> bytes:
        """Up to C{wanted} more inflated bytes; C{b""} at the end of the stream."""
        inflater = self._inflater
        while True:
            pending = inflater.unconsumed_tail
            if not pending:
                if inflater.eof or self._taken >= len(self._data):
                    return b""
                pending = self._data[self._taken : self._taken + _IN_CHUNK]
                self._taken += len(pending)
            try:
                out = inflater.decompress(pending, wanted)
            except zlib.error:
                raise Unusual("corrupt gzip data") from None
            if out:
                return out

    def _fill(self, size: int) -> bool:
        """Have at least C{size} bytes buffered; whether the stream had them."""
        while len(self._buffer) - self._offset < size:
            more = self._more(max(size, _READ_CHUNK))
            if not more:
                return False
            self._buffer = self._buffer[self._offset :] + more
            self._offset = 0
        return True

    def read(self, size: int) -> bytes:
        """Exactly C{size} more bytes."""
        if not self._fill(size):
            raise Unusual("the gzip stream ends early")
        start, self._offset = self._offset, self._offset + size
        self.position += size
        return self._buffer[start : self._offset]

    def skip(self, size: int) -> None:
        """Pass over C{size} bytes."""
        while len(self._buffer) - self._offset < size:
            available = len(self._buffer) - self._offset
            size -= available
            self.position += available
            self._buffer, self._offset = self._more(min(size, _OUT_CHUNK)), 0
            if not self._buffer:
                raise Unusual("the gzip stream ends early")
        self._offset += size
        self.position += size

    def look_ahead(self, size: int) -> None:
        """Inflate up to C{size} bytes further, or to the end, so damage there is found."""
        self._fill(size)


def _block(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def tar_gz_member(
    data: bytes,
    wanted: Callable[[str], bool],
    max_size: int,
    max_members: int,
    max_extended: int,
    max_unpacked: int,
) -> bytes | None:
    """
    The first regular-file member of a gzip-compressed tar whose name is
    C{wanted}, as C{tarfile.open(mode="r:*")} reads it, with the bounds
    L{twistedpypi.scan.metadata} puts on C{tarfile}: L{None} if that member is
    larger than C{max_size}, if C{max_members} go by without it, if going
    on would inflate past C{max_unpacked} bytes, or if the archive ends.

    @param max_extended: long-name and pax headers may be no larger.
    @raise Unusual: see the module docstring.
    """
    if data[:2] != b"\x1f\x8b":
        raise Unusual("not gzip")
    stream = _Inflated(data)
    count = 0
    while True:
        member = _next_member(stream, max_extended, first=count == 0)
        if member is None:
            return None
        if count >= max_members:
            return None
        count += 1
        name, kind, size, data_offset, following = member
        if kind in tarfile.REGULAR_TYPES and wanted(name):
            if size > max_size:
                return None
            content = stream.read(size)
            stream.look_ahead(_READ_AHEAD)
            return content
        if data_offset + size > max_unpacked:
            return None
        stream.skip(following - stream.position)


_ZERO_BLOCK = bytes(_BLOCK)
# A number field tarfile.nti reads as octal: optional blanks, octal digits,
# blanks, then anything after a NUL.  Other forms (base-256, signs, tabs)
# are left to tarfile.
_OCTAL = re.compile(rb"( *[0-7]* *)(?:\0[\s\S]*)?")
# mode, uid, gid, size, mtime, devmajor, devminor, then the checksum
_NUMBER_FIELDS = (
    (100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (329, 337), (337, 345), (148, 156)
)
_SIZE_FIELD = 3


def _unsigned_sum(data: bytes) -> int:
    """
    The sum of C{data}'s bytes, at most 256 of them: Adler-32's first half
    is one plus that sum modulo 65521, which 256 bytes cannot reach.
    """
    return (zlib.adler32(data) & 0xFFFF) - 1


def _text(field: bytes) -> str:
    return field.partition(b"\0")[0].decode(tarfile.ENCODING, "surrogateescape")


def _header(stream: _Inflated) -> tuple[str, bytes, int] | None:
    """
    The next header as C{(name, type, size)}, exactly as
    C{tarfile.TarInfo.frombuf} reads it (but for the names of directories);
    L{None} at an end-of-archive block.
    """
    block = stream.read(_BLOCK)
    if block == _ZERO_BLOCK:
        return None
    numbers = []
    for start, end in _NUMBER_FIELDS:
        match = _OCTAL.fullmatch(block, start, end)
        if match is None:
            raise Unusual("tar number field in an unusual form")
        numbers.append(int(match.group(1).strip() or b"0", 8))
    checksum = numbers.pop()
    computed = 256 + _unsigned_sum(block[:148]) + _unsigned_sum(block[156:334]) + _unsigned_sum(block[334:])
    if checksum != computed:
        raise Unusual("bad or signed tar checksum")
    name = _text(block[:100])
    kind = block[156:157]
    if kind == tarfile.AREGTYPE and name.endswith("/"):
        # A directory in the old V7 format; tarfile also strips the slashes
        # of directory names, which no one here looks at.
        kind = tarfile.DIRTYPE
    prefix = _text(block[345:500])
    if prefix and kind not in tarfile.GNU_TYPES:
        name = prefix + "/" + name
    return name, kind, numbers[_SIZE_FIELD]


def _next_member(stream: _Inflated, max_extended: int, first: bool):
    """
    The next member as C{(name, type, size, where its data starts, where
    the next header starts)}, or L{None} at the end of the archive.
    """
    header = _header(stream)
    if header is None:
        if first:
            # tarfile would try the bytes as other formats.
            raise Unusual("empty archive")
        return None
    name, kind, size = header
    if kind in _NOT_PLAIN:
        if kind not in (tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE):
            raise Unusual("global pax header, long link name or sparse file")
        if size > max_extended:
            raise Unusual("extended header too large")
        extension = stream.read(_block(size))
        header = _header(stream)
        if header is None or header[1] in _NOT_PLAIN:
            raise Unusual("extended header without a plain member")
        if kind == tarfile.GNUTYPE_LONGNAME:
            name, kind, size = _text(extension), header[1], header[2]
        else:
            name, kind, size = _apply_pax(extension, *header)
    if size < 0:
        raise Unusual("negative size")
    data_offset = stream.position
    following = data_offset
    if kind in tarfile.REGULAR_TYPES or kind not in tarfile.SUPPORTED_TYPES:
        following += _block(size)
    return name, kind, size, data_offset, following


def _apply_pax(records: bytes, name: str, kind: bytes, size: int) -> tuple[str, bytes, int]:
    """
    The name, type and size of the member after pax records, as C{tarfile}
    reads them; records it reads differently are refused.
    """
    if _PAX_HDRCHARSET.search(records):
        raise Unusual("pax hdrcharset")
    position = 0
    while match := _PAX_RECORD.match(records, position):
        length = int(match.group(1))
        if length == 0:
            raise Unusual("bad pax record")
        try:
            keyword = match.group(2).decode("utf-8")
            value = records[match.end(2) + 1 : match.start(1) + length - 1].decode("utf-8")
        except UnicodeDecodeError:
            raise Unusual("pax record not UTF-8") from None
        if keyword.startswith("GNU.sparse."):
            raise Unusual("pax sparse file")
        if keyword == "path":
            name = value.rstrip("/")
        elif keyword == "size":
            try:
                size = int(value)
            except ValueError:
                size = 0
        position += length
    return name, kind, size
