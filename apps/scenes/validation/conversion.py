"""FBX and OBJ import: converted to glTF 2.0 (GLB) with assimp, then validated like any glTF.

An FBX or OBJ comes alone (``.fbx``/``.obj``) or in a zip with its textures (and an OBJ's
``.mtl``), the way creators' tools export them. The converter is Debian's ``assimp-utils``
(the Open Asset Import Library's command line), run inside the processing sandbox with its
limits (memory, CPU, file size) and a wall-clock timeout.

assimp reads nothing but what we place in a fresh directory: the model, and for an OBJ the
material libraries its ``mtllib`` lines name *that the zip holds* (copied under names we choose;
every other ``mtllib`` line is dropped, so ``mtllib /etc/...`` reads nothing). The OBJ is
rewritten line by line the way assimp splits it (``\\`` line continuations joined, ``\\r``,
NUL and form feed as line ends, a UTF-8 BOM skipped) so no directive can hide from the filter.
OBJ has no other directive that reads a file, and MTL ``map_*`` paths are only names: textures
are looked up by :mod:`.repair` in the zip, never on disk. Then :func:`.repair.repair_converted`
embeds those textures and fixes what assimp writes outside glTF's rules; each fix is a named
issue in the report.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from workers.rendering.gltf_package import (
    GltfLimits,
    GltfPackageError,
    ZipSource,
)

from .repair import REPAIR_CODES, ZipFiles, repair_converted
from .report import Issue
from .tools import ToolMissing, run_tool

logger = logging.getLogger(__name__)

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


# assimp's OBJ reader (IOStreamBuffer::getNextDataLine): a backslash before a line end joins the
# next line (the rest of a line after a lone CR, NUL or form feed is skipped up to the LF); CR,
# LF, NUL and form feed each end a line.
_CONTINUATION = re.compile(rb"\\(?:\n|[\r\x00\x0c][^\n]*\n?)")
_LINE_ENDS = re.compile(rb"[\r\x00\x0c]")
_TRAILING_BACKSLASHES = re.compile(rb"\\+(?=\n|\Z)")
_MTLLIB_LINE = re.compile(rb"^.*mtllib.*$", re.IGNORECASE | re.MULTILINE)
_MTLLIB_ARGS = re.compile(rb"^[ \t]*mtllib[ \t]+(.*?)[ \t]*$")


def sanitise_obj(data: bytes, find_library: Any = None) -> tuple[bytes, list[str]]:
    """The OBJ as assimp will read it, with no ``mtllib`` but the ones ``find_library`` allows.

    Lines are split and joined exactly as assimp would, then every line that mentions
    ``mtllib`` (in any case, anywhere) is dropped, except that ``find_library(argument)`` may
    give the replacement name of a library it placed beside the OBJ. No written line ends in a
    backslash, so assimp reads back exactly these lines. Returns the OBJ and the libraries it
    named that were not found.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    data = _CONTINUATION.sub(b"", data)
    data = _LINE_ENDS.sub(b"\n", data)
    data = _TRAILING_BACKSLASHES.sub(b"", data)
    missing: list[str] = []

    def replace(match: re.Match[bytes]) -> bytes:
        args = _MTLLIB_ARGS.match(match.group(0))
        if args is None or find_library is None:
            if args is not None:
                missing.append(args.group(1).decode("utf-8", "replace")[:160])
            return b""
        argument = args.group(1).decode("utf-8", "replace")
        placed = find_library(argument)
        if placed is None:
            missing.append(argument[:160])
            return b""
        return b"mtllib " + placed.encode()

    return _MTLLIB_LINE.sub(replace, data), missing


def _library_finder(files: ZipFiles, box: Path) -> Any:
    """``find_library`` for :func:`sanitise_obj`: copies an ``.mtl`` the zip holds into ``box``
    under a name of ours (``mtl0.mtl``, ...) and returns that name."""
    placed: dict[str, str] = {}

    def find(argument: str) -> str | None:
        # One file name, possibly with spaces; else several names on one line (assimp reads
        # the first): the first that the zip holds.
        for candidate in (argument, *argument.split()):
            name = files.find(candidate)
            if name is None or not name.lower().endswith(".mtl"):
                continue
            if name not in placed:
                placed[name] = f"mtl{len(placed)}.mtl"
                (box / placed[name]).write_bytes(files.read(name))
            return placed[name]
        return None

    return find


def zip_model(path: Path, limits: GltfLimits) -> str | None:
    """The .fbx/.obj entry of a zip that holds no .gltf/.glb, or None (not a zip to convert:
    the glTF loader then checks it and names what is wrong)."""
    if path.suffix.lower() != ".zip":
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        source = ZipSource(os.fdopen(fd, "rb"), limits)
    except (OSError, GltfPackageError):
        return None
    try:
        if source.scene_files():
            return None
        models = sorted(
            name
            for name in source.entries
            if posixpath.splitext(name)[1].lower() in CONVERTIBLE
            and not name.startswith("__MACOSX/")
        )
    finally:
        source.close()
    if len(models) > 1:
        raise ConversionFailed(
            "zip_multiple_scenes",
            f"The zip holds {len(models)} models ({', '.join(models[:4])}); it must hold one. "
            "Upload each model in its own zip, with its textures.",
        )
    return models[0] if models else None


def needs_conversion(path: Path, limits: GltfLimits | None = None) -> bool:
    """An .fbx/.obj, or a zip of one with its textures."""
    if path.suffix.lower() in CONVERTIBLE:
        return True
    return zip_model(path, limits or GltfLimits()) is not None


def _place_model(
    src: Path, box: Path, limits: GltfLimits, issues: list[Issue]
) -> tuple[str, Path, ZipFiles | None, Any]:
    """Put the model (and an OBJ's material libraries) alone in the converter's directory.

    Returns the kind, the model's path there, the zip's files (None for a bare upload) and the
    open zip to close."""
    source = None
    files = None
    member = zip_model(src, limits)
    suffix = posixpath.splitext(member)[1].lower() if member else src.suffix.lower()
    kind = CONVERTIBLE[suffix]
    local = box / f"upload{suffix}"
    if member is not None:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        source = ZipSource(os.fdopen(fd, "rb"), limits)
        files = ZipFiles(source, member, limits)
    if kind == "OBJ":
        data = files.read(member) if files is not None and member else src.read_bytes()
        finder = _library_finder(files, box) if files is not None else None
        obj, missing = sanitise_obj(data, finder)
        local.write_bytes(obj)
        for name in missing:
            where = "is not in the zip" if files is not None else "was not uploaded"
            issues.append(
                Issue(
                    "material_library_missing",
                    "warning",
                    f"The OBJ names the material library '{name}', which {where}; its "
                    "materials are plain grey. Upload a zip with the OBJ, its .mtl and textures.",
                )
            )
    elif files is not None and member:
        local.write_bytes(files.read(member))
    else:
        try:
            os.link(src, local)  # no copy: the sandbox's file-size limit is for what tools write
        except OSError as exc:
            if exc.errno == errno.EFBIG:
                raise
            shutil.copyfile(src, local)
    return kind, local, files, source


def convert_to_glb(
    src: Path,
    work: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    limits: GltfLimits | None = None,
) -> tuple[Path, dict[str, Any], list[Issue]]:
    """Convert an .fbx/.obj (alone or zipped with its textures) into ``work/converted.glb``.

    Returns it, what the report's ``processing.converted_from`` says, and the issues of the
    conversion (textures embedded or missing, fixes made to assimp's output)."""
    limits = limits or GltfLimits()
    binary = assimp_binary()
    box = work / "convert"
    box.mkdir(parents=True, exist_ok=True)
    issues: list[Issue] = []
    kind = CONVERTIBLE.get(src.suffix.lower(), "model")
    source = None
    files: ZipFiles | None = None
    try:
        try:
            kind, local, files, source = _place_model(src, box, limits, issues)
        except KeyError:
            raise ConversionFailed(
                "unsupported_format", f"cannot convert {src.suffix!r} files"
            ) from None
        except GltfPackageError as exc:
            raise ConversionFailed(exc.code, exc.message) from None
        except OSError as exc:
            if exc.errno == errno.EFBIG:
                raise ConversionFailed(
                    "conversion_output_too_large",
                    f"The {kind} file is larger than processing allows.",
                ) from None
            raise
        out = _run_assimp(binary, local, work / "converted.glb", kind, timeout_s)
        try:
            issues += repair_converted(out, kind=kind, files=files, limits=limits)
        except GltfPackageError as exc:
            if exc.code.startswith("zip") or exc.code.startswith("resource"):
                raise ConversionFailed(exc.code, exc.message) from None
            raise ConversionFailed(
                "conversion_failed", f"The converter wrote an unreadable glTF: {exc.message}"
            ) from None
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # assimp wrote something our repairs did not expect: a named rejection, not a crash.
            logger.warning("repairing the converted %s failed: %r", kind, exc)
            raise ConversionFailed(
                "conversion_failed",
                f"The {kind} file converted to a glTF the platform could not prepare ({exc}). "
                "Export it again from your tool, or export glTF (.glb) directly.",
            ) from None
    finally:
        if source is not None:
            source.close()
    info: dict[str, Any] = {"from": kind, "tool": "assimp", "tool_version": assimp_version()}
    if files is not None:
        info["zip_member"] = files.model_name
    fixes = [f"{i.pointer}: {i.message}" for i in issues if i.code in REPAIR_CODES]
    if fixes:
        info["normalised"] = fixes
    return out, info, issues


def _run_assimp(binary: str, local: Path, out: Path, kind: str, timeout_s: float) -> Path:
    run = run_tool(
        [binary, "export", local.name, str(out), "-fglb2"], timeout_s=timeout_s, cwd=local.parent
    )
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
            + (f": {reason.strip()[:300]}." if reason else f" (exit {run.returncode}).")
            + " Check that it opens in your modelling tool, export it again and upload it.",
        )
    return out
