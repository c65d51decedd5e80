"""
Builds hostile distribution files fast: decompression bombs, archives with
oversized or misplaced members, files that are not what their name says.
"""

from __future__ import annotations

import io
import struct
import tarfile
import zlib

GIB = 1024**3


def deflated_zeros(prefix: bytes, zeros: int, wbits: int) -> bytes:
    """
    A deflate stream (raw with C{wbits=-15}, gzip with C{31}) of C{prefix}
    followed by C{zeros} zero bytes, built in milliseconds: after a full
    flush the compressed blocks of identical input repeat.  A gzip stream
    built so has no valid trailer, which nothing reads before it is too
    late.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    chunk = 4 * 1024 * 1024
    block = compressor.compress(b"\0" * chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    return head + block * (zeros // chunk) + compressor.flush()


def zip_with_member(name: str, compressed: bytes, declared_size: int, crc: int = 0) -> bytes:
    """A zip holding one deflated member whose header declares a size."""
    encoded = name.encode()
    local = struct.pack(
        "<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, 8, 0, 0, crc, len(compressed), declared_size, len(encoded), 0
    ) + encoded
    central = struct.pack(
        "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 0, 20, 0, 0, 8, 0, 0, crc, len(compressed), declared_size,
        len(encoded), 0, 0, 0, 0, 0, 0,
    ) + encoded
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(compressed), 0)
    return local + compressed + central + end


def zip_bomb(name: str, declared_size: int) -> bytes:
    """A zip whose member C{name} unpacks to 1 GiB of zeros."""
    return zip_with_member(name, deflated_zeros(b"", GIB, -15), declared_size)


def zip_with_many_members(count: int) -> bytes:
    """A zip of C{count} empty stored members: a huge central directory."""
    locals_, centrals = [], []
    offset = 0
    for number in range(count):
        encoded = b"m/%d" % number
        local = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, 0, len(encoded), 0) + encoded
        centrals.append(
            struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, len(encoded), 0, 0, 0, 0, 0, offset)
            + encoded
        )
        locals_.append(local)
        offset += len(local)
    central = b"".join(centrals)
    # More than 65535 members needs the zip64 end records.
    zip64_end = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(central), offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + len(central), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return b"".join(locals_) + central + zip64_end + locator + end


def tar_gz_bomb_before_pkg_info(root: str) -> bytes:
    """
    A .tar.gz whose first member unpacks to 1 GiB of zeros, followed (in
    principle) by a PKG-INFO.
    """
    member = tarfile.TarInfo(f"{root}/zeros")
    member.size = GIB
    return deflated_zeros(member.tobuf(format=tarfile.GNU_FORMAT), GIB, 31)


def tar_gz_with_huge_extended_header(kind: bytes) -> bytes:
    """
    A .tar.gz starting with a GNU long-name or pax header that declares
    1 GiB, which Python's tarfile would read whole into memory.
    """
    header = tarfile.TarInfo("././@LongLink" if kind == tarfile.GNUTYPE_LONGNAME else "pax")
    header.type = kind
    header.size = GIB
    return deflated_zeros(header.tobuf(format=tarfile.GNU_FORMAT), GIB, 31)


def tar_gz(members: dict[str, bytes]) -> bytes:
    """A .tar.gz of regular files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()
