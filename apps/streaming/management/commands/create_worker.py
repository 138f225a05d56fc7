from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import PlatformError
from apps.streaming.services import worker_create


class Command(BaseCommand):
    help = "Create a streaming worker; prints its token (shown only once) as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            worker, token = worker_create(name=options["name"])
        except PlatformError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Created streaming worker {worker.name} ({worker.id}).")
        self.stdout.write("Its token is shown only now; start the worker with it:")
        self.stdout.write(token)
