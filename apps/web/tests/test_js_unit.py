"""Runs the client's JavaScript unit tests (pose, reprojection, frame-id stamp, network
statistics) with Node's built-in test runner, so they are part of `make test`."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TESTS = ROOT / "static" / "client" / "tests"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (apt: nodejs)")
def test_client_js_unit_tests_pass():
    files = sorted(str(p.relative_to(ROOT)) for p in TESTS.glob("*.test.mjs"))
    assert len(files) >= 3
    result = subprocess.run(
        ["node", "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
    passed = int(result.stdout.split("# pass ")[1].split()[0])
    assert passed >= 20
