"""Where a package's resources come from: URIs checked (relative, inside the package, or base64
``data:``), files read without following symlinks (:class:`DirSource`), zips read with their
entry names, sizes and compression ratios checked while inflating (:class:`ZipSource`)."""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

from workers.rendering.gltf_package.errors import GltfLimits, GltfPackageError

_READ_CHUNK = 64 * 1024
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_IGNORED_ZIP_PREFIXES = ("__MACOSX/",)

# --------------------------------------------------------------------------- URIs


@dataclass(frozen=True)
class DataUri:
    media_type: str
    data: bytes


def check_uri(uri: Any, pointer: str) -> str:
    """Validate a resource URI; returns the decoded relative path, or '' for a data: URI.

    Raises for anything that could reach outside the package.
    """
    if not isinstance(uri, str) or not uri:
        raise GltfPackageError("uri_invalid", "uri must be a non-empty string", pointer)
    if uri[:5].lower() == "data:":
        return ""
    if _DRIVE_RE.match(uri):
        raise GltfPackageError("uri_drive", f"uri {uri!r} is a Windows drive path", pointer)
    if "\\" in uri:
        raise GltfPackageError("uri_backslash", f"uri {uri!r} contains a backslash", pointer)
    if uri.startswith("/"):
        raise GltfPackageError("uri_absolute", f"uri {uri!r} is absolute", pointer)
    parts = urlsplit(uri)
    if parts.scheme:
        raise GltfPackageError(
            "uri_scheme",
            f"uri {uri!r} uses scheme '{parts.scheme}:'; only relative paths and data: URIs "
            "are allowed (scenes must be self-contained)",
            pointer,
        )
    if parts.query or parts.fragment or "?" in uri or "#" in uri:
        raise GltfPackageError("uri_invalid", f"uri {uri!r} has a query or fragment", pointer)
    try:
        path = unquote(uri, errors="strict")
    except UnicodeDecodeError:
        raise GltfPackageError("uri_invalid", f"uri {uri!r} is not UTF-8", pointer) from None
    # Check again after percent-decoding: '%2e%2e/' and '%2F' must not sneak past.
    if _DRIVE_RE.match(path):
        raise GltfPackageError("uri_drive", f"uri {uri!r} decodes to a drive path", pointer)
    if "\\" in path:
        raise GltfPackageError("uri_backslash", f"uri {uri!r} decodes to a backslash", pointer)
    if path.startswith("/"):
        raise GltfPackageError("uri_absolute", f"uri {uri!r} decodes to an absolute path", pointer)
    if any(ord(c) < 32 or c == "\x7f" for c in path):
        raise GltfPackageError("uri_invalid", f"uri {uri!r} contains control characters", pointer)
    segments = path.split("/")
    if ".." in segments:
        raise GltfPackageError(
            "uri_traversal", f"uri {uri!r} leaves the package with '..'", pointer
        )
    segments = [s for s in segments if s != "."]
    if not segments or any(s == "" for s in segments):
        raise GltfPackageError("uri_invalid", f"uri {uri!r} has an empty path segment", pointer)
    return "/".join(segments)


def decode_data_uri(uri: str, pointer: str, max_bytes: int) -> DataUri:
    """Decode a base64 data: URI, refusing before decoding if it would exceed ``max_bytes``."""
    header, sep, payload = uri[5:].partition(",")
    if not sep or not header.lower().endswith(";base64"):
        raise GltfPackageError("data_uri_invalid", "data: URIs must be base64 encoded", pointer)
    if len(payload) // 4 * 3 > max_bytes:
        raise GltfPackageError(
            "data_uri_too_large",
            f"data: URI decodes to about {len(payload) // 4 * 3} bytes, limit {max_bytes}",
            pointer,
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise GltfPackageError(
            "data_uri_invalid", "data: URI is not valid base64", pointer
        ) from None
    media_type = header[: -len(";base64")].split(";")[0].strip().lower()
    return DataUri(media_type=media_type, data=data)


# --------------------------------------------------------------------------- sources


class Source(Protocol):
    """Where a package's files come from (a directory or a zip), addressed by safe paths."""

    def read(self, relpath: str, max_bytes: int, pointer: str) -> bytes: ...

    def close(self) -> None: ...


def lstat_regular(path: Path, max_bytes: int) -> os.stat_result:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise GltfPackageError("file_missing", f"{path.name} does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        raise GltfPackageError("symlink", f"{path.name} is a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        raise GltfPackageError("not_regular_file", f"{path.name} is not a regular file")
    if st.st_size > max_bytes:
        raise GltfPackageError(
            "file_too_large", f"{path.name} is {st.st_size} bytes, limit {max_bytes}"
        )
    return st


def _read_fd_bounded(fd: int, size: int) -> bytes:
    """Read exactly ``size`` bytes (the file may shrink/grow underneath: never read more)."""
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class DirSource:
    """Files under one directory, opened by walking ``O_NOFOLLOW`` descriptors.

    Each path component is opened relative to its parent's descriptor, so neither a symlinked
    file nor a symlinked directory is followed, and no other directory can be reached.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
        self._root_fd = os.open(root, flags)

    def read(self, relpath: str, max_bytes: int, pointer: str) -> bytes:
        parts = relpath.split("/")
        dir_flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_DIRECTORY", 0)
        fds: list[int] = []
        try:
            fd = self._root_fd
            for name in parts[:-1]:
                fd = self._open(name, dir_flags, fd, relpath, pointer)
                fds.append(fd)
            fd = self._open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW, fd, relpath, pointer)
            fds.append(fd)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise GltfPackageError(
                    "not_regular_file", f"{relpath} is not a regular file", pointer
                )
            if st.st_size > max_bytes:
                raise GltfPackageError(
                    "resource_too_large",
                    f"{relpath} is {st.st_size} bytes, limit {max_bytes}",
                    pointer,
                )
            return _read_fd_bounded(fd, st.st_size)
        finally:
            for opened in fds:
                os.close(opened)

    def _open(self, name: str, flags: int, dir_fd: int, relpath: str, pointer: str) -> int:
        try:
            return os.open(name, flags, dir_fd=dir_fd)
        except FileNotFoundError:
            raise GltfPackageError(
                "resource_missing", f"{relpath} is not in the package", pointer
            ) from None
        except OSError as exc:
            # ELOOP / ENOTDIR: O_NOFOLLOW (or O_DIRECTORY) met a symlink or a plain file.
            try:
                is_link = stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
            except OSError:
                is_link = False
            if is_link:
                raise GltfPackageError(
                    "symlink", f"{relpath} goes through a symbolic link", pointer
                ) from None
            raise GltfPackageError(
                "resource_unreadable", f"{relpath}: {exc.strerror}", pointer
            ) from None

    def close(self) -> None:
        os.close(self._root_fd)


class ZipSource:
    """Entries of one zip, checked from the central directory and again while inflating."""

    def __init__(self, fileobj: BinaryIO, limits: GltfLimits) -> None:
        self.limits = limits
        self._fileobj = fileobj
        try:
            self._zip = zipfile.ZipFile(fileobj)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
            raise GltfPackageError("zip_invalid", f"not a readable zip: {exc}") from None
        if len(infos) > limits.max_zip_files:
            raise GltfPackageError(
                "zip_too_many_files",
                f"zip has {len(infos)} entries, limit {limits.max_zip_files}",
            )
        self.entries: dict[str, zipfile.ZipInfo] = {}
        declared_total = 0
        for info in infos:
            name = info.filename
            self._check_entry_name(name)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise GltfPackageError("zip_symlink", f"zip entry {name!r} is a symbolic link")
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise GltfPackageError("zip_encrypted", f"zip entry {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise GltfPackageError(
                    "zip_unsupported", f"zip entry {name!r} uses compression {info.compress_type}"
                )
            if name in self.entries:
                raise GltfPackageError("zip_entry_name", f"zip has two entries named {name!r}")
            self._check_ratio(name, info.file_size, info.compress_size)
            declared_total += info.file_size
            self.entries[name] = info
        if declared_total > limits.max_zip_total_bytes:
            raise GltfPackageError(
                "zip_too_large",
                f"zip unpacks to {declared_total} bytes, limit {limits.max_zip_total_bytes}",
            )
        self._budget = limits.max_zip_total_bytes

    @staticmethod
    def _check_entry_name(name: str) -> None:
        bad = (
            not name
            or name.startswith("/")
            or "\\" in name
            or _DRIVE_RE.match(name) is not None
            or "\x00" in name
            or ".." in name.rstrip("/").split("/")
        )
        if bad:
            raise GltfPackageError("zip_entry_name", f"zip entry name {name!r} is unsafe")

    def _check_ratio(self, name: str, size: int, compressed: int) -> None:
        if (
            size >= self.limits.zip_ratio_min_bytes
            and size > compressed * self.limits.max_zip_ratio
        ):
            raise GltfPackageError(
                "zip_bomb",
                f"zip entry {name!r} inflates {size / max(compressed, 1):.0f}x "
                f"(limit {self.limits.max_zip_ratio:.0f}x)",
            )

    def scene_files(self) -> list[str]:
        return [
            name
            for name in self.entries
            if name.lower().endswith((".gltf", ".glb"))
            and not name.startswith(_IGNORED_ZIP_PREFIXES)
        ]

    def read(self, relpath: str, max_bytes: int, pointer: str) -> bytes:
        info = self.entries.get(relpath)
        if info is None:
            raise GltfPackageError("resource_missing", f"{relpath} is not in the zip", pointer)
        if info.file_size > max_bytes:
            raise GltfPackageError(
                "resource_too_large",
                f"{relpath} is {info.file_size} bytes, limit {max_bytes}",
                pointer,
            )
        out = bytearray()
        try:
            with self._zip.open(info) as stream:
                while True:
                    chunk = stream.read(_READ_CHUNK)
                    if not chunk:
                        break
                    out += chunk
                    # The central directory can lie; these hold whatever the stream produces.
                    if len(out) > info.file_size or len(out) > self._budget:
                        raise GltfPackageError(
                            "zip_bomb", f"zip entry {relpath!r} inflates past its declared size"
                        )
                    self._check_ratio(relpath, len(out), info.compress_size)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as exc:
            raise GltfPackageError(
                "zip_invalid", f"zip entry {relpath!r}: {exc}", pointer
            ) from None
        self._budget -= len(out)
        return bytes(out)

    def close(self) -> None:
        self._zip.close()
        self._fileobj.close()
