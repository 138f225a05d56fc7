"""Loading a package from ``.glb``, ``.gltf`` (+ resources) or ``.zip``: the sources, the decoded
bytes budget, and the limit checks run before anything is decoded or rendered."""

from __future__ import annotations

import logging
import os
import posixpath
from pathlib import Path
from typing import Any

from workers.rendering.gltf_package.container import get_int, get_list, parse_glb, parse_json, ptr
from workers.rendering.gltf_package.counts import check_counts
from workers.rendering.gltf_package.errors import GltfLimits, GltfPackageError
from workers.rendering.gltf_package.images import check_image
from workers.rendering.gltf_package.package import GltfPackage
from workers.rendering.gltf_package.sources import (
    DirSource,
    Source,
    ZipSource,
    check_uri,
    decode_data_uri,
    lstat_regular,
)

logger = logging.getLogger(__name__)


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
    st = lstat_regular(path, limits.max_file_bytes)
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
    source: Source,
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
