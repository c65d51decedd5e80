"""
Builds small, valid wheels and sdists for the tests to serve and install.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import zipfile


def core_metadata(
    name: str,
    version: str,
    requires: tuple[str, ...] = (),
    requires_python: str | None = None,
    metadata_version: str = "2.1",
    summary: str = "a test distribution",
) -> bytes:
    """
    METADATA / PKG-INFO text for a distribution.
    """
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}", f"Summary: {summary}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    return ("\n".join(lines) + "\n\n" + f"{name} long description\n").encode("utf-8")


def wheel_bytes(name: str, version: str, **metadata) -> tuple[str, bytes]:
    """
    A pure-Python wheel holding one module named after the project.
    """
    dist = name.replace("-", "_").replace(".", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist.lower()}.py": f"VERSION = {version!r}\n".encode(),
        f"{info}/METADATA": core_metadata(name, version, **metadata),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return f"{dist}-{version}-py3-none-any.whl", buffer.getvalue()


def sdist_bytes(name: str, version: str, **metadata) -> tuple[str, bytes]:
    """
    An sdist that setuptools can build.
    """
    base = name.replace("-", "_").replace(".", "_").lower()
    root = f"{base}-{version}"
    files = {
        f"{root}/PKG-INFO": core_metadata(name, version, **metadata),
        f"{root}/setup.py": (
            f"from setuptools import setup\nsetup(name={name!r}, version={version!r}, py_modules=[{base!r}])\n"
        ).encode(),
        f"{root}/{base}.py": f"VERSION = {version!r}\n".encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in files.items():
            member = tarfile.TarInfo(path)
            member.size = len(data)
            member.mtime = 1577836800
            archive.addfile(member, io.BytesIO(data))
    return f"{root}.tar.gz", buffer.getvalue()


def write(directory: str, filename_and_bytes: tuple[str, bytes]) -> str:
    """
    Write a built distribution into C{directory}; return its path.
    """
    filename, data = filename_and_bytes
    path = os.path.join(directory, filename)
    with open(path, "wb") as stream:
        stream.write(data)
    return path


KELVIN = "\u212aelvin"


def wheel_named_in_metadata(project: str, version: str, metadata_name: str) -> tuple[str, bytes]:
    """A wheel of C{project} whose METADATA gives its name as C{metadata_name}."""
    filename, data = wheel_bytes(project, version)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename.endswith(".dist-info/METADATA"):
                content = content.replace(f"Name: {project}\n".encode(), f"Name: {metadata_name}\n".encode())
                assert metadata_name.encode() in content
            target.writestr(info, content)
    return filename, out.getvalue()
