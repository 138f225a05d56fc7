"""How a glTF package is refused (:class:`GltfPackageError`) and the bounds it is held to
(:class:`GltfLimits`)."""

from __future__ import annotations

from dataclasses import dataclass


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
