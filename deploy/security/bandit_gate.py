"""bandit over the code, with one place of review: ruff's ``noqa: S<nnn>``.

ruff's ``S`` rules are bandit's checks under the same numbers (``S108`` is ``B108``), and the
lint step already makes every author justify each exception on the line
(``# noqa: S108 (written by the entrypoint)``). bandit does not read those comments; rather
than doubling each one with ``# nosec``, this gate counts a bandit finding as reviewed when its
line carries the matching ``noqa``. Config: ``[tool.bandit]`` in pyproject.toml.

    python -m deploy.security.bandit_gate [paths...]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

PATHS = ["apps", "vrplatform", "workers", "deploy", "benchmarks"]
NOQA = re.compile(r"#\s*noqa:([^#(]*)")


def reviewed(result: dict[str, Any]) -> bool:
    line = Path(result["filename"]).read_text().splitlines()[result["line_number"] - 1]
    match = NOQA.search(line)
    if not match:
        return False
    codes = {c.strip() for c in match.group(1).split(",")}
    return "S" + result["test_id"][1:] in codes


def main(argv: list[str]) -> int:
    command = [
        str(Path(sys.executable).with_name("bandit")),
        "-c",
        "pyproject.toml",
        "-r",
        *(argv or PATHS),
        "--severity-level",
        "medium",
        "--confidence-level",
        "medium",
        "--format",
        "json",
        "--quiet",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    report = json.loads(done.stdout)
    results = report["results"]
    open_findings = [r for r in results if not reviewed(r)]
    files = report["metrics"]["_totals"]["loc"]
    # CLI output below.
    print(
        f"bandit: {files} lines scanned, {len(results)} medium+ findings, "
        f"{len(results) - len(open_findings)} reviewed (ruff noqa), {len(open_findings)} open"
    )
    for r in open_findings:
        print(f"  {r['filename']}:{r['line_number']}: {r['test_id']} {r['issue_text']}")
    return 1 if open_findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
