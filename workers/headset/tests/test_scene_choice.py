"""Which scene a synthetic headset's new session streams (against a real daphne)."""

import asyncio
from typing import Any

from apps.core.testing_browser import PASSWORD
from workers.headset.client import HeadsetOptions, SyntheticHeadset


def _new_session(url: str, *, published_scene: bool) -> str:
    async def run() -> str:
        headset = SyntheticHeadset(
            HeadsetOptions(
                platform_url=url,
                username="hannah",
                password=PASSWORD,
                published_scene=published_scene,
            )
        )
        await headset.login()
        await headset.ensure_session()
        assert headset.session_id is not None
        return headset.session_id

    return asyncio.run(run())


def test_new_session_streams_the_published_scene_unless_told_not_to(
    live_platform: Any, user_factory: Any, demo_scene: str
) -> None:
    from apps.sessions.models import VRSession

    user_factory("hannah")
    with_scene = _new_session(live_platform.url, published_scene=True)
    assert str(VRSession.objects.get(pk=with_scene).scene_version_id) == demo_scene
    without = _new_session(live_platform.url, published_scene=False)
    assert VRSession.objects.get(pk=without).scene_version_id is None
