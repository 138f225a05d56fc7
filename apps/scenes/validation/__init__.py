"""glTF scene validation for uploads (pure Python: no Django, so workers and tests can use it).

report = validate_package(Path("upload.zip"), limits=GltfLimits())
if not report.ok: ...  # report.issues say what is wrong, report.to_dict() for storage
"""

from __future__ import annotations

import logging
from pathlib import Path

from workers.rendering.gltf_package import GltfLimits, GltfPackageError, load_package

from .checks import SUPPORTED_REQUIRED_EXTENSIONS, Checker
from .khronos import run_khronos_validator
from .report import Issue, SceneStats, ValidationReport

__all__ = [
    "SUPPORTED_REQUIRED_EXTENSIONS",
    "GltfLimits",
    "Issue",
    "SceneStats",
    "ValidationReport",
    "run_khronos_validator",
    "validate_package",
]

logger = logging.getLogger(__name__)


def validate_package(
    path: Path, *, limits: GltfLimits | None = None, khronos: bool = False
) -> ValidationReport:
    """Check an uploaded package; never raises for bad content, returns a report instead.

    Container-level failures (unreadable GLB/zip, unsafe URI, missing file) stop at the first
    problem; document-level problems are all collected. With ``khronos=True`` the Khronos
    validator's report is attached when the binary is installed and our checks passed (it reads
    resources itself, so it must not see an unchecked file).
    """
    limits = limits or GltfLimits()
    report = ValidationReport()
    try:
        package = load_package(Path(path), limits=limits, check_limits=False)
    except GltfPackageError as exc:
        report.issues.append(Issue(exc.code, "error", exc.message, exc.pointer))
        logger.info("scene package %s rejected: %s", Path(path).name, exc.code)
        return report
    checker = Checker(package, limits)
    checker.run()
    report.issues.extend(checker.issues)
    report.stats = checker.stats
    if khronos and report.ok:
        report.khronos = run_khronos_validator(Path(path))
    logger.info(
        "scene package %s validated: ok=%s, %d issues",
        Path(path).name,
        report.ok,
        len(report.issues),
    )
    return report
