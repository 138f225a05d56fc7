"""The processing child's sandbox: bubblewrap (``bwrap``) namespaces around a command.

Scene processing parses hostile files with C code (assimp, Mesa, image decoders, Node's
validator), so its child runs with nothing it does not need:

- an environment of its own, built here (``PATH``, ``HOME`` in its private ``/tmp``, the locale,
  renderer knobs), never the platform's (``JWT_SECRET``, ``DATABASE_URL``, ...);
- a filesystem of read-only binds: the system directories, the Python it runs on, the
  repository's ``apps/`` and ``workers/`` code, ``node_modules``, and the caller's read-only paths
  (the upload); the caller's writable paths (its output directory) and an empty tmpfs ``/tmp``
  are the only places it can write; nothing else of the host (media, other uploads, ``/root``,
  ``/home``, ``/etc``'s secrets) exists in it;
- no network (its own empty network namespace), its own PID/IPC/UTS namespaces, the
  ``nobody`` user of its own user namespace with no capabilities, a new session (no
  terminal injection), and it dies with its parent.

``SCENE_SANDBOX`` decides what happens where bubblewrap is missing or cannot make namespaces
(some container runtimes forbid them): ``required`` (the default) refuses to process and says
why; ``best_effort`` logs an error and runs the child with the clean environment and resource
limits only; ``off`` never uses bubblewrap (still the clean environment). See deploy/README.md.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil
from django.conf import settings

logger = logging.getLogger(__name__)

MODES = ("required", "best_effort", "off")
NOBODY = 65534
# Host environment variables the child may see: locale and renderer (EGL/Mesa) knobs only.
_PASS_NAMES = frozenset({"LANG", "LC_ALL", "TZ", "EGL_PLATFORM", "LIBGL_ALWAYS_SOFTWARE"})
_PASS_PREFIXES = ("MESA_", "GALLIUM_", "LP_", "__EGL_", "__GLX_")
# What of /etc the child reads: the loader cache, alternatives links, Mesa's config.
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "drirc", "glvnd")


class SandboxUnavailable(Exception):
    """``SCENE_SANDBOX=required`` and bubblewrap is missing or cannot create namespaces."""


@dataclass(frozen=True)
class Wrapped:
    argv: list[str]
    env: dict[str, str]
    sandboxed: bool


def sandbox_mode() -> str:
    mode = str(getattr(settings, "SCENE_SANDBOX", "required"))
    if mode not in MODES:
        raise ValueError(f"SCENE_SANDBOX must be one of {MODES}, not {mode!r}")
    return mode


def tool_dirs() -> list[Path]:
    """``SCENE_TOOL_PATH``: extra directories of tools (assimp, node) outside ``/usr``, first on
    the child's ``PATH`` and bound read-only into the sandbox."""
    return [Path(p) for p in getattr(settings, "SCENE_TOOL_PATH", []) or []]


def child_env() -> dict[str, str]:
    """The whole environment of the processing child (with or without bubblewrap)."""
    env = {
        "PATH": ":".join([*map(str, tool_dirs()), "/usr/local/bin:/usr/bin:/bin"]),
        "HOME": "/tmp",  # noqa: S108 (the sandbox's own private tmpfs)
        "LANG": "C.UTF-8",
        # One BLAS thread: the child does no linear algebra worth the per-thread buffers,
        # which would otherwise count against its address-space limit.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # the code is mounted read-only
    }
    for name, value in os.environ.items():
        if name in _PASS_NAMES or name.startswith(_PASS_PREFIXES):
            env[name] = value
    return env


def _bind(args: list[str], flag: str, path: Path) -> None:
    """Bind ``path`` at the same path inside, from what it resolves to (symlinked venvs)."""
    args += [flag, str(path.resolve()), str(path)]


def bwrap_args(*, read_only: list[Path], writable: list[Path], cwd: Path) -> list[str]:
    args = [
        "--unshare-all",  # net, ipc, pid, uts, cgroup; user where it can
        "--unshare-user",
        "--uid",
        str(NOBODY),
        "--gid",
        str(NOBODY),
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",  # noqa: S108 (a fresh tmpfs inside the sandbox)
    ]
    for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "opt"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir() and name != "opt":  # /opt holds other software; only its venv
            args += ["--ro-bind", str(top), str(top)]
    for name in _ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    # A GPU's render nodes, for the thumbnail renderer's EGL (llvmpipe needs none).
    for dev in ["/dev/dri", *sorted(glob.glob("/dev/nvidia*"))]:
        args += ["--dev-bind-try", dev, dev]
    base = Path(settings.BASE_DIR)
    code = [base / "apps", base / "workers", base / "node_modules"]
    python = [Path(sys.prefix), Path(sys.base_prefix)]
    for path in [*python, *code, *tool_dirs(), *read_only]:
        if path.exists() and not str(path.resolve()).startswith("/usr/"):
            _bind(args, "--ro-bind", path)
    for path in writable:
        _bind(args, "--bind", path)
    return [*args, "--chdir", str(cwd)]


_probe_lock = threading.Lock()
_probed_ok: set[str] = set()


def _probe(bwrap: str) -> str | None:
    """None when ``bwrap`` can build the sandbox here, else why not (cached when it works)."""
    with _probe_lock:
        if bwrap in _probed_ok:
            return None
        argv = [bwrap, *bwrap_args(read_only=[], writable=[], cwd=Path("/")), "--", "true"]
        try:
            proc = subprocess.run(  # noqa: S603 (fixed argv)
                argv, capture_output=True, timeout=30, env=child_env(), check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{bwrap} could not run: {exc}"
        if proc.returncode != 0:
            return proc.stderr.decode("utf-8", "replace").strip()[-300:] or "exit status " + str(
                proc.returncode
            )
        _probed_ok.add(bwrap)
        return None


def wrap(argv: list[str], *, read_only: list[Path], writable: list[Path], cwd: Path) -> Wrapped:
    """``argv`` ready to run in the sandbox, as ``SCENE_SANDBOX`` says.

    Raises :class:`SandboxUnavailable` when the sandbox is required and cannot be built.
    """
    mode = sandbox_mode()
    env = child_env()
    if mode == "off":
        return Wrapped(argv, env, sandboxed=False)
    name = str(getattr(settings, "SCENE_SANDBOX_BWRAP", "") or "bwrap")
    bwrap = shutil.which(name)
    problem = _probe(bwrap) if bwrap else f"{name} is not installed (Debian: bubblewrap)"
    if problem is None:
        assert bwrap is not None
        args = bwrap_args(read_only=read_only, writable=writable, cwd=cwd)
        return Wrapped([bwrap, *args, "--", *argv], env, sandboxed=True)
    if mode == "required":
        logger.error(
            "scene processing refused: SCENE_SANDBOX=required and the bubblewrap sandbox "
            "cannot be built: %s",
            problem,
        )
        raise SandboxUnavailable(problem)
    logger.error(
        "SCENE_SANDBOX=best_effort: processing WITHOUT the bubblewrap sandbox "
        "(clean environment and resource limits only): %s",
        problem,
    )
    return Wrapped(argv, env, sandboxed=False)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill a child started with :func:`wrap`, sandbox and all.

    Killing ``bwrap`` alone can leave the sandbox running (and holding the output pipe open):
    its processes are in a session and PID namespace of their own. So ``bwrap`` is stopped
    first (it can start nothing more), then its direct children (the namespace's init, whose
    death ends every process in the namespace), then ``bwrap`` itself.
    """
    try:
        outer = psutil.Process(proc.pid)
        outer.send_signal(signal.SIGSTOP)
        inner = outer.children()
    except psutil.NoSuchProcess:
        inner = []
    for child in inner:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    proc.kill()
