"""Running the external tools of processing (Node scripts, assimp) inside the sandbox child.

The processing child (``apps.scenes.processing``) caps its own address space, CPU time and file
size before it starts; tools it runs inherit those caps. Node is the exception that needs care:
V8 reserves many GiB of *address space* for WebAssembly guard regions (the Draco and meshopt
decoders are wasm), so under ``RLIMIT_AS`` it cannot even instantiate them. For tools we
therefore trade the address-space cap for ``RLIMIT_DATA`` of the same size (committed, private
writable memory: what an allocation bomb actually grows), plus V8's own heap limit.

No Django here (the child does not load it).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent.parent / "node"  # our .mjs scripts
PROJECT_ROOT = Path(__file__).resolve().parents[3]  # node resolves node_modules from here
NODE_PACKAGE_HINT = "run `make setup` (or `npm ci` in the project root)"


class ToolMissing(Exception):
    """A tool processing needs is not installed; the message says what to install."""


@dataclass(frozen=True)
class ToolRun:
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False

    @property
    def out_of_memory(self) -> bool:
        text = self.stderr[-4000:].decode("utf-8", "replace").lower()
        return any(
            sign in text
            for sign in (
                "out of memory",
                "allocation failed",
                "bad_alloc",
                "cannot allocate memory",
                "memoryerror",
                "heap limit",
            )
        )

    @property
    def file_too_large(self) -> bool:
        # SIGXFSZ: the tool wrote past RLIMIT_FSIZE (a huge output); 3: our scripts saw EFBIG.
        return self.returncode in (-25, 153, 3)

    def stderr_tail(self, n: int = 400) -> str:
        return self.stderr[-n:].decode("utf-8", "replace").strip()


def node_binary() -> str:
    # VRP_NODE: another node binary (a path or a name on PATH).
    found = shutil.which(os.environ.get("VRP_NODE", "node"))
    if not found:
        raise ToolMissing(
            "Node.js is not installed, so the official Khronos glTF-Validator cannot run; "
            "install the `nodejs` package (deploy/system-packages.txt, `make setup`)."
        )
    return found


def require_node_package(name: str) -> None:
    if not (PROJECT_ROOT / "node_modules" / name / "package.json").is_file():
        raise ToolMissing(f"The npm package {name!r} is not installed; {NODE_PACKAGE_HINT}.")


def _tool_limits(memory_bytes: int | None) -> Callable[[], None]:
    def apply() -> None:
        if memory_bytes is None:
            return
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))

    return apply


def memory_cap() -> int | None:
    """The processing child's address-space cap (None when not capped)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


def run_tool(
    argv: list[str],
    *,
    timeout_s: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> ToolRun:
    """Run a tool with the child's memory cap as RLIMIT_DATA; never raises for its failures."""
    cap = memory_cap()
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv built by our code, no shell
            argv,
            cwd=str(cwd) if cwd else None,
            env={**os.environ, **(env or {})},
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
            preexec_fn=_tool_limits(cap),  # safe: the processing child runs no threads
        )
    except subprocess.TimeoutExpired as exc:
        return ToolRun(-9, exc.stdout or b"", exc.stderr or b"", timed_out=True)
    return ToolRun(proc.returncode, proc.stdout, proc.stderr)


def run_node(script: str, args: list[str], *, timeout_s: float) -> ToolRun:
    """``node NODE_DIR/script args``, with V8's heap held under the child's memory cap."""
    node = node_binary()
    cap = memory_cap()
    flags = [f"--max-old-space-size={max(256, cap // (1024 * 1024) // 2)}"] if cap else []
    env = {
        "VRP_PYTHON": sys.executable,  # derive.mjs decodes WebP with Pillow through it
        "VRP_TOOL_TIMEOUT_MS": str(int(timeout_s * 1000)),
    }
    return run_tool([node, *flags, str(NODE_DIR / script), *args], timeout_s=timeout_s, env=env)
