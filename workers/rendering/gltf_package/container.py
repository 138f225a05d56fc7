"""The container: GLB header and chunks, strict JSON (UTF-8 object, no duplicate keys, bounded
depth), and the pointer-carrying accessors every check reads the document through."""

from __future__ import annotations

import json
import re
import struct
from typing import Any

from workers.rendering.gltf_package.errors import GltfLimits, GltfPackageError

GLB_MAGIC = b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
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
