"""glTF scene validation for uploads (pure Python: no Django, so workers and tests can use it).

report = validate_package(Path("upload.zip"), limits=GltfLimits())
if not report.ok: ...  # report.issues say what is wrong, report.to_dict() for storage

The order of the gates, as processing runs them (``khronos=True``, a ``work_dir``):

1. our container checks (GLB framing, zip safety, URIs, file and total sizes): the official
   validator reads resources itself, so it must never see what these refuse;
2. the official Khronos glTF-Validator: its errors reject, its warnings and infos are reported;
3. compressed files (Draco, meshopt, KTX2, WebP) are decoded into a plain derivative GLB,
   which passes 1 and 2 again;
4. our document checks (security limits, render budgets, supported required extensions) on
   what the renderer will load: the derivative when there is one, else the upload.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from workers.rendering.gltf_package import GltfLimits, GltfPackage, GltfPackageError, load_package

from .checks import SUPPORTED_REQUIRED_EXTENSIONS, Checker
from .derivative import DERIVATIVE_NAME, DeriveFailed, decoded_extensions, derive_plain_glb
from .khronos import (
    KhronosFailed,
    khronos_issues,
    khronos_summary,
    run_khronos_validator,
    stage_zip_package,
)
from .report import Issue, SceneStats, ValidationReport
from .tools import ToolMissing

__all__ = [
    "DERIVATIVE_NAME",
    "SUPPORTED_REQUIRED_EXTENSIONS",
    "GltfLimits",
    "Issue",
    "SceneStats",
    "ValidationReport",
    "run_khronos_validator",
    "validate_package",
]

logger = logging.getLogger(__name__)


def _readable_path(path: Path, package: GltfPackage, work: Path, name: str) -> Path:
    """A .glb/.gltf path tools can read: the upload itself, or a zip's vetted files staged."""
    if package.container != "zip":
        return path
    stage = work / name
    stage.mkdir(parents=True, exist_ok=True)
    return stage_zip_package(package, stage)


def _khronos_gate(
    report: ValidationReport, path: Path, *, after_decoding: bool, timeout_s: float
) -> bool:
    """Run the official validator; False when the version must be rejected."""
    try:
        kreport = run_khronos_validator(path, timeout_s=timeout_s)
    except ToolMissing as exc:
        report.issues.append(Issue("validator_unavailable", "error", str(exc)))
        return False
    except KhronosFailed as exc:
        report.issues.append(Issue(exc.code, "error", exc.message))
        return False
    prefix = "In the decoded scene: " if after_decoding else ""
    issues = khronos_issues(kreport, prefix=prefix)
    if after_decoding:
        # The upload's own warnings were reported already; only errors are news here.
        issues = [i for i in issues if i.severity == "error"]
    else:
        report.khronos = khronos_summary(kreport)
    report.issues.extend(issues)
    return not any(i.severity == "error" for i in issues)


def validate_package(
    path: Path,
    *,
    limits: GltfLimits | None = None,
    khronos: bool = False,
    work_dir: Path | None = None,
    tool_timeout_s: float = 120,
) -> ValidationReport:
    """Check an uploaded package; never raises for bad content, returns a report instead.

    Container-level failures (unreadable GLB/zip, unsafe URI, missing file) stop at the first
    problem; document-level problems are all collected. ``khronos=True`` puts the official
    validator in front of our document checks. With a ``work_dir``, compressed files are decoded
    into ``work_dir/render.glb`` (named in ``report.processing["derivative"]``); without one
    they are checked as uploaded (and refused for their required compression extensions).
    """
    limits = limits or GltfLimits()
    path = Path(path)
    report = ValidationReport()
    try:
        package = load_package(path, limits=limits, check_limits=False)
    except GltfPackageError as exc:
        report.issues.append(Issue(exc.code, "error", exc.message, exc.pointer))
        logger.info("scene package %s rejected: %s", path.name, exc.code)
        return report
    decoded = decoded_extensions(package.document)
    if not khronos and (not decoded or work_dir is None):
        return _document_checks(report, package, limits, path)
    with tempfile.TemporaryDirectory(prefix="validate-") as scratch:
        work = Path(work_dir) if work_dir is not None else Path(scratch)
        if khronos:
            readable = _readable_path(path, package, work, "khronos")
            if not _khronos_gate(report, readable, after_decoding=False, timeout_s=tool_timeout_s):
                logger.info("scene package %s refused by the Khronos validator", path.name)
                return report
        if decoded and work_dir is not None:
            derived = Path(work_dir) / DERIVATIVE_NAME
            try:
                summary = derive_plain_glb(
                    _readable_path(path, package, work, "decode"), derived, timeout_s=tool_timeout_s
                )
                package = load_package(derived, limits=limits, check_limits=False)
            except ToolMissing as exc:
                report.issues.append(Issue("decoder_unavailable", "error", str(exc)))
                return report
            except DeriveFailed as exc:
                report.issues.append(Issue(exc.code, "error", exc.message))
                return report
            except GltfPackageError as exc:
                report.issues.append(
                    Issue(exc.code, "error", f"In the decoded scene: {exc.message}", exc.pointer)
                )
                return report
            report.processing["decoded"] = list(summary.get("decoded") or decoded)
            report.processing["derivative"] = DERIVATIVE_NAME
            if khronos and not _khronos_gate(
                report, derived, after_decoding=True, timeout_s=tool_timeout_s
            ):
                return report
    return _document_checks(report, package, limits, path)


def _document_checks(
    report: ValidationReport, package: GltfPackage, limits: GltfLimits, path: Path
) -> ValidationReport:
    checker = Checker(package, limits)
    checker.run()
    report.issues.extend(checker.issues)
    report.stats = checker.stats
    logger.info(
        "scene package %s validated: ok=%s, %d issues",
        path.name,
        report.ok,
        len(report.issues),
    )
    return report
