"""The browser viewer, measured by the page itself (issue 12).

Run: ``.venv/bin/python benchmarks/bench_viewer.py [--seconds 30] [--quality 720p] [--sbs]
[--synthetic] [--jitter-target 0|default] [--platform-url URL] [--json OUT] [--out DIR]``

What a user does, in Debian Chromium driven by Playwright: the platform starts the way
``make run`` starts it (``manage.py run_platform``: SQLite, in-memory channel layer, the demo
scene, one streaming worker; throw-away database and media here), or ``--platform-url`` reuses
a running one; sign in as ``player`` / ``player-demo`` on the sign-in page; create a session on
the demo room from the lobby; pick the quality rung in the viewer's selector; look around
(mouse drag) and strafe (A/D keys) for ``--seconds``. The flat preview asks for one centre view
(mono: half the render, encode and decode work of both eyes); ``--sbs`` ticks the page's "Both
eyes" toggle first, which asks for the side-by-side stereo stream a headset gets. The report
says which layout was measured (``views``: the worker keeps stereo where one eye would be
narrower than the frame-id stamp). Every second it records
``window.vrplatform.stats()`` (fps decoded and displayed, pose-to-photon p50/p99 from the
stamped frame ids, the per-stage breakdown, jitter buffer and decode ms per frame, inbound
bitrate) and the worker's sent and target bitrate (``/api/morpheus/performance_metrics``).

Image quality: while the head moves the page's decoded frames are captured (drawImage of the
video to a canvas, with the frame id read from the captured pixels and the worker's metadata of
that frame, which carries its render pose and layout); after the browser closes, each is
compared with a full-quality render of the same pose and layout (``Renderer.render_view`` of the
centre eye for a mono frame, ``Renderer.render_stereo`` for a stereo one; the scene file the
worker streams) by SSIM on luma, the stamp's band left out. The capture costs the page one readback
every ``--capture-every`` seconds.

``--synthetic`` then runs the synthetic headset (workers/headset) on the same scene and rung
and reports its figures beside the browser's. A screenshot of the page and the preview canvas
at its own resolution are written to ``--out``: look at them (no 16x16 blocks, no stamp).

Bounded: one browser, one stream, ``--seconds`` of motion, at most ``--captures`` captures;
everything runs on this machine's cores (on the 2-core VM the browser's decode, the worker's
render and encode and daphne share them).

One module past ~700 lines on purpose: driving the page, capturing and scoring its frames serve
this benchmark alone and share no code with the others (``duplicates`` finds none).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.core.testing import free_port, http_ok, wait_until  # noqa: E402
from apps.core.testing_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from workers.streaming.ssim import ssim  # noqa: E402

PY = sys.executable
USERNAME, PASSWORD = "player", "player-demo"
STAMP_BAND = 16  # workers/streaming/frames.py DEFAULT_BLOCK: the stamp's rows
STAGE_ORDER = (
    "pose_to_worker",
    "queue",
    "render",
    "convert",
    "encode",
    "send",
    "network_decode",
    "display",
)
LOOK_SPEED = 0.003  # rad per pixel of drag (static/client/js/viewer.js)


# ---------------------------------------------------------------- the platform, as make run


class MakeRunPlatform:
    """``manage.py run_platform`` on a free port with a throw-away SQLite database and media
    directory (``make run`` uses the checkout's own; the rest is the same command)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.pop("DJANGO_SETTINGS_MODULE", None)  # manage.py's default, as make run
        env.pop("TEST_MEDIA_ROOT", None)
        self.env = {
            **env,
            "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
            "MEDIA_ROOT": str(tmp / "media"),
            "PYTHONUNBUFFERED": "1",
        }
        self.log = tmp / "run_platform.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300.0) -> None:
        self.proc = subprocess.Popen(
            [PY, "manage.py", "run_platform", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole below
        )
        proc = self.proc

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"run_platform exited; see {self.log}")
            return http_ok(f"{self.url}/healthz")

        wait_until(up, f"the platform to answer (see {self.log})", timeout)

    def scene_file(self) -> Path | None:
        files = sorted((self.tmp / "media").rglob("*.glb"), key=lambda p: p.stat().st_mtime)
        return files[-1] if files else None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # Ctrl-C, as a developer stops make run: run_platform stops daphne and the worker.
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


# ---------------------------------------------------------------- in the page

# Captures decoded frames: the whole picture via drawImage, its frame id read from the captured
# pixels (so picture and id always belong together) and the worker's metadata of that frame.
CAPTURE_JS = """async ({ intervalMs, maxCaptures }) => {
  const stamp = await import('/static/client/js/stamp.js');
  const video = document.getElementById('video');
  const caps = (window.__benchCaptures = []);
  let next = performance.now();
  const onFrame = (now) => {
    if (caps.length >= maxCaptures || window.__benchCaptureStop) return;
    video.requestVideoFrameCallback(onFrame);
    const w = video.videoWidth, h = video.videoHeight, sw = stamp.STAMP_BLOCKS * 16;
    if (now < next || w < sw) return;
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const x = c.getContext('2d', { willReadFrequently: true });
    x.drawImage(video, 0, 0);
    const band = x.getImageData(0, 0, sw, 16).data;
    const id = stamp.decodeStamp(stamp.rgbaToLuma(band), sw, 16);
    const meta = id === null ? null : window.vrplatform.frameMeta(id);
    if (!meta) return;
    next = now + intervalMs;
    caps.push({ id, meta, w, h, rgba: x.getImageData(0, 0, w, h).data });
  };
  video.requestVideoFrameCallback(onFrame);
}"""

# One capture as BT.601 luma bytes in base64 (the same weights as the reference below).
CAPTURE_GET_JS = """(i) => {
  const c = window.__benchCaptures[i];
  const n = c.w * c.h, y = new Uint8Array(n), d = c.rgba;
  for (let j = 0, k = 0; j < n; j++, k += 4) {
    y[j] = Math.round(0.299 * d[k] + 0.587 * d[k + 1] + 0.114 * d[k + 2]);
  }
  let s = '';
  for (let j = 0; j < n; j += 0x8000) {
    s += String.fromCharCode.apply(null, y.subarray(j, j + 0x8000));
  }
  c.rgba = null;
  return { id: c.id, meta: c.meta, w: c.w, h: c.h, luma: btoa(s) };
}"""

STATS_JS = "window.vrplatform && window.vrplatform.stats()"


def _stats(page: Any) -> dict[str, Any]:
    return page.evaluate(STATS_JS) or {}


def _wait(page: Any, condition: str, timeout_s: float) -> dict[str, Any]:
    page.wait_for_function(
        f"(() => {{ const s = {STATS_JS}; return s && ({condition}); }})()",
        timeout=timeout_s * 1000,
    )
    return _stats(page)


def _worker_metrics(url: str, token: str, stream_id: str | None) -> dict[str, Any]:
    if not stream_id:
        return {}
    try:
        r = requests.get(
            f"{url}/api/morpheus/performance_metrics",
            params={"stream_id": stream_id},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        return dict(r.json()) if r.status_code == 200 else {}
    except requests.RequestException:
        return {}


def run_browser(url: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(
                viewport={"width": 1280, "height": 860},
                bypass_csp=True,  # wait_for_function evaluates strings (CSP forbids it)
            ).new_page()
            page.set_default_timeout(30_000)
            # Sign in on the sign-in page, then the lobby: create a session on the demo room.
            page.goto(f"{url}/login/?next=/lobby/")
            page.fill("#username", USERNAME)
            page.fill("#password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_url(f"{url}/lobby/")
            room = page.locator("li.scene", has_text=args.scene_name).first
            room.wait_for(timeout=120_000)
            room.locator("button.create-session").click()
            page.wait_for_url(f"{url}/play/**")
            page.wait_for_function("!!window.vrplatform")
            if args.jitter_target != "0":
                target = None if args.jitter_target == "default" else float(args.jitter_target)
                page.evaluate("(ms) => window.vrplatform.setJitterBufferTarget(ms)", target)
            page.check("#stats-toggle")
            started = time.monotonic()
            s = _wait(page, "s.streaming && s.framesShown > 0", args.start_timeout)
            first_frame_s = time.monotonic() - started
            if args.quality != "auto" and s.get("quality") != args.quality:
                page.select_option("#quality", args.quality)
                _wait(page, f"s.quality === '{args.quality}'", 60)
            wait_for_layout(page, sbs=args.sbs)
            token = page.evaluate("JSON.parse(sessionStorage.getItem('vrplatform.auth')).access")
            timeline = record(page, url, token, args)
            summary_stats = _stats(page)
            page.evaluate("window.__benchCaptureStop = true")
            shot = out / "viewer.png"
            page.screenshot(path=str(shot))
            preview = out / "preview.png"
            data_url = page.evaluate("document.getElementById('preview').toDataURL('image/png')")
            preview.write_bytes(base64.b64decode(data_url.split(",", 1)[1]))
            captures = [
                page.evaluate(CAPTURE_GET_JS, i)
                for i in range(page.evaluate("(window.__benchCaptures || []).length"))
            ]
            metrics = _worker_metrics(url, token, summary_stats.get("streamId"))
        finally:
            browser.close()
    return {
        "first_frame_s": round(first_frame_s, 2),
        "final": summary_stats,
        "timeline": timeline,
        "captures": captures,
        "worker_metrics": {k: v for k, v in metrics.items() if k != "history"},
        "worker_history": metrics.get("history", []),
        "screenshot": str(shot),
        "preview": str(preview),
    }


def wait_for_layout(page: Any, *, sbs: bool) -> None:
    """Stereo (``sbs``: the "Both eyes" toggle ticked) or the flat preview's mono stream. The
    worker may keep stereo when one view is asked for (an eye narrower than the frame-id
    stamp): then the run measures stereo and the report says so."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if sbs:
        page.check("#sbs-toggle")
    want = 2 if sbs else 1
    try:
        _wait(page, f"s.viewsAsked === {want} && s.views === {want}", 20)
    except PlaywrightTimeout:
        print(f"note: asked for {want} view(s), the stream stays at {_stats(page).get('views')}")


def record(page: Any, url: str, token: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Warm up, then move the head for ``args.seconds``, sampling stats every second."""
    timeline: list[dict[str, Any]] = []

    def sample(phase: str, t0: float) -> None:
        s = _stats(page)
        w = _worker_metrics(url, token, s.get("streamId")) if args.worker_metrics else {}
        timeline.append(
            {
                "t": round(time.monotonic() - t0, 2),
                "phase": phase,
                **{
                    k: s.get(k)
                    for k in (
                        "streamAgeS",
                        "fps",
                        "latencyP50Ms",
                        "latencyP99Ms",
                        "stagesMs",
                        "stageSamples",
                        "overheadRatio",
                        "clockOffsetMs",
                        "jitterBufferMs",
                        "jitterBufferTargetDelayMs",
                        "jitterBufferMinimumDelayMs",
                        "decodeMs",
                        "framesDropped",
                        "bitrate",
                        "quality",
                        "views",
                        "pose",
                    )
                },
                "worker_bitrate": w.get("bitrate_bps"),
                "worker_target_bitrate": w.get("target_bitrate_bps"),
                "worker_fps": w.get("fps"),
                "target_fps": w.get("target_fps"),
                "paced_fps": w.get("paced_fps"),
                "render_scale": w.get("render_scale"),
                "worker_stage_ms": w.get("stage_ms"),
            }
        )

    t0 = time.monotonic()
    next_sample = t0
    while time.monotonic() < t0 + args.warmup:
        if time.monotonic() >= next_sample:
            sample("warmup", t0)
            next_sample += 1.0
        time.sleep(0.05)
    page.evaluate("window.vrplatform.resetStats()")
    if args.captures:
        page.evaluate(
            CAPTURE_JS, {"intervalMs": args.capture_every * 1000, "maxCaptures": args.captures}
        )
    # Mouse-look by dragging on the preview (the page's no-pointer-lock path), strafing with
    # A/D: yaw swings ±0.6 rad every 4 s, pitch ±0.15 rad every 6 s; the side steps follow
    # the sign of cos(yaw phase), which makes the walk close on itself every 4 s (strafing
    # in step with the yaw would drift along the view axis and out of the room).
    box = page.locator("#preview").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    x, y = cx, cy
    key = None
    start = time.monotonic()
    while (now := time.monotonic()) < start + args.seconds:
        t = now - start
        yaw = 0.6 * math.sin(2 * math.pi * t / 4.0)
        pitch = 0.15 * math.sin(2 * math.pi * t / 6.0)
        # Dragging left turns left (yaw grows): x = -yaw / LOOK_SPEED.
        tx, ty = cx - yaw / LOOK_SPEED, cy - pitch / LOOK_SPEED
        page.mouse.move(tx, ty)
        x, y = tx, ty
        want = "KeyD" if math.cos(2 * math.pi * t / 4.0) >= 0 else "KeyA"
        if want != key:
            if key:
                page.keyboard.up(key)
            page.keyboard.down(want)
            key = want
        if now >= next_sample:
            sample("motion", t0)
            next_sample += 1.0
        time.sleep(1 / 30)
    if key:
        page.keyboard.up(key)
    page.mouse.up()
    del x, y
    return timeline


# ---------------------------------------------------------------- image quality


def blockiness(luma: np.ndarray, block: int = 16) -> float:
    """Mean luma step across the codec's 16-px macroblock edges over the mean step elsewhere
    (both directions). About 1 for a clean picture; well above 1 when it falls apart into
    16x16 squares (a starved encoder)."""
    y = luma.astype(np.float32)
    dx = np.abs(np.diff(y, axis=1))  # dx[:, i] is the step between columns i and i + 1
    dy = np.abs(np.diff(y, axis=0))
    cols = (np.arange(dx.shape[1]) + 1) % block == 0
    rows = (np.arange(dy.shape[0]) + 1) % block == 0
    edge = (dx[:, cols].mean() + dy[rows].mean()) / 2
    inner = (dx[:, ~cols].mean() + dy[~rows].mean()) / 2
    # Half a luma level keeps flat pictures (no steps anywhere) at about 1.
    return float((edge + 0.5) / (inner + 0.5))


def _luma(rgb: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    return np.round(rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114)


def frame_sizes(meta: dict[str, Any], sent: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """A captured frame's layout (its metadata's ``views``: 1 one centre view, 2 both eyes side
    by side; absent means 2) and its picture's size at the rung's full size (``RUNGS`` holds
    one eye's): one eye wide for a mono frame, two for a stereo one."""
    from workers.protocol import RUNGS

    views = 1 if meta.get("views") == 1 else 2
    eye_w, eye_h = RUNGS.get(meta.get("rung") or "", (sent[0] // views, sent[1]))
    return views, (views * eye_w, eye_h)


def reference(renderer: Any, size: tuple[int, int], pose: dict[str, Any], views: int) -> Any:
    """Luma of a full-quality render of ``pose`` at ``size`` in the frame's layout, with the
    worker's default projection (90 degrees vertical: the desktop viewer sends none)."""
    if views == 1:
        frame = renderer.render_view(
            (pose["p"], pose["q"]), fov_y_deg=90.0, width=size[0], height=size[1]
        )
    else:
        if (2 * renderer.width_per_eye, renderer.height) != size:
            renderer.resize(size[0] // 2, size[1])
        frame = renderer.render_stereo((pose["p"], pose["q"]))
    return _luma(frame.rgb().astype(np.float32))


def image_quality(captures: list[dict[str, Any]], scene: Path, out: Path) -> dict[str, Any]:
    """Two SSIMs per captured frame, both against a full-quality render of its render pose in
    its layout (the centre eye for a mono frame, both eyes for a stereo one):

    - ``ssim_sent``: at the size the worker sent (the governor's render scale): what the
      encoder and network kept of the rendered picture (the encoder is not starving);
    - ``ssim_full``: at the rung's full size, the frame scaled up bilinearly as the browser's
      video element does: what a reduced render scale costs, never bought silently.
    """
    from PIL import Image

    from workers.rendering.renderer import Renderer

    if not captures:
        return {"frames": 0}
    scores: list[dict[str, Any]] = []

    with Renderer(64, 64) as renderer:
        renderer.load_scene(scene)
        for i, cap in enumerate(captures):
            sent = (cap["w"], cap["h"])
            views, full = frame_sizes(cap["meta"], sent)
            got = np.frombuffer(base64.b64decode(cap["luma"]), np.uint8).reshape(sent[1], sent[0])
            pose = cap["meta"]["pose"]
            ref_sent = reference(renderer, sent, pose, views)
            ref_full = ref_sent if sent == full else reference(renderer, full, pose, views)
            up = (
                got
                if sent == full
                else np.asarray(Image.fromarray(got).resize(full, Image.Resampling.BILINEAR))
            )
            band = slice(STAMP_BAND, None)
            band_full = slice(-(-STAMP_BAND * full[1] // sent[1]), None)  # the stamp, scaled up
            scores.append(
                {
                    "frame_id": cap["id"],
                    "rung": cap["meta"].get("rung"),
                    "views": views,
                    "scale": cap["meta"].get("scale", 1.0),
                    "ssim_sent": ssim(got[band], ref_sent[band]),
                    "ssim": ssim(up[band_full], ref_full[band_full]),
                    # Rows from 16 on keep the 16-px grid (the stamp's band is one block).
                    "blockiness": blockiness(got[band]),
                    "blockiness_reference": blockiness(ref_sent[band]),
                }
            )
            if i == 0:
                _save_pair(up, ref_full.astype(np.uint8), out / "ssim-pair-0.png")
    values = [s["ssim"] for s in scores]
    sent_values = [s["ssim_sent"] for s in scores]
    return {
        "frames": len(values),
        "views": sorted({s["views"] for s in scores}),
        "render_scale_p50": float(np.median([s["scale"] for s in scores])),
        "ssim_p10": round(float(np.percentile(values, 10)), 4),
        "ssim_p50": round(float(np.percentile(values, 50)), 4),
        "ssim_min": round(min(values), 4),
        "ssim_sent_p10": round(float(np.percentile(sent_values, 10)), 4),
        "ssim_sent_p50": round(float(np.percentile(sent_values, 50)), 4),
        "blockiness_p50": round(float(np.median([s["blockiness"] for s in scores])), 2),
        "blockiness_reference_p50": round(
            float(np.median([s["blockiness_reference"] for s in scores])), 2
        ),
        "per_frame": scores,
    }


def _save_pair(got: np.ndarray, ref: np.ndarray, path: Path) -> None:
    """Decoded (top) over reference (bottom), luma, for a look with an image viewer."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(np.vstack([got, ref]))).save(path)


# ---------------------------------------------------------------- the synthetic headset


def run_synthetic(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from workers.headset.client import HeadsetOptions, SyntheticHeadset

    headset = SyntheticHeadset(
        HeadsetOptions(
            url,
            USERNAME,
            PASSWORD,
            published_scene=True,
            seconds=args.seconds,
            fps=90.0,
            quality=None if args.quality == "auto" else args.quality,
            start_timeout_s=args.start_timeout,
        )
    )
    try:
        return dict(asyncio.run(headset.run())["summary"])
    except Exception as exc:
        return {"error": repr(exc)}


# ---------------------------------------------------------------- report


def nominal_bitrate(rung: str, fps: float) -> int:
    from workers.streaming.quality import QualityController

    return QualityController(fps=fps).nominal_bitrate(rung)


def time_to(timeline: list[dict[str, Any]], key: str, threshold: float) -> float | None:
    """Stream age (s) of the first sample whose ``key`` reached ``threshold``."""
    for row in timeline:
        value, age = row.get(key), row.get("streamAgeS")
        if value is not None and age is not None and value >= threshold:
            return round(float(age), 1)
    return None


def summarise(browser: dict[str, Any], quality: dict[str, Any]) -> dict[str, Any]:
    final = browser["final"]
    motion = [r for r in browser["timeline"] if r["phase"] == "motion"]
    fps_values = [r["fps"] for r in motion if r.get("fps") is not None]
    rung = final.get("quality") or ""
    # The rung's nominal rate at the rate the stream is paced at (the display's, at most the
    # platform's target): the worker's bitrate target follows that.
    target_fps = (
        next((r["paced_fps"] for r in reversed(motion) if r.get("paced_fps")), None)
        or next((r["target_fps"] for r in motion if r.get("target_fps")), None)
        or 90.0
    )
    nominal = nominal_bitrate(rung, target_fps) if rung else None
    tl = browser["timeline"]
    return {
        "rung": rung,
        # The layout measured: 1 mono (one centre view), 2 stereo, "mixed" if it changed.
        "views": _one(r.get("views") for r in motion),
        "encoder": final.get("encoder"),
        "fps_p50": round(float(np.median(fps_values)), 1) if fps_values else None,
        "fps_min": round(min(fps_values), 1) if fps_values else None,
        "latency_p50_ms": final.get("latencyP50Ms"),
        "latency_p99_ms": final.get("latencyP99Ms"),
        "latency_samples": final.get("latencySamples"),
        "stages_p50_ms": final.get("stagesMs"),
        "stage_samples": final.get("stageSamples"),
        "overhead_ratio": final.get("overheadRatio"),
        "clock_offset_ms": final.get("clockOffsetMs"),
        "jitter_buffer_ms_p50": _median(r.get("jitterBufferMs") for r in motion),
        "jitter_buffer_target_delay_ms_p50": _median(
            r.get("jitterBufferTargetDelayMs") for r in motion
        ),
        "jitter_buffer_minimum_delay_ms_p50": _median(
            r.get("jitterBufferMinimumDelayMs") for r in motion
        ),
        "jitter_buffer_target": final.get("jitterBufferTarget"),
        "decode_ms_p50": _median(r.get("decodeMs") for r in motion),
        "frames_dropped": final.get("framesDropped"),
        "bitrate_mbps_p50": _mbps(_median(r.get("bitrate") for r in motion)),
        "worker_bitrate_mbps_p50": _mbps(_median(r.get("worker_bitrate") for r in motion)),
        "nominal_bitrate_mbps": _mbps(nominal),
        "target_fps": target_fps,
        "s_to_nominal_received": time_to(tl, "bitrate", 0.9 * nominal) if nominal else None,
        "s_to_nominal_sent": time_to(tl, "worker_bitrate", 0.9 * nominal) if nominal else None,
        "s_to_nominal_target": (
            time_to(tl, "worker_target_bitrate", 0.99 * nominal) if nominal else None
        ),
        # From the first sample with the head moving: a still picture (the warm-up) has next
        # to nothing for the encoder to send, whatever its target.
        "s_to_nominal_sent_moving": _since_motion(motion, "worker_bitrate", nominal),
        "worker_target_mbps_last": _mbps(
            next(
                (
                    r["worker_target_bitrate"]
                    for r in reversed(tl)
                    if r.get("worker_target_bitrate")
                ),
                None,
            )
        ),
        "first_frame_s": browser["first_frame_s"],
        "ssim_p10": quality.get("ssim_p10"),
        "ssim_p50": quality.get("ssim_p50"),
        "ssim_sent_p10": quality.get("ssim_sent_p10"),
        "ssim_sent_p50": quality.get("ssim_sent_p50"),
        "render_scale_p50": quality.get("render_scale_p50"),
        "ssim_frames": quality.get("frames"),
        "blockiness_p50": quality.get("blockiness_p50"),
        "blockiness_reference_p50": quality.get("blockiness_reference_p50"),
    }


def _since_motion(motion: list[dict[str, Any]], key: str, nominal: float | None) -> float | None:
    if not nominal or not motion or motion[0].get("streamAgeS") is None:
        return None
    reached = time_to(motion, key, 0.9 * nominal)
    return None if reached is None else round(reached - motion[0]["streamAgeS"], 1)


def _one(values: Any) -> Any:
    """The one value seen (ignoring None), "mixed" if several, None if none."""
    seen = {v for v in values if v is not None}
    return seen.pop() if len(seen) == 1 else ("mixed" if seen else None)


def layout_name(views: Any) -> str:
    return {1: "mono", 2: "stereo"}.get(views, str(views) if views is not None else "?")


def _median(values: Any) -> float | None:
    xs = [v for v in values if v is not None]
    return round(float(np.median(xs)), 1) if xs else None


def _mbps(bps: float | None) -> float | None:
    return None if bps is None else round(bps / 1e6, 2)


def markdown(summary: dict[str, Any], synthetic: dict[str, Any] | None) -> str:
    def stages(d: dict[str, Any] | None) -> str:
        d = d or {}
        extra = [k for k in d if k not in STAGE_ORDER]
        return ", ".join(f"{k} {d[k]}" for k in [*STAGE_ORDER, *extra] if k in d)

    s = summary
    lines = [
        "| client | rung | views | fps p50 (min) | pose→photon p50 / p99 ms | stage p50 ms "
        "| overhead | jitter buffer ms | decode ms | Mbit/s recv / sent (nominal) "
        "| s to nominal (from first frame / from motion) | "
        "render scale | SSIM vs full quality p10 / p50 | SSIM vs sent p10 / p50 | blockiness |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| browser (Chromium) | {s['rung']} | {layout_name(s.get('views'))} | "
        f"{s['fps_p50']} ({s['fps_min']}) | "
        f"{s['latency_p50_ms']} / {s['latency_p99_ms']} | {stages(s['stages_p50_ms'])} | "
        f"{s['overhead_ratio']} | {s['jitter_buffer_ms_p50']} | {s['decode_ms_p50']} | "
        f"{s['bitrate_mbps_p50']} / {s['worker_bitrate_mbps_p50']} "
        f"({s['nominal_bitrate_mbps']}) | {s['s_to_nominal_sent']} / "
        f"{s['s_to_nominal_sent_moving']} | "
        f"{s['render_scale_p50']} | {s['ssim_p10']} / {s['ssim_p50']} | "
        f"{s['ssim_sent_p10']} / {s['ssim_sent_p50']} | {s['blockiness_p50']} |",
    ]
    if synthetic is not None:
        if "error" in synthetic:
            lines.append(f"| synthetic headset | error: {synthetic['error'][:100]} |")
        else:
            lat = synthetic.get("latency_ms") or {}
            st = {k: v["p50"] for k, v in (synthetic.get("stage_ms") or {}).items() if v}
            lines.append(
                f"| synthetic headset (aiortc) | {synthetic.get('rung')} | stereo "
                f"| {synthetic.get('fps')} "
                f"| {lat.get('p50')} / {lat.get('p99')} (pose→decoded) | {stages(st)} | "
                f"{synthetic.get('overhead_ratio')} | n/a | n/a | n/a / "
                f"{_mbps(synthetic.get('bitrate_bps'))} | n/a | n/a | n/a | n/a | n/a |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="head motion, measured")
    parser.add_argument("--warmup", type=float, default=5.0, help="after the first frame")
    parser.add_argument("--quality", default="720p", help="rung picked in the viewer, or auto")
    parser.add_argument("--platform-url", default=None, help="reuse a running platform")
    parser.add_argument("--scene-name", default="Demo room", help="lobby entry to stream")
    parser.add_argument(
        "--scene-file", type=Path, default=None, help="for SSIM with --platform-url"
    )
    parser.add_argument(
        "--jitter-target", default="0", help="receiver jitterBufferTarget ms, or 'default'"
    )
    parser.add_argument("--captures", type=int, default=12, help="frames kept for SSIM")
    parser.add_argument("--capture-every", type=float, default=2.0, help="seconds")
    parser.add_argument("--synthetic", action="store_true", help="also the synthetic headset")
    parser.add_argument(
        "--sbs", action="store_true", help="tick 'Both eyes' first: measure the stereo stream"
    )
    parser.add_argument("--no-worker-metrics", dest="worker_metrics", action="store_false")
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench-viewer")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-viewer-"))
    platform = None
    result: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    try:
        if args.platform_url:
            url = args.platform_url.rstrip("/")
        else:
            platform = MakeRunPlatform(tmp)
            platform.start()
            url = platform.url
        browser = run_browser(url, args, args.out)
        captures = browser.pop("captures")
        scene = args.scene_file or (platform.scene_file() if platform else None)
        if scene is None and captures:
            from workers.rendering.demo_scene import build_demo_scene

            scene = tmp / "demo-room.glb"
            build_demo_scene(scene)  # deterministic: the same room run_platform publishes
        quality = image_quality(captures, scene, args.out) if scene else {"frames": 0}
        result["browser"] = browser
        result["image_quality"] = quality
        result["summary"] = summarise(browser, quality)
        synthetic = run_synthetic(url, args) if args.synthetic else None
        result["synthetic"] = synthetic
        table = markdown(result["summary"], synthetic)
        print(table)
        print(json.dumps(result["summary"], indent=1))
        print(f"screenshot: {browser['screenshot']}  preview: {browser['preview']}")
    finally:
        if platform is not None:
            platform.stop()
            if platform.log.exists():  # the worker's governor and quality decisions
                shutil.copy(platform.log, args.out / "run_platform.log")
        if args.json:
            args.json.write_text(json.dumps(result, indent=1, default=str))
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
