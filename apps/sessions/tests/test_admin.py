"""The session's admin page: operators see who is in it, and whose voice is muted."""

from typing import Any

import pytest

from apps.sessions.models import Participant
from apps.streaming.services import voice_mute

pytestmark = pytest.mark.django_db


def test_session_admin_shows_members_and_their_operator_mute(
    make_user: Any, make_session: Any, client: Any
) -> None:
    host = make_user()
    session = make_session(host)
    member = Participant.objects.get(session=session, user=host)
    voice_mute(session_id=session.id, participant_id=member.pk, muted=True)
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    page = client.get(f"/admin/hermes/vrsession/{session.id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Voice muted" in html
    assert 'alt="True"' in html  # the muted member's box, read-only
    # Read-only there (muting tells the workers; a form field would not): shown, not editable.
    assert 'name="participants-0-voice_muted"' not in html
