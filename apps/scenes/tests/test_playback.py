"""What processing finds for playback (animation clips, where viewers start) and the creator's
choices over it, through the REST API with real processing (sandboxed child, real renderer)."""

from __future__ import annotations

from typing import Any

import pytest

from apps.scenes.tests.helpers import version_url
from workers.rendering.tests.animated import TWO_CLIPS, make_two_clips

pytestmark = pytest.mark.django_db


def test_clips_and_spawn_are_found_at_processing_and_the_creator_chooses(
    make_user: Any, bearer_client: Any, package: Any, upload: Any
) -> None:
    creator = make_user("creator")
    client = bearer_client(creator)
    response = upload(client, package(lambda root: make_two_clips(root, camera=True)))
    assert response.status_code == 201, response.json()
    scene_id, version_id = response.json()["id"], response.json()["version"]["id"]
    url = version_url(scene_id, version_id)
    body = client.get(url).json()
    assert body["status"] == "ready", body
    stats = body["stats"]
    assert [(c["name"], c["duration"]) for c in stats["clips"]] == list(TWO_CLIPS.items())
    # The scene's camera is where viewers start; the framing is there for the creator to pick.
    assert [c["name"] for c in stats["spawn"]["cameras"]] == ["Front"]
    assert body["spawn_start"] == {
        "source": "camera",
        "camera": 0,
        "position": pytest.approx([0.75, 0.5, 6.0]),
        "yaw": pytest.approx(0.0),
        "pitch": pytest.approx(0.0),
        "scale": 1.0,
    }
    assert body["default_clip"] == ""

    # The creator picks the default clip and the framing start, then a point of their own.
    changed = client.patch(url, {"default_clip": "Bob", "spawn": {"framing": True}}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["default_clip"] == "Bob"
    start = changed.json()["spawn_start"]
    assert start["source"] == "bounds"
    assert start["position"] == stats["spawn"]["framing"]["position"]
    point = {"position": [0, 1.6, 4], "yaw": 0.5, "pitch": 0}
    changed = client.patch(url, {"spawn": {"point": point, "scale": 100}}, format="json")
    assert changed.json()["spawn_start"] == {"source": "creator", **point, "scale": 100.0}

    # Names and indexes the scene lacks, and other users, are refused with a code.
    for data, code in (
        ({"default_clip": "Run"}, "unknown_clip"),
        ({"spawn": {"camera": 3}}, "unknown_camera"),
        ({"spawn": {"point": {"position": [0, "x", 0]}}}, "invalid_spawn"),
        ({"spawn": {"scale": 7}}, "invalid_spawn"),
    ):
        refused = client.patch(url, data, format="json")
        assert refused.status_code == 400, data
        assert refused.json()["error"]["code"] == code, refused.json()
    other = bearer_client(make_user("creator")).patch(url, {"default_clip": "Slide"}, format="json")
    assert other.status_code in (403, 404)
    assert client.get(url).json()["default_clip"] == "Bob"
