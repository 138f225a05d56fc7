"""A viewer starts where the scene says and plays the clip the host picks, end to end: a
Fox-like scene authored in centimetres (two clips, no camera) processed for real, streamed by a
real worker to headless Chromium. The page receives the spawn (outside the model, scale 100),
places its camera there, shows a picture of the model, and the host's clip switch reaches it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files import File

from apps.core.testing_browser import ARTIFACTS, orm
from apps.scenes import pipeline, services
from apps.web.tests.test_browser import (
    PICTURE_JS,
    create_session_from_lobby,
    sign_in,
    wait_stats,
)
from workers.rendering.tests.animated import make_two_clips

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _publish(owner: Any, path: Path) -> Any:
    with path.open("rb") as fh:
        scene, version = services.scene_create(
            owner=owner, name="Fox-like", visibility="public", upload=File(fh, name="fox.glb")
        )
    pipeline.scene_version_process(version_id=version.id)
    version.refresh_from_db()
    assert version.status == "ready", version.report
    services.scene_publish(scene=scene, version=version)
    return version


def test_the_viewer_starts_outside_a_centimetre_scene_and_follows_the_hosts_clip(
    platform: Any, user_factory: Any, streaming_worker: Any, pages: Any, tmp_path: Path
) -> None:
    alice = user_factory("alice", "creator")
    version = orm(_publish, alice, make_two_clips(tmp_path, root_scale=100.0))
    spawn = version.spawn_start()
    assert spawn["scale"] == 100.0
    assert spawn["source"] == "bounds"

    page = pages()
    sign_in(page, platform, "alice")
    page.locator("li.scene").first.wait_for()
    create_session_from_lobby(page, platform)
    s = wait_stats(page, "s.streaming && s.frameIdsRead > 3", timeout_ms=60_000)

    # The page received the spawn and placed its camera there (not at (0, 1.6, 3)).
    assert s["spawn"]["scale"] == 100.0
    assert s["pose"]["p"] == pytest.approx(spawn["position"], abs=1e-3)
    assert s["pose"]["yaw"] == pytest.approx(spawn["yaw"], abs=1e-6)
    assert s["pose"]["pitch"] == pytest.approx(spawn["pitch"], abs=1e-6)
    # And the worker renders the model from there: boxes on the background, not all one colour.
    wait_stats(page, f"s.frameIdsRead > {s['frameIdsRead'] + 10}")
    picture = page.evaluate(PICTURE_JS)
    assert max(picture) - min(picture) > 20, picture
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-spawn-centimetres.png"))

    # The host (alice made the session) sees the clips and switches: everyone's clip changes.
    page.locator("#clip-label").wait_for(state="visible")
    assert page.locator("#clip option").all_inner_texts() == ["Slide (2.0 s)", "Bob (0.5 s)"]
    assert s["clip"] == "Slide"
    page.select_option("#clip", "Bob")
    wait_stats(page, "s.clip === 'Bob' && s.streaming", timeout_ms=10_000)
    page.screenshot(path=str(ARTIFACTS / "viewer-clip-bob.png"))
