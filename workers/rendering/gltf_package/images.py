"""Image format and declared size from the header bytes only (PNG, JPEG, KTX2): nothing is
decoded here, so a hostile image costs its header."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from workers.rendering.gltf_package.container import ptr
from workers.rendering.gltf_package.errors import GltfLimits, GltfPackageError
from workers.rendering.gltf_package.package import GltfPackage


@dataclass(frozen=True)
class ImageInfo:
    mime_type: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


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
