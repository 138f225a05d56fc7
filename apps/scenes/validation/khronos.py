"""The official Khronos glTF-Validator (npm ``gltf-validator``) as the gate of every upload.

It runs with Node (``apps/scenes/node/validate.mjs``) inside the processing sandbox, after our
container checks (GLB framing, zip bombs, URIs: it must never read what those refuse) and before
our document checks. Its errors reject the version; warnings and infos go into the report. Each
issue keeps the validator's code, JSON pointer and message. When Node or the npm package is
missing, :func:`run_khronos_validator` raises :class:`ToolMissing`: processing says so instead of
silently skipping the official check.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from workers.rendering.gltf_builder import glb_bytes
from workers.rendering.gltf_package import GltfPackage, check_uri

from .report import Issue
from .tools import ToolMissing, require_node_package, run_node

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120
# Enough that one repeated error cannot hide every other kind: the stored report groups them by
# code (report.grouped_report), so this many messages are a few lines for the creator.
MAX_ISSUES = 2000
# gltf-validator severities: 0 error, 1 warning, 2 information, 3 hint.
_SEVERITY = {0: "error", 1: "warning", 2: "info", 3: "info"}


class KhronosFailed(Exception):
    """The validator itself crashed, hung or ran out of memory; ``code`` names which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def stage_zip_package(package: GltfPackage, dest: Path) -> Path:
    """Write a loaded zip package as plain files under ``dest`` for the validator to read.

    Only what our loader already read and vetted is written: the document (re-serialised; a GLB
    keeps its BIN chunk) and each buffer and image it references by relative URI.
    """
    doc = package.document
    for kind, items in (("buffers", doc.get("buffers") or []), ("images", doc.get("images") or [])):
        for i, item in enumerate(items):
            uri = item.get("uri") if isinstance(item, dict) else None
            if not uri:
                continue
            rel = check_uri(uri, f"/{kind}/{i}/uri")
            if not rel:
                continue  # data: URI, inside the document
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            data = package.buffers[i] if kind == "buffers" else package.image_data.get(i, b"")
            target.write_bytes(data)
    glb_buffer = next(
        (
            i
            for i, b in enumerate(doc.get("buffers") or [])
            if isinstance(b, dict) and "uri" not in b
        ),
        None,
    )
    if glb_buffer == 0:
        main = dest / "scene.glb"
        main.write_bytes(glb_bytes(doc, package.buffers[0]))
    else:
        main = dest / "scene.gltf"
        main.write_text(json.dumps(doc))
    return main


def run_khronos_validator(path: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """The validator's JSON report for a .glb/.gltf (resources read beside it)."""
    require_node_package("gltf-validator")
    run = run_node("validate.mjs", [str(path), str(MAX_ISSUES)], timeout_s=timeout_s)
    if run.timed_out:
        raise KhronosFailed(
            "validator_timeout", f"The glTF validator did not finish within {timeout_s:.0f} s."
        )
    if run.returncode != 0:
        if run.out_of_memory:
            raise KhronosFailed(
                "resource_limit_exceeded", "The glTF validator ran out of memory on this file."
            )
        logger.warning("gltf-validator failed (rc %s): %s", run.returncode, run.stderr_tail())
        raise KhronosFailed(
            "validator_failed", f"The glTF validator failed on this file (exit {run.returncode})."
        )
    try:
        report = json.loads(run.stdout)
    except ValueError:
        raise KhronosFailed("validator_failed", "The glTF validator gave no report.") from None
    if not isinstance(report, dict) or not isinstance(report.get("issues"), dict):
        raise KhronosFailed("validator_failed", "The glTF validator gave no report.")
    return report


def khronos_issues(report: dict[str, Any], *, prefix: str = "") -> list[Issue]:
    """The validator's messages as report issues (code, severity, message, pointer kept)."""
    issues: list[Issue] = []
    for msg in report.get("issues", {}).get("messages") or []:
        if not isinstance(msg, dict):
            continue
        severity = _SEVERITY.get(int(msg.get("severity", 0)), "error")
        message = str(msg.get("message", ""))[:2000]
        issues.append(
            Issue(
                code=str(msg.get("code", "KHRONOS"))[:100],
                severity=severity,  # type: ignore[arg-type]
                message=f"{prefix}{message}",
                pointer=str(msg.get("pointer", ""))[:500],
                source="khronos",
            )
        )
    return issues


def khronos_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What the stored report keeps of the validator's own (messages are in the issues)."""
    counts = report.get("issues", {})
    info = report.get("info") or {}
    return {
        "validator": "Khronos glTF-Validator",
        "version": report.get("validatorVersion"),
        "errors": counts.get("numErrors", 0),
        "warnings": counts.get("numWarnings", 0),
        "infos": counts.get("numInfos", 0),
        "hints": counts.get("numHints", 0),
        "truncated": bool(counts.get("truncated")),
        "info": {
            k: info.get(k)
            for k in (
                "generator",
                "extensionsUsed",
                "extensionsRequired",
                "animationCount",
                "hasSkins",
                "hasMorphTargets",
                "totalTriangleCount",
                "totalVertexCount",
            )
            if k in info
        },
    }


__all__ = [
    "KhronosFailed",
    "ToolMissing",
    "khronos_issues",
    "khronos_summary",
    "run_khronos_validator",
    "stage_zip_package",
]
