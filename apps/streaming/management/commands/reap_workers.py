from typing import Any

from django.core.management.base import BaseCommand

from apps.streaming.services import workers_reap


class Command(BaseCommand):
    help = "Declare silent streaming workers dead and move their streams to live workers."

    def handle(self, *args: Any, **options: Any) -> None:
        reaped = workers_reap()
        self.stdout.write(f"{len(reaped)} worker(s) declared dead.")
