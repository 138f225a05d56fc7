"""The processing child's bubblewrap sandbox: what it can see, and what happens without it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files import File

from apps.scenes import sandbox, services
from apps.scenes.models import VersionStatus
from apps.scenes.tasks import process_scene_version
from apps.scenes.tests.helpers import small_glb

# Run inside the sandbox: tries what a hostile scene exploiting a parser would try.
_PROBE = textwrap.dedent(
    """
    import json, os, socket, sys
    planted, upload, out_dir, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    result = {"env": dict(os.environ), "uid": os.getuid()}

    def attempt(name, fn):
        try:
            result[name] = fn()
        except OSError as exc:
            result[name] = "denied: " + type(exc).__name__

    attempt("planted", lambda: open(planted).read())
    attempt("settings", lambda: open("vrplatform/settings/base.py").read()[:10])
    attempt("upload", lambda: open(upload).read())
    attempt("write_upload", lambda: open(upload, "a").write("x"))
    attempt("write_out", lambda: open(os.path.join(out_dir, "o.txt"), "w").write("ok"))
    attempt("connect", lambda: socket.create_connection(("127.0.0.1", port), timeout=2) and "open")
    attempt("proc", lambda: sorted(p for p in os.listdir("/proc") if p.isdigit()))
    print(json.dumps(result))
    """
)


def _run_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Any]:
    monkeypatch.setenv("PLANTED_PLATFORM_SECRET", "s3cret")
    secret_dir = tmp_path / "elsewhere"
    secret_dir.mkdir()
    planted = secret_dir / "server-side.txt"
    planted.write_text("not for scenes")
    pkg = tmp_path / "pkg"
    out = tmp_path / "out"
    pkg.mkdir()
    out.mkdir()
    (pkg / "scene.glb").write_text("upload")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    child = sandbox.wrap(
        [sys.executable, "-c", _PROBE, str(planted), str(pkg / "scene.glb"), str(out), str(port)],
        read_only=[pkg],
        writable=[out],
        cwd=Path(django_settings.BASE_DIR),
    )
    assert child.sandboxed
    proc = subprocess.run(child.argv, env=child.env, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    try:
        accepted: Any = listener.accept()
    except TimeoutError:
        accepted = None
    finally:
        listener.close()
    return json.loads(proc.stdout), accepted


def _bwrap_refusing_proc(tmp_path: Path) -> str:
    """A ``bwrap`` that fails as Docker's masked /proc makes it fail on ``--proc``."""
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = --proc ] && '
        '{ echo "bwrap: Can\'t mount proc on /newroot/proc: Operation not permitted" >&2; exit 1; }'
        "; done\n"
        f'exec {shutil.which("bwrap")} "$@"\n'
    )
    fake.chmod(0o755)
    return str(fake)


@pytest.mark.parametrize("proc", ["mounted", "refused", "none"])
def test_sandboxed_child_sees_only_its_upload_env_and_no_network(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proc: str
) -> None:
    """Also where a fresh /proc cannot be mounted (Docker) or SCENE_SANDBOX_PROC=none: then no
    /proc at all, never the host's (the child's kernel uid is the platform's)."""
    settings.SCENE_SANDBOX = "required"
    if proc == "refused":
        settings.SCENE_SANDBOX_BWRAP = _bwrap_refusing_proc(tmp_path)
    settings.SCENE_SANDBOX_PROC = "none" if proc == "none" else "auto"
    result, accepted = _run_probe(tmp_path, monkeypatch)
    if proc == "mounted":
        assert result["proc"] == ["1", "2"]  # its own PID namespace: bwrap's init and itself
    else:
        assert result["proc"].startswith("denied")
    # What it needs works: read the upload, write its outputs.
    assert result["upload"] == "upload"
    assert result["write_out"] == 2
    assert (tmp_path / "out" / "o.txt").read_text() == "ok"
    # What it must not do: read other files, write the upload, reach a port, see secrets.
    assert result["planted"].startswith("denied")
    assert result["settings"].startswith("denied")  # of the checkout: apps/ and workers/ only
    assert result["write_upload"].startswith("denied")
    assert result["connect"].startswith("denied")
    assert accepted is None
    assert "PLANTED_PLATFORM_SECRET" not in result["env"]
    assert set(result["env"]) <= {*sandbox.child_env(), "PWD", "LC_CTYPE"}
    assert result["uid"] == sandbox.NOBODY


def _uploaded(owner: Any, path: Path) -> Any:
    with path.open("rb") as fh:
        _, version = services.scene_create(owner=owner, name="s", upload=File(fh, name=path.name))
    return version


@pytest.mark.django_db
@pytest.mark.parametrize("proc", ["auto", "none"])
def test_processing_child_gets_none_of_the_platform_environment(
    settings: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_user: Any,
    package: Any,
    proc: str,
) -> None:
    """End to end: the real processing child, given a ``PYTHONPATH`` with a planted
    ``sitecustomize`` that records the platform's secret, never runs it. Without /proc (as in
    a container) processing still works: Node's validator, Python, the EGL thumbnail."""
    settings.SCENE_SANDBOX = "required"
    settings.SCENE_SANDBOX_PROC = proc
    hook = tmp_path / "hook"
    hook.mkdir()
    marker = tmp_path / "leaked.txt"
    (hook / "sitecustomize.py").write_text(
        f"import os\nopen({str(marker)!r}, 'w').write(os.environ.get('JWT_SECRET', '?'))\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hook))
    monkeypatch.setenv("JWT_SECRET", "platform-secret")
    version = _uploaded(make_user("creator"), package(small_glb))
    assert process_scene_version.delay(str(version.id)).get() == "ready"
    assert not marker.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("mode", "status"), [("required", "rejected"), ("best_effort", "ready")])
def test_without_bubblewrap(
    settings: Any, make_user: Any, package: Any, mode: str, status: str
) -> None:
    """``required`` refuses to process (and says why); ``best_effort`` runs with limits only."""
    settings.SCENE_SANDBOX = mode
    settings.SCENE_SANDBOX_BWRAP = "/nonexistent/bwrap"
    version = _uploaded(make_user("creator"), package(small_glb))
    process_scene_version.delay(str(version.id))
    version.refresh_from_db()
    assert version.status == status
    if status == VersionStatus.REJECTED:
        assert [i["code"] for i in version.report["issues"]] == ["sandbox_unavailable"]
