"""A strict, bounded reader for glTF 2.0 packages: ``.glb``, ``.gltf`` (+ resources), ``.zip``.

Uploaded scenes are hostile input. This module is the only code that turns an uploaded file
into glTF JSON and buffers, so it enforces, before anything is decoded or rendered:

- container structure (GLB header and chunks, JSON that is a UTF-8 object, ``asset.version``);
- URIs: only relative paths inside the package or base64 ``data:`` URIs, never a scheme, an
  absolute path, a drive letter, a backslash or a ``..`` segment (also when percent-encoded);
- files: never follows a symlink, never opens anything outside the package's directory (paths
  are walked component by component with ``O_NOFOLLOW`` relative to a directory descriptor);
- zips: entry count, total size and compression ratio from the central directory, enforced
  again while inflating (headers can lie), unsafe entry names and symlink entries rejected;
- sizes and counts (:class:`GltfLimits`), image formats and declared pixel counts (read from
  the image header, never by decoding).

Every failure is a :class:`GltfPackageError` with a stable ``code`` and a JSON ``pointer``.

Usage::

    pkg = load_package(Path("scene.glb"))
    prim = pkg.document["meshes"][0]["primitives"][0]
    positions = pkg.read_accessor(prim["attributes"]["POSITION"])  # (count, 3) float32
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import posixpath
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

GLB_MAGIC = b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
_READ_CHUNK = 64 * 1024

# componentType -> little-endian dtype (glTF data is always little-endian).
COMPONENT_DTYPES: dict[int, np.dtype[Any]] = {
    5120: np.dtype("<i1"),
    5121: np.dtype("<u1"),
    5122: np.dtype("<i2"),
    5123: np.dtype("<u2"),
    5125: np.dtype("<u4"),
    5126: np.dtype("<f4"),
}
# accessor.type -> (columns, rows); matrices are column-major.
TYPE_SHAPES: dict[str, tuple[int, int]] = {
    "SCALAR": (1, 1),
    "VEC2": (1, 2),
    "VEC3": (1, 3),
    "VEC4": (1, 4),
    "MAT2": (2, 2),
    "MAT3": (3, 3),
    "MAT4": (4, 4),
}
_NORMALIZE_DIVISORS = {5120: 127.0, 5121: 255.0, 5122: 32767.0, 5123: 65535.0}
_SPARSE_INDEX_TYPES = (5121, 5123, 5125)
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_IGNORED_ZIP_PREFIXES = ("__MACOSX/",)


class GltfPackageError(Exception):
    """A package was rejected. ``code`` is stable (tests and UI key on it)."""

    def __init__(self, code: str, message: str, pointer: str = "") -> None:
        super().__init__(f"{code}: {message} (at {pointer or '/'})")
        self.code = code
        self.message = message
        self.pointer = pointer


@dataclass(frozen=True)
class GltfLimits:
    """Upper bounds for everything an upload can make us allocate or render."""

    max_file_bytes: int = 256 * 1024 * 1024
    max_json_bytes: int = 32 * 1024 * 1024
    max_json_depth: int = 64
    max_buffers: int = 256
    max_buffer_bytes: int = 256 * 1024 * 1024
    max_total_decoded_bytes: int = 512 * 1024 * 1024
    max_nodes: int = 100_000
    max_meshes: int = 10_000
    max_accessors: int = 200_000
    max_materials: int = 10_000
    max_triangles: int = 10_000_000
    max_textures: int = 256
    max_images: int = 256
    max_image_pixels: int = 8192 * 8192
    max_zip_files: int = 1000
    max_zip_ratio: float = 100.0
    # Tiny entries compress absurdly well (1 KiB of zeros is 100x); the ratio rule starts here.
    zip_ratio_min_bytes: int = 1024 * 1024
    max_zip_total_bytes: int = 512 * 1024 * 1024
    # Animated scenes are posed on the CPU every frame (workers/rendering/animation.py); keys
    # are summed over every sampler's input, so a million-keyframe file is refused.
    max_animation_keys: int = 200_000


@dataclass(frozen=True)
class ImageInfo:
    mime_type: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


# --------------------------------------------------------------------------- JSON helpers


def ptr(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def get_list(obj: dict[str, Any], key: str, pointer: str = "") -> list[dict[str, Any]]:
    """``obj[key]`` as a list of objects ([] when absent); anything else is a schema error."""
    value = obj.get(key, [])
    where = f"{pointer}/{key}"
    if not isinstance(value, list):
        raise GltfPackageError("schema", f"'{key}' must be an array", where)
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise GltfPackageError("schema", f"'{key}' entries must be objects", f"{where}/{i}")
    return value


def get_int(
    obj: dict[str, Any],
    key: str,
    pointer: str,
    *,
    default: int | None = None,
    minimum: int = 0,
    maximum: int | None = None,
) -> int:
    """A required (or defaulted) integer property within [minimum, maximum]."""
    value = obj.get(key, default)
    where = f"{pointer}/{key}"
    if value is None:
        raise GltfPackageError("schema", f"'{key}' is required", where)
    # bool is an int subclass; JSON true is not a valid index.
    if isinstance(value, bool) or not isinstance(value, int):
        raise GltfPackageError("schema", f"'{key}' must be an integer", where)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"[{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise GltfPackageError("schema", f"'{key}' = {value} is out of range {bound}", where)
    return value


def get_ref(obj: dict[str, Any], key: str, pointer: str, array: list[Any], name: str) -> int:
    """An index property that must point into ``array`` (code ``index_out_of_range``)."""
    index = get_int(obj, key, pointer)
    if index >= len(array):
        raise GltfPackageError(
            "index_out_of_range",
            f"'{key}' refers to {name} {index} but there are only {len(array)}",
            f"{pointer}/{key}",
        )
    return index


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # Different parsers keep different duplicates; ambiguity is a smuggling vector.
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _json_depth_ok(data: str, max_depth: int) -> bool:
    """Bracket depth outside strings, checked before parsing so recursion can't blow up."""
    depth = 0
    in_string = False
    escaped = False
    for ch in data:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def parse_json(data: bytes, limits: GltfLimits) -> dict[str, Any]:
    """Parse and check the glTF JSON: size, UTF-8, an object, asset.version 2.x."""
    if len(data) > limits.max_json_bytes:
        raise GltfPackageError(
            "json_too_large", f"JSON is {len(data)} bytes, limit {limits.max_json_bytes}"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GltfPackageError("json_invalid", f"JSON is not valid UTF-8: {exc}") from None
    if text.startswith("\ufeff"):
        raise GltfPackageError("json_invalid", "JSON must not start with a byte order mark")
    if not _json_depth_ok(text, limits.max_json_depth):
        raise GltfPackageError("json_too_deep", f"JSON nests deeper than {limits.max_json_depth}")
    try:
        document = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError) as exc:
        raise GltfPackageError("json_invalid", f"JSON does not parse: {exc}") from None
    if not isinstance(document, dict):
        raise GltfPackageError("json_not_object", "the glTF JSON must be an object")
    asset = document.get("asset")
    if not isinstance(asset, dict):
        raise GltfPackageError("asset_missing", "the 'asset' object is required", "/asset")
    version = asset.get("version")
    if not isinstance(version, str) or not re.fullmatch(r"2\.[0-9]+", version):
        raise GltfPackageError(
            "asset_version",
            f"only glTF 2.x is supported, this file says version {version!r}",
            "/asset/version",
        )
    min_version = asset.get("minVersion")
    if min_version is not None and min_version != "2.0":
        raise GltfPackageError(
            "asset_version",
            f"the file requires glTF {min_version!r}, only 2.0 is supported",
            "/asset/minVersion",
        )
    return document


# --------------------------------------------------------------------------- GLB


def not_a_glb_message(data: bytes) -> str:
    """What a file uploaded as .glb that is not one looks like, in words a creator can act on
    (a saved web page is the usual case: the download link's page instead of the model)."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\x0c")
    low = head.lower()
    if not data:
        looks, advice = "is empty", "Upload the .glb file your tool exported."
    elif low.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in low:
        looks = "looks like an HTML web page"
        advice = (
            "This often happens when a download saves the page that links to a model instead "
            "of the model. Download the .glb file itself and upload it."
        )
    elif head.startswith(b"{"):
        looks = "looks like JSON text (a .gltf file?)"
        advice = "Upload a .gltf file with the extension .gltf, zipped with its .bin and textures."
    elif data.startswith(b"PK\x03\x04"):
        looks, advice = "is a zip archive", "Upload it with the extension .zip."
    elif data.startswith(b"Kaydara FBX") or b"FBXHeaderExtension" in head:
        looks, advice = "is an FBX file", "Upload it with the extension .fbx."
    elif head.startswith(b"<"):
        looks = "looks like XML or HTML text"
        advice = "Export the scene as binary glTF (.glb) from your tool and upload that."
    elif head and all(32 <= c < 127 or c in b"\t\r\n" for c in head[:256]):
        looks = "looks like a text file"
        advice = "Export the scene as binary glTF (.glb) from your tool and upload that."
    else:
        looks = "is some other kind of file"
        advice = "Export the scene as binary glTF (.glb) from your tool and upload that."
    return f"This is not a GLB file: it {looks}, and a GLB starts with 'glTF'. {advice}"


def parse_glb(data: bytes, limits: GltfLimits) -> tuple[dict[str, Any], bytes | None]:
    """Split a GLB into (document, BIN chunk or None), checking every length."""
    if data[:4] != GLB_MAGIC[: len(data)] or not data:
        raise GltfPackageError("glb_magic", not_a_glb_message(data))
    if len(data) < 12:
        raise GltfPackageError("glb_truncated", f"GLB is {len(data)} bytes, header needs 12")
    version, length = struct.unpack_from("<II", data, 4)
    if version != 2:
        raise GltfPackageError("glb_version", f"GLB container version {version}, expected 2")
    if length != len(data):
        code = "glb_truncated" if length > len(data) else "glb_length"
        raise GltfPackageError(code, f"GLB header says {length} bytes, file has {len(data)}")
    offset = 12
    chunks: list[tuple[int, int, int]] = []  # (type, start, length)
    while offset < length:
        if offset + 8 > length:
            raise GltfPackageError("glb_chunk", f"chunk header at byte {offset} is truncated")
        chunk_length, chunk_type = struct.unpack_from("<II", data, offset)
        start = offset + 8
        if chunk_length > length - start:
            raise GltfPackageError(
                "glb_chunk",
                f"chunk at byte {offset} claims {chunk_length} bytes, only {length - start} left",
            )
        if chunk_length % 4 or start % 4:
            raise GltfPackageError("glb_chunk", f"chunk at byte {offset} is not 4-byte aligned")
        chunks.append((chunk_type, start, chunk_length))
        offset = start + chunk_length
    if not chunks or chunks[0][0] != CHUNK_JSON:
        raise GltfPackageError("glb_chunk", "the first GLB chunk must be JSON")
    types = [c[0] for c in chunks]
    if CHUNK_JSON in types[1:] or CHUNK_BIN in types[2:]:
        raise GltfPackageError("glb_chunk", "a GLB has one JSON chunk, then at most one BIN chunk")
    bin_chunk: bytes | None = None
    if len(chunks) > 1 and chunks[1][0] == CHUNK_BIN:
        _, start, chunk_length = chunks[1]
        bin_chunk = data[start : start + chunk_length]
    _, json_start, json_length = chunks[0]
    # JSON chunk is padded with spaces, which JSON ignores.
    document = parse_json(data[json_start : json_start + json_length], limits)
    return document, bin_chunk


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


class _Source(Protocol):
    """Where a package's files come from (a directory or a zip), addressed by safe paths."""

    def read(self, relpath: str, max_bytes: int, pointer: str) -> bytes: ...

    def close(self) -> None: ...


def _lstat_regular(path: Path, max_bytes: int) -> os.stat_result:
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


# --------------------------------------------------------------------------- images


def sniff_image(data: bytes | memoryview) -> ImageInfo | None:
    """Format and declared size from the header only (no decoding); None if not PNG/JPEG/KTX2.

    Raises ``image_invalid`` if the magic matches but the header is broken.
    """
    head = bytes(data[:80])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(head) < 24 or head[12:16] != b"IHDR":
            raise GltfPackageError("image_invalid", "PNG without an IHDR header")
        width, height = struct.unpack_from(">II", head, 16)
        return ImageInfo("image/png", width, height)
    if head.startswith(b"\xab\x4b\x54\x58\x20\x32\x30\xbb\r\n\x1a\n"):
        if len(head) < 48:
            raise GltfPackageError("image_invalid", "KTX2 header is truncated")
        width, height, depth, layers, faces = struct.unpack_from("<IIIII", head, 20)
        planes = max(depth, 1) * max(layers, 1) * max(faces, 1)
        return ImageInfo("image/ktx2", width, max(height, 1) * planes)
    if head.startswith(b"\xff\xd8"):
        return _sniff_jpeg(data)
    return None


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _sniff_jpeg(data: bytes | memoryview) -> ImageInfo:
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise GltfPackageError("image_invalid", f"JPEG marker expected at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (seg_len,) = struct.unpack_from(">H", data, i + 2)
        if marker in _JPEG_SOF:
            if i + 9 > n:
                break
            height, width = struct.unpack_from(">HH", data, i + 5)
            if height == 0 or width == 0:
                raise GltfPackageError("image_invalid", "JPEG declares a zero dimension")
            return ImageInfo("image/jpeg", width, height)
        if marker in (0xD9, 0xDA) or seg_len < 2:  # EOI / start of scan before any SOF
            break
        i += 2 + seg_len
    raise GltfPackageError("image_invalid", "JPEG has no frame header (SOF)")


# --------------------------------------------------------------------------- accessors


@dataclass(frozen=True)
class AccessorLayout:
    dtype: np.dtype[Any]
    columns: int
    rows: int
    column_stride: int
    element_size: int
    normalized: bool
    component_type: int

    @property
    def components(self) -> int:
        return self.columns * self.rows


def accessor_layout(accessor: dict[str, Any], pointer: str) -> AccessorLayout:
    """Element layout of an accessor, incl. the column padding glTF requires for small matrices."""
    component_type = accessor.get("componentType")
    dtype = COMPONENT_DTYPES.get(component_type) if isinstance(component_type, int) else None
    if dtype is None or isinstance(component_type, bool):
        raise GltfPackageError(
            "accessor_invalid",
            f"componentType {component_type!r} is not valid",
            f"{pointer}/componentType",
        )
    type_name = accessor.get("type")
    shape = TYPE_SHAPES.get(type_name) if isinstance(type_name, str) else None
    if shape is None:
        raise GltfPackageError(
            "accessor_invalid", f"type {type_name!r} is not valid", f"{pointer}/type"
        )
    normalized = accessor.get("normalized", False)
    if not isinstance(normalized, bool):
        raise GltfPackageError(
            "accessor_invalid", "normalized must be a boolean", f"{pointer}/normalized"
        )
    if normalized and component_type not in _NORMALIZE_DIVISORS:
        raise GltfPackageError(
            "accessor_invalid",
            "only 8- and 16-bit integer accessors can be normalized",
            f"{pointer}/normalized",
        )
    columns, rows = shape
    size = dtype.itemsize
    column_stride = rows * size if columns == 1 else (rows * size + 3) // 4 * 4
    return AccessorLayout(
        dtype=dtype,
        columns=columns,
        rows=rows,
        column_stride=column_stride,
        element_size=columns * column_stride,
        normalized=normalized,
        component_type=int(component_type),  # type: ignore[arg-type]  # checked above
    )


# --------------------------------------------------------------------------- the package


@dataclass
class GltfPackage:
    """A loaded glTF: the JSON document and every buffer, fully in memory and bounds-checked."""

    document: dict[str, Any]
    buffers: list[bytes]
    # Encoded bytes of images referenced by uri (bufferView images are sliced on demand).
    image_data: dict[int, bytes] = field(default_factory=dict)
    container: str = ""  # "glb", "gltf" or "zip"

    def buffer_view(self, index: int) -> dict[str, Any]:
        views = get_list(self.document, "bufferViews")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(views):
            raise GltfPackageError(
                "index_out_of_range", f"no bufferView {index!r}", ptr("bufferViews", str(index))
            )
        return views[index]

    def buffer_view_bytes(self, index: int) -> memoryview:
        view = self.buffer_view(index)
        pointer = ptr("bufferViews", index)
        buffer_index = get_ref(view, "buffer", pointer, self.buffers, "buffer")
        offset = get_int(view, "byteOffset", pointer, default=0)
        length = get_int(view, "byteLength", pointer, minimum=1)
        buffer = self.buffers[buffer_index]
        if offset + length > len(buffer):
            raise GltfPackageError(
                "buffer_view_out_of_bounds",
                f"bufferView {index} spans bytes {offset}..{offset + length} "
                f"of buffer {buffer_index}, which has {len(buffer)}",
                pointer,
            )
        return memoryview(buffer)[offset : offset + length]

    def image_bytes(self, index: int) -> bytes:
        images = get_list(self.document, "images")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(images):
            raise GltfPackageError("index_out_of_range", f"no image {index!r}", ptr("images"))
        if index in self.image_data:
            return self.image_data[index]
        image = images[index]
        pointer = ptr("images", index)
        if "bufferView" not in image:
            raise GltfPackageError("image_invalid", "image has neither uri nor bufferView", pointer)
        view_index = get_int(image, "bufferView", pointer)
        return bytes(self.buffer_view_bytes(view_index))

    def read_accessor(self, index: int) -> npt.NDArray[Any]:
        """Accessor data as an array of shape (count, components), a copy owned by the caller.

        Integer data keeps its dtype unless ``normalized``, which gives float32 in [0, 1] or
        [-1, 1]. Sparse substitution is applied.
        """
        accessors = get_list(self.document, "accessors")
        pointer = ptr("accessors", index)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(accessors):
            raise GltfPackageError("index_out_of_range", f"no accessor {index!r}", pointer)
        accessor = accessors[index]
        layout = accessor_layout(accessor, pointer)
        count = get_int(accessor, "count", pointer, minimum=1)
        if "bufferView" in accessor:
            view_index = get_int(accessor, "bufferView", pointer)
            offset = get_int(accessor, "byteOffset", pointer, default=0)
            stride = self._stride(view_index, layout)
            data = self._strided(view_index, offset, stride, count, layout, pointer)
        else:
            data = np.zeros((count, layout.components), dtype=layout.dtype)
        if "sparse" in accessor:
            self._apply_sparse(data, accessor["sparse"], count, layout, pointer + "/sparse")
        if layout.normalized:
            divisor = _NORMALIZE_DIVISORS[layout.component_type]
            return np.maximum(data.astype(np.float32) / np.float32(divisor), np.float32(-1.0))
        return data

    def _stride(self, view_index: int, layout: AccessorLayout) -> int:
        view = self.buffer_view(view_index)
        pointer = ptr("bufferViews", view_index)
        if "byteStride" not in view:
            return layout.element_size
        stride = get_int(view, "byteStride", pointer, minimum=4, maximum=252)
        if stride % 4 or stride < layout.element_size:
            raise GltfPackageError(
                "buffer_view_invalid",
                f"byteStride {stride} must be a multiple of 4 and >= the element size "
                f"{layout.element_size}",
                pointer + "/byteStride",
            )
        return stride

    def _strided(
        self,
        view_index: int,
        offset: int,
        stride: int,
        count: int,
        layout: AccessorLayout,
        pointer: str,
    ) -> npt.NDArray[Any]:
        view = self.buffer_view_bytes(view_index)
        end = offset + stride * (count - 1) + layout.element_size
        if end > len(view):
            raise GltfPackageError(
                "accessor_out_of_bounds",
                f"accessor needs bytes {offset}..{end} of bufferView {view_index}, "
                f"which has {len(view)}",
                pointer,
            )
        arr: npt.NDArray[Any] = np.ndarray(
            shape=(count, layout.columns, layout.rows),
            dtype=layout.dtype,
            buffer=view,
            offset=offset,
            strides=(stride, layout.column_stride, layout.dtype.itemsize),
        )
        return np.array(arr).reshape(count, layout.components)

    def _apply_sparse(
        self,
        data: npt.NDArray[Any],
        sparse: Any,
        count: int,
        layout: AccessorLayout,
        pointer: str,
    ) -> None:
        if not isinstance(sparse, dict):
            raise GltfPackageError("accessor_invalid", "sparse must be an object", pointer)
        n = get_int(sparse, "count", pointer, minimum=1, maximum=count)
        indices = sparse.get("indices")
        values = sparse.get("values")
        if not isinstance(indices, dict) or not isinstance(values, dict):
            raise GltfPackageError(
                "accessor_invalid", "sparse needs indices and values objects", pointer
            )
        ip = pointer + "/indices"
        index_type = indices.get("componentType")
        if index_type not in _SPARSE_INDEX_TYPES:
            raise GltfPackageError(
                "accessor_invalid",
                f"sparse index componentType {index_type!r} is not valid",
                ip + "/componentType",
            )
        index_layout = accessor_layout({"componentType": index_type, "type": "SCALAR"}, ip)
        idx = self._strided(
            get_int(indices, "bufferView", ip),
            get_int(indices, "byteOffset", ip, default=0),
            index_layout.element_size,
            n,
            index_layout,
            ip,
        ).reshape(n)
        if n > 1 and not bool(np.all(idx[1:] > idx[:-1])):
            raise GltfPackageError(
                "accessor_invalid", "sparse indices must be strictly increasing", ip
            )
        if int(idx[-1]) >= count:
            raise GltfPackageError(
                "accessor_invalid", f"sparse index {int(idx[-1])} >= count {count}", ip
            )
        vp = pointer + "/values"
        vals = self._strided(
            get_int(values, "bufferView", vp),
            get_int(values, "byteOffset", vp, default=0),
            layout.element_size,
            n,
            layout,
            vp,
        )
        data[idx.astype(np.int64)] = vals


# --------------------------------------------------------------------------- loading


class _Budget:
    """Total decoded bytes across buffers and images."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.limit = limit

    def take(self, n: int, pointer: str) -> None:
        if n > self.left:
            raise GltfPackageError(
                "total_bytes_exceeded",
                f"decoded data exceeds the limit of {self.limit} bytes",
                pointer,
            )
        self.left -= n


def load_package(
    path: Path, *, limits: GltfLimits | None = None, check_limits: bool = True
) -> GltfPackage:
    """Load ``.glb``, ``.gltf`` (resources beside it) or ``.zip`` (one scene + resources).

    ``check_limits=False`` skips the count/triangle/image-pixel limits (the validator checks
    those itself to report them all at once); container, URI, file and size checks always run.
    """
    limits = limits or GltfLimits()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".glb", ".gltf", ".zip"):
        raise GltfPackageError(
            "unsupported_container", f"expected .glb, .gltf or .zip, got {path.name!r}"
        )
    st = _lstat_regular(path, limits.max_file_bytes)
    del st
    if suffix == ".zip":
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        zsource = ZipSource(os.fdopen(fd, "rb"), limits)
        try:
            scenes = zsource.scene_files()
            if not scenes:
                raise GltfPackageError(
                    "zip_no_scene", "the zip holds no scene file (.glb, .gltf, .obj or .fbx)"
                )
            if len(scenes) > 1:
                raise GltfPackageError(
                    "zip_multiple_scenes",
                    f"the zip must contain exactly one .gltf/.glb, found {sorted(scenes)[:5]}",
                )
            main = scenes[0]
            data = zsource.read(main, limits.max_file_bytes, "")
            base = posixpath.dirname(main)
            return _load(
                data, main.lower().endswith(".glb"), zsource, base, limits, check_limits, "zip"
            )
        finally:
            zsource.close()
    dsource = DirSource(path.parent)
    try:
        data = dsource.read(path.name, limits.max_file_bytes, "")
        return _load(data, suffix == ".glb", dsource, "", limits, check_limits, suffix[1:])
    finally:
        dsource.close()


def _load(
    data: bytes,
    is_glb: bool,
    source: _Source,
    base: str,
    limits: GltfLimits,
    check_limits: bool,
    container: str,
) -> GltfPackage:
    if is_glb:
        document, bin_chunk = parse_glb(data, limits)
    else:
        document, bin_chunk = parse_json(data, limits), None
    del data
    budget = _Budget(limits.max_total_decoded_bytes)
    cache: dict[str, bytes] = {}

    def fetch(uri: Any, pointer: str, max_bytes: int) -> bytes:
        relpath = check_uri(uri, pointer)
        if not relpath:
            decoded = decode_data_uri(uri, pointer, min(max_bytes, budget.left)).data
            budget.take(len(decoded), pointer)
            return decoded
        full = posixpath.join(base, relpath) if base else relpath
        if full not in cache:
            try:
                content = source.read(full, min(max_bytes, budget.left), pointer)
            except GltfPackageError as exc:
                if exc.code == "resource_too_large" and budget.left < max_bytes:
                    budget.take(budget.left + 1, pointer)  # report it as the total limit
                raise
            budget.take(len(content), pointer)
            cache[full] = content
        return cache[full]

    buffers_json = get_list(document, "buffers")
    if len(buffers_json) > limits.max_buffers:
        raise GltfPackageError(
            "too_many_buffers",
            f"{len(buffers_json)} buffers, limit {limits.max_buffers}",
            "/buffers",
        )
    buffers: list[bytes] = []
    for i, buffer in enumerate(buffers_json):
        pointer = ptr("buffers", i)
        length = get_int(buffer, "byteLength", pointer, minimum=1)
        if length > limits.max_buffer_bytes:
            raise GltfPackageError(
                "buffer_too_large",
                f"buffer {i} is {length} bytes, limit {limits.max_buffer_bytes}",
                pointer + "/byteLength",
            )
        if "uri" in buffer:
            content = fetch(buffer["uri"], pointer + "/uri", length + 3)
        elif _is_meshopt_fallback(buffer):
            # EXT_meshopt_compression's fallback buffer has no data by design (decoders fill it);
            # processing decodes such files into a plain derivative before anything reads it.
            buffers.append(b"")
            continue
        elif i == 0 and bin_chunk is not None:
            content = bin_chunk
            budget.take(len(content), pointer)
        else:
            raise GltfPackageError(
                "buffer_invalid",
                "buffer has no uri and there is no GLB BIN chunk for it",
                pointer,
            )
        # GLB BIN and files may carry up to 3 bytes of padding past byteLength.
        if not length <= len(content) <= length + 3:
            raise GltfPackageError(
                "buffer_length_mismatch",
                f"buffer {i} declares {length} bytes but its data has {len(content)}",
                pointer + "/byteLength",
            )
        buffers.append(content[:length] if len(content) != length else content)
    package = GltfPackage(document=document, buffers=buffers, container=container)

    images = get_list(document, "images")
    if check_limits and len(images) > limits.max_images:
        raise GltfPackageError(
            "too_many_images", f"{len(images)} images, limit {limits.max_images}", "/images"
        )
    for i, image in enumerate(images):
        pointer = ptr("images", i)
        if "uri" in image:
            if "bufferView" in image:
                raise GltfPackageError(
                    "image_invalid", "image has both uri and bufferView", pointer
                )
            package.image_data[i] = fetch(image["uri"], pointer + "/uri", limits.max_buffer_bytes)
        if check_limits:
            check_image(package, i, limits)
    if check_limits:
        check_counts(package, limits)
    logger.debug("loaded %s package: %d buffers, %d images", container, len(buffers), len(images))
    return package


def _is_meshopt_fallback(buffer: dict[str, Any]) -> bool:
    ext = buffer.get("extensions")
    meshopt = ext.get("EXT_meshopt_compression") if isinstance(ext, dict) else None
    return isinstance(meshopt, dict) and meshopt.get("fallback") is True


def check_image(package: GltfPackage, index: int, limits: GltfLimits) -> ImageInfo:
    """Format by magic bytes and declared pixels, without decoding; raises on violation."""
    pointer = ptr("images", index)
    data = package.image_bytes(index)
    info = sniff_image(data)
    if info is None:
        raise GltfPackageError(
            "image_format",
            f"image {index} is not PNG, JPEG or KTX2 (starts with {bytes(data[:8])!r})",
            pointer,
        )
    if info.width == 0 or info.height == 0:
        raise GltfPackageError("image_invalid", f"image {index} has a zero dimension", pointer)
    if info.pixels > limits.max_image_pixels:
        raise GltfPackageError(
            "image_too_large",
            f"image {index} declares {info.width}x{info.height} pixels, "
            f"limit {limits.max_image_pixels} pixels",
            pointer,
        )
    return info


def primitive_triangles(mode: int, vertex_count: int) -> int:
    """Triangles a primitive draws: TRIANGLES n/3, STRIP and FAN n-2, points and lines 0."""
    if mode == 4:
        return vertex_count // 3
    if mode in (5, 6):
        return max(vertex_count - 2, 0)
    return 0


def iter_primitives(document: dict[str, Any]) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(mesh index, primitive index, primitive) for every primitive."""
    for m, mesh in enumerate(get_list(document, "meshes")):
        for p, prim in enumerate(get_list(mesh, "primitives", ptr("meshes", m))):
            yield m, p, prim


def mesh_triangle_counts(document: dict[str, Any]) -> list[int]:
    """Triangles per mesh from accessor counts (metadata only; references must be valid)."""
    accessors = get_list(document, "accessors")
    meshes = get_list(document, "meshes")
    counts = [0] * len(meshes)
    for m, p, prim in iter_primitives(document):
        pointer = ptr("meshes", m, "primitives", p)
        mode = get_int(prim, "mode", pointer, default=4, maximum=6)
        if "indices" in prim:
            acc = accessors[get_ref(prim, "indices", pointer, accessors, "accessor")]
        else:
            attributes = prim.get("attributes")
            if not isinstance(attributes, dict) or "POSITION" not in attributes:
                continue
            acc = accessors[
                get_ref(attributes, "POSITION", pointer + "/attributes", accessors, "accessor")
            ]
        n = acc.get("count", 0)
        counts[m] += primitive_triangles(mode, n if isinstance(n, int) else 0)
    return counts


def instanced_triangles(document: dict[str, Any]) -> int:
    """Triangles rendered: every node with a mesh draws that mesh once (meshes can be reused)."""
    per_mesh = mesh_triangle_counts(document)
    total = 0
    for i, node in enumerate(get_list(document, "nodes")):
        if "mesh" in node:
            total += per_mesh[get_ref(node, "mesh", ptr("nodes", i), per_mesh, "mesh")]
    return max(total, sum(per_mesh))


def check_counts(package: GltfPackage, limits: GltfLimits) -> None:
    """Array counts and the rendered triangle count against ``limits``."""
    doc = package.document
    for key, limit, code in (
        ("nodes", limits.max_nodes, "too_many_nodes"),
        ("meshes", limits.max_meshes, "too_many_meshes"),
        ("accessors", limits.max_accessors, "too_many_accessors"),
        ("materials", limits.max_materials, "too_many_materials"),
        ("textures", limits.max_textures, "too_many_textures"),
    ):
        n = len(get_list(doc, key))
        if n > limit:
            raise GltfPackageError(code, f"{n} {key}, limit {limit}", "/" + key)
    triangles = instanced_triangles(doc)
    if triangles > limits.max_triangles:
        raise GltfPackageError(
            "too_many_triangles",
            f"the scene draws {triangles} triangles, limit {limits.max_triangles}",
            "/meshes",
        )
