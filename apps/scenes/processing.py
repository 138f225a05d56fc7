"""The sandboxed half of scene processing: validate a package and render its thumbnail.

It runs as a child process (``python -m apps.scenes.processing``), never inside the Celery
worker, because both steps parse hostile input and the renderer allocates in C (Mesa) where a
Python ``MemoryError`` cannot stop it. The child caps its own address space and CPU time with
``resource.setrlimit`` before importing anything heavy, so a scene that passes the validator's
limits but still blows up costs one dead child, not the worker. No Django here: the parent
(``services.scene_version_process``) owns the database and storage.

Protocol: progress lines on stdout, one JSON object each (``{"stage": ..., "progress": ...}``);
results in ``OUT_DIR/report.json`` and, when the package is valid, ``OUT_DIR/thumbnail.png``.
Exit 0 when the report is written (valid or not), non-zero when the child itself failed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path
from typing import Any

REPORT_NAME = "report.json"
THUMBNAIL_NAME = "thumbnail.png"


def _limit(kind: int, value: int) -> None:
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def _emit(stage: str, progress: int) -> None:
    sys.stdout.write(json.dumps({"stage": stage, "progress": progress}) + "\n")
    sys.stdout.flush()


def run(
    package: Path, out_dir: Path, *, limits: dict[str, Any], thumb_size: tuple[int, int]
) -> dict[str, Any]:
    from apps.scenes.validation import GltfLimits, validate_package

    _emit("validating", 20)
    report = validate_package(package, limits=GltfLimits(**limits))
    result = report.to_dict()
    if report.ok:
        _emit("rendering", 60)
        from workers.rendering.renderer import thumbnail

        try:
            png = thumbnail(package, size=thumb_size)
        except Exception as exc:  # any renderer failure becomes a report entry
            result["ok"] = False
            result["issues"].append(
                {
                    "code": "render_failed",
                    "severity": "error",
                    "message": f"the scene passed validation but could not be rendered: {exc}",
                    "pointer": "",
                }
            )
        else:
            (out_dir / THUMBNAIL_NAME).write_bytes(png)
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
    args = parser.parse_args(argv)
    # Before any heavy import: limits cover numpy, Mesa and the validator alike.
    _limit(resource.RLIMIT_AS, args.memory_mb * 1024 * 1024)
    _limit(resource.RLIMIT_CPU, args.cpu_seconds)
    width, height = (int(v) for v in args.thumb_size.split("x"))
    run(args.package, args.out_dir, limits=json.loads(args.limits), thumb_size=(width, height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
