"""The sandboxed half of scene processing: validate a package and render its thumbnail.

It runs as a child process (``python -m apps.scenes.processing``), never inside the Celery
worker, because both steps parse hostile input and the renderer allocates in C (Mesa) where a
Python ``MemoryError`` cannot stop it. The child caps its own address space and CPU time with
``resource.setrlimit`` before importing anything heavy, so a scene that passes the validator's
limits but still blows up costs one dead child, not the worker. No Django here: the parent
(``pipeline.scene_version_process``) owns the database and storage.

Steps: FBX/OBJ are converted to GLB (assimp); then :func:`validate_package` runs the gates
(container checks, the official Khronos validator, decoding of compressed files into a plain
derivative, our document checks); then the thumbnail is rendered from what workers will load.
External tools (node, assimp, basisu) are children of this child and inherit its limits.

Protocol: progress lines on stdout, one JSON object each (``{"stage": ..., "progress": ...}``);
results in ``OUT_DIR/report.json`` and, when the package is valid, ``OUT_DIR/thumbnail.png``
and, when processing made one, the render-ready ``OUT_DIR/render.glb`` (named in the report's
``processing.render_file``). Exit 0 when the report is written (valid or not), non-zero when
the child itself failed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPORT_NAME = "report.json"
THUMBNAIL_NAME = "thumbnail.png"


def _limit(kind: int, value: int, *, soft_only: bool = False) -> None:
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    # The address-space cap is soft only: tools that need address space rather than memory
    # (Node's WebAssembly reserves guard regions) swap it for RLIMIT_DATA of the same size.
    resource.setrlimit(kind, (value, hard if soft_only else value))


def _emit(stage: str, progress: int) -> None:
    sys.stdout.write(json.dumps({"stage": stage, "progress": progress}) + "\n")
    sys.stdout.flush()


def _rejected(code: str, message: str, processing: dict[str, Any]) -> dict[str, Any]:
    # Here, not at the top: the validation package loads the glTF parser, after main's limits.
    from apps.scenes.validation.report import Issue

    return {
        "ok": False,
        "issues": [asdict(Issue(code=code, severity="error", message=message))],
        "stats": {},
        "khronos": None,
        "processing": processing,
    }


def run(
    package: Path,
    out_dir: Path,
    *,
    limits: dict[str, Any],
    thumb_size: tuple[int, int],
    tool_timeout_s: float = 120,
) -> dict[str, Any]:
    # Here, not at the top: heavy imports (parser, renderer) come after main's resource limits.
    from apps.scenes.validation import DERIVATIVE_NAME, GltfLimits, validate_package
    from apps.scenes.validation.conversion import (
        ConversionFailed,
        convert_to_glb,
        needs_conversion,
    )
    from apps.scenes.validation.report import Issue
    from apps.scenes.validation.tools import ToolMissing

    processing: dict[str, Any] = {}
    converted_issues: list[Any] = []  # textures embedded or missing, fixes to assimp's output
    try:
        convert = needs_conversion(package, GltfLimits(**limits))
    except ConversionFailed as exc:
        result = _rejected(exc.code, exc.message, processing)
        (out_dir / REPORT_NAME).write_text(json.dumps(result))
        return result
    if convert:
        _emit("converting", 15)
        try:
            package, processing["converted_from"], converted_issues = convert_to_glb(
                package, out_dir, timeout_s=tool_timeout_s, limits=GltfLimits(**limits)
            )
        except ToolMissing as exc:
            result = _rejected("converter_unavailable", str(exc), processing)
        except ConversionFailed as exc:
            result = _rejected(exc.code, exc.message, processing)
        else:
            result = {}
        if result:
            (out_dir / REPORT_NAME).write_text(json.dumps(result))
            return result
    _emit("validating", 20)
    report = validate_package(
        package,
        limits=GltfLimits(**limits),
        khronos=True,
        work_dir=out_dir,
        tool_timeout_s=tool_timeout_s,
    )
    report.processing = {**processing, **report.processing}
    report.issues[:0] = converted_issues
    # What workers will load: the decoded derivative, else the converted GLB, else the upload.
    render_path = package
    if report.processing.get("derivative"):
        render_path = out_dir / DERIVATIVE_NAME
    elif "converted_from" in processing:
        render_path = package.replace(out_dir / DERIVATIVE_NAME)
    if render_path.parent == out_dir:
        report.processing["render_file"] = DERIVATIVE_NAME
    result = report.to_dict()
    if report.ok:
        _emit("rendering", 60)
        from workers.rendering.animation import SceneAnimation
        from workers.rendering.gltf_package import load_package
        from workers.rendering.renderer import thumbnail
        from workers.rendering.scene import build_scene_data
        from workers.rendering.spawn import compute_spawn

        try:
            loaded = load_package(render_path, limits=GltfLimits(**limits))
            animation = SceneAnimation.from_package(loaded)
            # An animated scene's thumbnail is its first clip's first frame (t = 0), not the
            # rest pose.
            scene = animation.scene_at(0.0) if animation else build_scene_data(loaded)
            png = thumbnail(scene, size=thumb_size)
            # Where viewers start (the thumbnail's framing of the same bounds, or a camera)
            # and the clips a creator and a session's host choose from.
            result["stats"]["spawn"] = compute_spawn(
                loaded.document, scene.bounds_min, scene.bounds_max
            )
            result["stats"]["clips"] = [
                {"name": c.name, "duration": round(c.duration, 4)}
                for c in (animation.clips if animation else [])
            ]
        except Exception as exc:  # any renderer failure becomes a report entry
            result["ok"] = False
            result["issues"].append(
                asdict(
                    Issue(
                        code="render_failed",
                        severity="error",
                        message=f"the scene passed validation but could not be rendered: {exc}",
                    )
                )
            )
        else:
            (out_dir / THUMBNAIL_NAME).write_bytes(png)
            # What the renderer (stream and thumbnail alike) will not draw as authored: named
            # warnings on the version, shown on the creator's page before publishing.
            result["issues"].extend(w.as_issue() for w in scene.warnings)
    (out_dir / REPORT_NAME).write_text(json.dumps(result))
    _emit("finishing", 90)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("package", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--limits", default="{}", help="GltfLimits fields as JSON")
    parser.add_argument("--memory-mb", type=int, default=3072)
    parser.add_argument("--cpu-seconds", type=int, default=300)
    parser.add_argument("--thumb-size", default="512x288")
    parser.add_argument("--max-output-mb", type=int, default=1024)
    parser.add_argument("--tool-timeout", type=float, default=120)
    args = parser.parse_args(argv)
    # Before any heavy import: limits cover numpy, Mesa, node and the converters alike.
    _limit(resource.RLIMIT_AS, args.memory_mb * 1024 * 1024, soft_only=True)
    _limit(resource.RLIMIT_CPU, args.cpu_seconds)
    # No file written here (converted or decoded scene included) grows past this: SIGXFSZ.
    _limit(resource.RLIMIT_FSIZE, args.max_output_mb * 1024 * 1024)
    width, height = (int(v) for v in args.thumb_size.split("x"))
    run(
        args.package,
        args.out_dir,
        limits=json.loads(args.limits),
        thumb_size=(width, height),
        tool_timeout_s=args.tool_timeout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
