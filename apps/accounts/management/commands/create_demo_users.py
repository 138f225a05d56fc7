"""Create (or reset) the demo accounts the README's run command prints."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.services import user_create, user_set_roles

DEMO_USERS = [
    ("admin", "admin", ["admin"]),
    ("operator", "operator", ["operator"]),
    ("creator", "creator", ["creator"]),
    ("player", "player", ["participant"]),
]


class Command(BaseCommand):
    help = "Create demo users admin/operator/creator/player (development only)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--password", help="One password for all demo users (default: the username)"
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        for username, default_password, roles in DEMO_USERS:
            password = options["password"] or f"{default_password}-demo"
            user = User.objects.filter(username=username).first()
            if user is None:
                # The demo passwords are printed and guessable on purpose (development only).
                user = user_create(
                    username=username, password=password, roles=roles, validate=False
                )
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
                user_set_roles(user=user, roles=roles)
            self.stdout.write(f"{username:<9} password {password:<16} roles {', '.join(roles)}")
