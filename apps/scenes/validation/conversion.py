"""FBX and OBJ import: converted to glTF 2.0 (GLB) with assimp, then validated like any glTF.

The converter is Debian's ``assimp-utils`` (the Open Asset Import Library's command line),
run inside the processing sandbox with its limits (memory, CPU, file size) and a wall-clock
timeout. The upload is placed alone in a fresh directory and assimp runs there; an OBJ's
``mtllib`` lines are dropped (nothing but the upload is part of the scene). Textures the file
names by path are replaced by white in the converted GLB (:func:`normalise_converted`), and the
report lists them.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from workers.rendering.gltf_builder import glb_bytes
from workers.rendering.gltf_package import GltfLimits, GltfPackageError, parse_glb

from .tools import ToolMissing, run_tool

CONVERTIBLE = {".fbx": "FBX", ".obj": "OBJ"}
DEFAULT_TIMEOUT_S = 120


class ConversionFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def assimp_binary() -> str:
    found = shutil.which("assimp")
    if not found:
        raise ToolMissing(
            "FBX and OBJ import needs assimp; install the `assimp-utils` package "
            "(deploy/system-packages.txt, `make setup`)."
        )
    return found


def _place_upload(src: Path, local: Path, kind: str) -> None:
    """Put the upload alone in the converter's directory. An OBJ loses its ``mtllib`` lines: the
    upload is one file, so a material library could only be something else on this machine
    (``mtllib /etc/...``), which assimp would read."""
    if kind == "OBJ":
        with src.open("rb") as fin, local.open("wb") as fout:
            for line in fin:
                if not line.lstrip().lower().startswith(b"mtllib"):
                    fout.write(line)
        return
    try:
        os.link(src, local)  # no copy: the sandbox's file-size limit is for what tools write
    except OSError:
        shutil.copyfile(src, local)


def assimp_version() -> str:
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv
            [assimp_binary(), "version"], capture_output=True, timeout=10, check=False
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for line in out.splitlines():
        if "Version" in line:
            return line.strip()[:80]
    return ""


def convert_to_glb(
    src: Path, work: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[Path, dict[str, Any]]:
    """Convert an .fbx/.obj into ``work/converted.glb``; returns it and what the report says."""
    kind = CONVERTIBLE.get(src.suffix.lower())
    if kind is None:
        raise ConversionFailed("unsupported_format", f"cannot convert {src.suffix!r} files")
    binary = assimp_binary()
    box = work / "convert"
    box.mkdir(parents=True, exist_ok=True)
    local = box / f"upload{src.suffix.lower()}"
    try:
        _place_upload(src, local, kind)
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            raise ConversionFailed(
                "conversion_output_too_large", f"The {kind} file is larger than processing allows."
            ) from None
        raise
    out = work / "converted.glb"
    run = run_tool([binary, "export", local.name, str(out), "-fglb2"], timeout_s=timeout_s, cwd=box)
    if run.timed_out:
        raise ConversionFailed(
            "conversion_timeout", f"Converting the {kind} file took longer than {timeout_s:.0f} s."
        )
    if run.file_too_large:
        raise ConversionFailed(
            "conversion_output_too_large",
            f"The {kind} file converts to a scene too large to process.",
        )
    if run.returncode != 0 or not out.is_file():
        if run.out_of_memory:
            raise ConversionFailed(
                "resource_limit_exceeded", f"Converting the {kind} file ran out of memory."
            )
        said = (run.stdout + run.stderr).decode("utf-8", "replace")
        reason = next((ln for ln in said.splitlines() if "ERROR" in ln), "")
        raise ConversionFailed(
            "conversion_failed",
            f"The {kind} file could not be converted to glTF"
            + (f": {reason.strip()[:300]}" if reason else f" (exit {run.returncode})."),
        )
    try:
        fixes = normalise_converted(out)
    except GltfPackageError as exc:
        raise ConversionFailed(
            "conversion_failed", f"The converter wrote an unreadable glTF: {exc.message}"
        ) from None
    info: dict[str, Any] = {"from": kind, "tool": "assimp", "tool_version": assimp_version()}
    if fixes:
        info["normalised"] = fixes
    return out, info


# Material factors glTF bounds to [0, 1] that assimp derives from FBX/OBJ shininess without
# clamping (it writes e.g. roughness -0.26 and glossiness 1.26 for a shiny Phong material).
_UNIT_FACTORS = (
    ("pbrMetallicRoughness", "metallicFactor"),
    ("pbrMetallicRoughness", "roughnessFactor"),
    ("extensions/KHR_materials_pbrSpecularGlossiness", "glossinessFactor"),
)


# A 1x1 white PNG: stands in for a texture the FBX/OBJ names by path but the upload lacks.
_WHITE_PNG_URI = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/"
    "AAX+Av4N70a4AAAAAElFTkSuQmCC"
)


def normalise_converted(path: Path) -> list[str]:
    """Fix what the converter writes that glTF or a self-contained upload cannot hold, in place:
    out-of-range material factors are clamped; textures the source file names by path (often an
    absolute path on the creator's machine, never part of the upload) become plain white, so the
    scene still loads. Returns one line per change, for the report."""
    document, bin_chunk = parse_glb(path.read_bytes(), GltfLimits())
    fixes: list[str] = []
    for i, image in enumerate(document.get("images") or []):
        uri = image.get("uri") if isinstance(image, dict) else None
        if isinstance(uri, str) and not uri.startswith("data:"):
            image["uri"] = _WHITE_PNG_URI
            image.pop("mimeType", None)
            fixes.append(f"/images/{i}: external texture {uri[:120]!r} is not in the upload")
    for m, material in enumerate(document.get("materials") or []):
        if not isinstance(material, dict):
            continue
        for where, key in _UNIT_FACTORS:
            holder: Any = material
            for part in where.split("/"):
                holder = holder.get(part) if isinstance(holder, dict) else None
            value = holder.get(key) if isinstance(holder, dict) else None
            if isinstance(value, int | float) and not 0.0 <= value <= 1.0:
                holder[key] = min(1.0, max(0.0, float(value)))  # type: ignore[index]
                fixes.append(f"/materials/{m}/{where}/{key}: {value:.3g} -> {holder[key]:g}")  # type: ignore[index]
    if fixes:
        path.write_bytes(glb_bytes(document, bin_chunk))
    return fixes
