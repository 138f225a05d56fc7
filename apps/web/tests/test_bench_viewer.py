"""The viewer benchmark's own measures (benchmarks/bench_viewer.py): SSIM, blockiness, the
time to the nominal bitrate and the report. The benchmark itself runs by hand, not here."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from apps.core.testing import load_script

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_viewer", ROOT / "benchmarks" / "bench_viewer.py")


def picture(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.linspace(20, 220, 144), np.linspace(0, 30, 256))
    # Fine detail (a 5 px checker: off the 16 px grid) that blur and blocks wipe out.
    checker = 40 * ((np.arange(144)[:, None] // 5 + np.arange(256)[None, :] // 5) % 2)
    return np.clip(ramp + checker + rng.normal(0, 2, ramp.shape), 0, 255)


def blocks(img: np.ndarray, size: int = 16) -> np.ndarray:
    out = img.copy()
    for y in range(0, img.shape[0], size):
        for x in range(0, img.shape[1], size):
            out[y : y + size, x : x + size] = img[y : y + size, x : x + size].mean()
    return out


def test_ssim_is_one_for_the_same_picture_and_falls_with_damage(bench):
    img = picture()
    assert bench.ssim(img, img) == pytest.approx(1.0)
    noisy = np.clip(img + np.random.default_rng(2).normal(0, 12, img.shape), 0, 255)
    blurred = (img + np.roll(img, 2, axis=1) + np.roll(img, -2, axis=1)) / 3
    assert 0.2 < bench.ssim(img, noisy) < 0.9
    assert bench.ssim(img, blurred) < 0.95
    assert bench.ssim(img, blocks(img)) < bench.ssim(img, blurred)
    # A small brightness shift (a colour-matrix mismatch) costs little.
    assert bench.ssim(img, img + 3) > 0.98


def test_blockiness_finds_16px_squares(bench):
    img = picture()
    assert bench.blockiness(img) == pytest.approx(1.0, abs=0.2)
    assert bench.blockiness(blocks(img)) > 3.0
    assert bench.blockiness(np.full((64, 64), 9.0)) == pytest.approx(1.0)


def test_time_to_nominal_and_report(bench):
    timeline = [
        {"streamAgeS": 0.5, "worker_bitrate": 1e6, "phase": "warmup"},
        {"streamAgeS": 1.5, "worker_bitrate": None, "phase": "warmup"},
        {"streamAgeS": 2.5, "worker_bitrate": 11e6, "phase": "motion"},
    ]
    assert bench.time_to(timeline, "worker_bitrate", 10.8e6) == 2.5
    assert bench.time_to(timeline, "worker_bitrate", 20e6) is None
    # From the first sample with the head moving (a still picture has nothing to send).
    motion = [r for r in timeline if r["phase"] == "motion"]
    assert bench._since_motion(motion, "worker_bitrate", 12e6) == 0.0
    later = [{**motion[0], "worker_bitrate": 5e6}, {"streamAgeS": 4.0, "worker_bitrate": 11e6}]
    assert bench._since_motion(later, "worker_bitrate", 12e6) == 1.5
    assert bench._since_motion(later, "worker_bitrate", 20e6) is None
    summary = {
        "rung": "720p",
        "views": 1,
        "fps_p50": 50.0,
        "fps_min": 44.0,
        "latency_p50_ms": 40.0,
        "latency_p99_ms": 90.0,
        "stages_p50_ms": {"display": 8.0, "render": 12.0, "extra": 1.0},
        "overhead_ratio": 1.05,
        "jitter_buffer_ms_p50": 3.0,
        "decode_ms_p50": 2.0,
        "bitrate_mbps_p50": 11.0,
        "worker_bitrate_mbps_p50": 11.5,
        "nominal_bitrate_mbps": 12.0,
        "s_to_nominal_sent": 2.5,
        "s_to_nominal_sent_moving": 1.0,
        "ssim_p10": 0.96,
        "ssim_p50": 0.97,
        "ssim_sent_p10": 0.97,
        "ssim_sent_p50": 0.98,
        "render_scale_p50": 0.625,
        "blockiness_p50": 1.1,
    }
    synthetic = {"rung": "720p", "fps": 30, "latency_ms": {"p50": 50, "p99": 80}, "stage_ms": {}}
    table = bench.markdown(summary, synthetic)
    lines = table.splitlines()
    assert len(lines) == 4
    assert lines[2].count("|") == lines[0].count("|")
    # Stages in pipeline order, unknown ones after.
    assert "render 12.0, display 8.0, extra 1.0" in lines[2]
    assert "| 2.5 / 1.0 |" in lines[2]  # to the nominal rate: from the first frame / from motion
    assert "synthetic headset" in lines[3]
    assert lines[3].count("|") == lines[0].count("|")
    # Which layout was measured: the flat preview's one view, or both eyes.
    assert lines[0].split("|")[3].strip() == "views"
    assert lines[2].split("|")[3].strip() == "mono"
    assert lines[3].split("|")[3].strip() == "stereo"
    assert bench.markdown({**summary, "views": 2}, None).splitlines()[2].split("|")[3] == " stereo "
    assert bench.nominal_bitrate("720p", 90.0) == 12_000_000


def test_a_frame_is_measured_at_its_own_layout(bench):
    """A mono frame is one eye wide at the rung's full size, a stereo one two; a frame without
    ``views`` (an older worker) is stereo."""
    assert bench.frame_sizes({"rung": "720p", "views": 1}, (1280, 720)) == (1, (1280, 720))
    assert bench.frame_sizes({"rung": "720p", "views": 2}, (2560, 720)) == (2, (2560, 720))
    assert bench.frame_sizes({"rung": "720p"}, (2560, 720)) == (2, (2560, 720))
    # A reduced render scale: the full size is still the rung's.
    assert bench.frame_sizes({"rung": "720p", "views": 1}, (800, 448)) == (1, (1280, 720))
    assert bench.frame_sizes({"rung": "720p", "views": 2}, (1600, 448)) == (2, (2560, 720))
    # No rung known: the sent size.
    assert bench.frame_sizes({"rung": "", "views": 1}, (640, 360)) == (1, (640, 360))
    assert bench.frame_sizes({"views": 2}, (640, 360)) == (2, (640, 360))


@pytest.mark.timeout(120)
def test_image_quality_compares_each_frame_with_its_own_layout(bench, tmp_path):
    """Captures rendered as the worker renders them (the centre eye for a mono frame, both eyes
    for a stereo one) score SSIM 1 against the benchmark's reference; a mono picture taken for
    stereo does not."""
    import base64

    from workers.rendering.demo_scene import build_demo_scene
    from workers.rendering.renderer import Renderer

    scene = tmp_path / "room.glb"
    build_demo_scene(scene, target_triangles=5_000)
    pose = {"p": [0.3, 1.6, 2.0], "q": [0.0, 0.2588, 0.0, 0.9659]}
    eye = (160, 96)
    with Renderer(*eye) as renderer:
        renderer.load_scene(scene)
        mono = renderer.render_view(
            (pose["p"], pose["q"]), fov_y_deg=90.0, width=eye[0], height=eye[1]
        )
        stereo = renderer.render_stereo((pose["p"], pose["q"]))
        pictures = {1: mono.rgb(), 2: stereo.rgb()}

    def capture(views: int, meta_views: int | None) -> dict:
        luma = bench._luma(pictures[views].astype(np.float32)).astype(np.uint8)
        meta = {"pose": pose, "rung": "", "scale": 1.0}
        if meta_views is not None:
            meta["views"] = meta_views
        h, w = luma.shape
        return {"id": views, "meta": meta, "w": w, "h": h, "luma": base64.b64encode(luma.tobytes())}

    result = bench.image_quality([capture(1, 1), capture(2, None)], scene, tmp_path)
    assert result["views"] == [1, 2]
    mono_score, stereo_score = result["per_frame"]
    assert mono_score["views"] == 1
    assert stereo_score["views"] == 2
    for score in (mono_score, stereo_score):
        assert score["ssim_sent"] > 0.99, score
        assert score["ssim"] > 0.99, score
    # A mono picture (one eye wide) measured as stereo: each half against an eye's render.
    wrong = bench.image_quality([capture(1, 2)], scene, tmp_path)["per_frame"][0]
    assert wrong["ssim_sent"] < 0.9, wrong
