"""pip-audit over requirements.txt, honest about what it could not check.

pip-audit asks a vulnerability service (PyPI's JSON API by default) about every pinned
package. Where that service cannot be reached (this build machine reaches only the package
index, whose JSON API answers 404) pip-audit reports every package as "skipped" and still
says "No known vulnerabilities found". This wrapper reads its JSON report and says plainly how
many packages were really audited. Exit status: 1 for any vulnerability found, 0 otherwise,
also when nothing could be audited (the message says so; `--strict` makes that 2).

    python -m deploy.security.audit [-r requirements.txt] [--service pypi|osv] [--strict]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def audit(requirements: Path, service: str) -> dict[str, Any]:
    command = [
        str(Path(sys.executable).with_name("pip-audit")),
        "-r",
        str(requirements),
        "--no-deps",  # every package is pinned in the file, transitive ones included
        "--disable-pip",
        "--vulnerability-service",
        service,
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError as exc:
        raise SystemExit(f"pip-audit failed:\n{done.stderr[-2000:]}") from exc
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--requirements", type=Path, default=Path("requirements.txt"))
    parser.add_argument("--service", default="pypi", choices=["pypi", "osv"])
    parser.add_argument("--strict", action="store_true", help="exit 2 if nothing was audited")
    args = parser.parse_args()
    report = audit(args.requirements, args.service)
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    audited = len(deps) - len(skipped)
    # CLI output below.
    print(f"pip-audit ({args.service}): {len(deps)} pinned packages, {audited} audited")
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"  VULNERABLE {dep['name']}=={dep['version']}: {ids}")
    if skipped:
        print(
            f"  NOT AUDITED: {len(skipped)} packages; the vulnerability service was not "
            f"reachable or did not know them (first reason: {skipped[0]['skip_reason']!r}). "
            "Run `make security-scan` where pypi.org's JSON API or api.osv.dev is reachable."
        )
    if vulnerable:
        return 1
    if args.strict and audited == 0:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
