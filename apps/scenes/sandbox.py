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
  terminal injection), and it dies with its parent;
- a fresh ``/proc`` of its own PID namespace, or none at all where the kernel refuses to
  mount one (inside a Docker container, whose masked ``/proc`` makes a new procfs mount "too
  revealing"; ``SCENE_SANDBOX_PROC=none`` forces it). Never the host's ``/proc`` bound in:
  the child's kernel uid is the platform's, so it could read the Celery worker's
  ``/proc/<pid>/environ``. Without ``/proc`` the child still has its own PID namespace (it
  can neither see nor signal the platform's processes); Node, Python, Mesa's llvmpipe and
  assimp run without it (apps/scenes/tests/test_sandbox.py).

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
PROC_MODES = ("auto", "none")
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


def proc_mode() -> str:
    """``SCENE_SANDBOX_PROC``: ``auto`` (a fresh ``/proc``, or none where it cannot be mounted)
    or ``none`` (never a ``/proc``)."""
    mode = str(getattr(settings, "SCENE_SANDBOX_PROC", "auto"))
    if mode not in PROC_MODES:
        raise ValueError(f"SCENE_SANDBOX_PROC must be one of {PROC_MODES}, not {mode!r}")
    return mode


def bwrap_args(
    *, read_only: list[Path], writable: list[Path], cwd: Path, proc: bool = True
) -> list[str]:
    """bubblewrap's arguments; ``proc=False`` leaves ``/proc`` out (still its own PID
    namespace: see the module's docstring)."""
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
        *(["--proc", "/proc"] if proc else []),
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
# (bwrap, with /proc) pairs that worked here.
_probed_ok: set[tuple[str, bool]] = set()
_warned: set[str] = set()  # bwraps whose missing /proc was logged


def _try(bwrap: str, proc: bool) -> str | None:
    """None when ``bwrap`` builds the sandbox (with or without ``/proc``), else why not."""
    if (bwrap, proc) in _probed_ok:
        return None
    args = bwrap_args(read_only=[], writable=[], cwd=Path("/"), proc=proc)
    try:
        result = subprocess.run(  # noqa: S603 (fixed argv)
            [bwrap, *args, "--", "true"],
            capture_output=True,
            timeout=30,
            env=child_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{bwrap} could not run: {exc}"
    if result.returncode != 0:
        return result.stderr.decode("utf-8", "replace").strip()[-300:] or "exit status " + str(
            result.returncode
        )
    _probed_ok.add((bwrap, proc))
    return None


def _probe(bwrap: str) -> tuple[bool, str | None]:
    """(with /proc, None) when ``bwrap`` can build the sandbox here, else (_, why not)."""
    with _probe_lock:
        if proc_mode() == "none":
            return False, _try(bwrap, proc=False)
        problem = _try(bwrap, proc=True)
        if problem is None:
            return True, None
        # Docker's masked /proc: the kernel refuses a new procfs mount; the rest still works.
        if _try(bwrap, proc=False) is None:
            if bwrap not in _warned:
                _warned.add(bwrap)
                logger.warning(
                    "scene sandbox without /proc: a fresh one cannot be mounted here (%s)", problem
                )
            return False, None
        return True, problem


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
    with_proc, problem = (
        _probe(bwrap) if bwrap else (True, f"{name} is not installed (Debian: bubblewrap)")
    )
    if problem is None:
        assert bwrap is not None
        args = bwrap_args(read_only=read_only, writable=writable, cwd=cwd, proc=with_proc)
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
