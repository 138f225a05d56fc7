"""Voice in the browser client end to end: two people in one session, each streamed by a real
worker; Alice's microphone (Chromium's fake device, which beeps) reaches Bob over the same
RTCPeerConnection as his video, on the slot the worker names for her, and lights her speaking
indicator on Bob's page; Bob's muted microphone is never heard."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import User
from apps.accounts.services import token_pair_issue
from apps.core.testing_browser import ROOT, orm
from apps.web.tests.test_browser import create_session_from_lobby, sign_in, stats, wait_stats

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def voice(page: Any) -> dict[str, Any]:
    return page.evaluate("window.vrplatform.voice()")


@pytest.mark.timeout(300)
def test_two_participants_hear_each_other_and_a_muted_mic_is_silent(
    platform, user_factory, demo_scene, streaming_worker, pages
):
    user_factory("alice")
    user_factory("bob")
    alice = pages()
    sign_in(alice, platform, "alice")
    alice.locator("li.scene").first.wait_for()
    session_id = create_session_from_lobby(alice, platform)
    bob = pages()
    sign_in(bob, platform, "bob", then=f"/play/{session_id}/")
    for page in (alice, bob):
        wait_stats(page, "s.streaming && s.participants.length === 2", timeout_ms=90_000)
    members = stats(alice)["participants"]
    me = {p["username"]: p["participant_id"] for p in members}
    assert voice(alice)["mode"] == "off"  # nobody is on the air without asking

    alice.select_option("#mic-mode", "open")
    alice.wait_for_function("window.vrplatform.voice().transmitting")
    # Bob's page hears Alice on the slot the worker names for her, and shows her speaking
    # (the fake microphone beeps once a second).
    bob.wait_for_function(
        f"Object.values(window.vrplatform.voice().slots).includes('{me['alice']}')",
        timeout=30_000,
    )
    bob.wait_for_function(
        f"window.vrplatform.voice().speaking.includes('{me['alice']}')", timeout=30_000
    )
    li = bob.locator(f"#participants li[data-participant-id='{me['alice']}']")
    li.wait_for(state="attached")
    bob.wait_for_function(
        f"document.querySelector(\"#participants li[data-participant-id='{me['alice']}']\")"
        ".classList.contains('speaking')",
        timeout=30_000,
    )
    bob.screenshot(path=str(ROOT / "test-artifacts" / "voice-bob-hears-alice.png"), full_page=True)
    assert voice(bob)["tracks"] >= 1
    # Alice sees herself on the air too.
    alice.wait_for_function("window.vrplatform.voice().speaking.includes('me')", timeout=30_000)

    # Bob's microphone is muted (the default): over several of Alice's beeps Alice never
    # hears him, while she keeps being heard.
    heard_bob = alice.evaluate(
        f"""async () => {{
          let heard = false;
          for (let i = 0; i < 30; i++) {{
            if (window.vrplatform.voice().speaking.includes('{me["bob"]}')) heard = true;
            await new Promise((r) => setTimeout(r, 100));
          }}
          return heard;
        }}"""
    )
    assert heard_bob is False
    assert voice(bob)["transmitting"] is False

    # Alice mutes: her indicator goes dark on Bob's page.
    alice.select_option("#mic-mode", "off")
    alice.wait_for_function("!window.vrplatform.voice().transmitting")
    # Two seconds of silence in a row: a live microphone never gives that (the fake device
    # beeps every second and an indicator stays lit 500 ms). Up to 20 s to get there: beeps
    # already in flight (the worker's and the page's jitter buffers) may play out first, and
    # on a loaded machine that backlog has taken longer than 4 s.
    quiet_js = f"""async () => {{
          let quietFor = 0;
          for (let i = 0; i < 200 && quietFor < 20; i++) {{
            const speaking = window.vrplatform.voice().speaking.includes('{me["alice"]}');
            quietFor = speaking ? 0 : quietFor + 1;
            await new Promise((r) => setTimeout(r, 100));
          }}
          return quietFor >= 20;
        }}"""
    assert bob.evaluate(quiet_js) is True

    # An operator mutes Alice through the API: her page says so, her audio is dropped at the
    # worker (Bob hears nothing though her microphone is open), and unmuting brings her back.
    import requests

    user_factory("op", "operator")
    op = orm(User.objects.get, username="op")
    auth = {"Authorization": f"Bearer {orm(token_pair_issue, user=op).access}"}
    alice.select_option("#mic-mode", "open")
    alice.wait_for_function("window.vrplatform.voice().transmitting")
    bob.wait_for_function(
        f"window.vrplatform.voice().speaking.includes('{me['alice']}')", timeout=30_000
    )
    body = {"session_id": session_id, "participant_id": int(me["alice"]), "muted": True}
    muted = requests.put(
        f"{platform.url}/api/morpheus/voice_mute", json=body, headers=auth, timeout=10
    )
    assert muted.status_code == 200, muted.text
    assert muted.json()["workers"] == 1
    alice.wait_for_function("window.vrplatform.voice().operatorMuted", timeout=20_000)
    assert "An operator muted your microphone." in alice.inner_text("#banner")
    assert voice(alice)["transmitting"] is False
    assert bob.evaluate(quiet_js) is True
    requests.put(
        f"{platform.url}/api/morpheus/voice_mute",
        json={**body, "muted": False},
        headers=auth,
        timeout=10,
    ).raise_for_status()
    alice.wait_for_function("!window.vrplatform.voice().operatorMuted", timeout=20_000)
    bob.wait_for_function(
        f"window.vrplatform.voice().speaking.includes('{me['alice']}')", timeout=30_000
    )
