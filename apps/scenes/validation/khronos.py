"""Optional second opinion: the Khronos glTF-Validator, when its binary is installed.

It is only ever a supplement: absent or failing, it returns None and the built-in checks stand.
It reads external resources itself, so only run it on packages our own checks accepted.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_BINARIES = ("gltf_validator", "gltf-validator")
_TIMEOUT_S = 60


def find_khronos_validator() -> str | None:
    for name in _BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


def run_khronos_validator(path: Path) -> dict[str, Any] | None:
    """The validator's JSON report for a .glb/.gltf, or None if unavailable or it failed."""
    binary = find_khronos_validator()
    if binary is None or Path(path).suffix.lower() not in (".glb", ".gltf"):
        return None
    try:
        # "-o" prints the JSON report on stdout; no shell, fixed argv.
        proc = subprocess.run(  # noqa: S603
            [binary, "-o", str(path)],
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
        report = json.loads(proc.stdout.decode("utf-8", "replace"))
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        logger.warning("Khronos glTF validator failed on %s: %s", path.name, exc)
        return None
    return report if isinstance(report, dict) else None
