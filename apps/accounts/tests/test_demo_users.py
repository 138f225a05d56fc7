"""``manage.py create_demo_users``: the accounts the README's run command prints."""

from io import StringIO
from typing import Any

from django.contrib.auth import authenticate
from django.core.management import call_command

from apps.accounts.models import User
from apps.accounts.selectors import user_roles


def test_creates_then_resets_the_demo_accounts(db: Any) -> None:
    out = StringIO()
    call_command("create_demo_users", stdout=out)
    assert user_roles(User.objects.get(username="operator")) == ["operator"]
    assert authenticate(username="player", password="player-demo") is not None
    assert "creator   password creator-demo" in out.getvalue()

    player = User.objects.get(username="player")
    player.groups.clear()
    call_command("create_demo_users", "--password", "fresh-pass-1", stdout=StringIO())
    assert authenticate(username="admin", password="fresh-pass-1") is not None
    assert authenticate(username="admin", password="admin-demo") is None
    assert user_roles(player) == ["participant"]  # roles restored on reset
    assert User.objects.filter(username__in=["admin", "operator", "creator", "player"]).count() == 4
