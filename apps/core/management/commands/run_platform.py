"""Start the whole platform for development: the one command behind ``make run``.

Migrates, creates the demo accounts (and, as the platform grows, the demo scene and a
streaming worker), prints where to go and how to sign in, then runs daphne in the foreground.
Ctrl-C stops every process it started.
"""

import subprocess
import sys
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Set up demo data and run the web server (and streaming worker) for development."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-serve", action="store_true", help="set up only, do not serve")

    def handle(self, *args: Any, host: str, port: int, no_serve: bool, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write(self.style.MIGRATE_HEADING("Demo accounts (username / password):"))
        call_command("create_demo_users", stdout=self.stdout)
        base = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"  # noqa: S104
        self.stdout.write(self.style.SUCCESS(f"\nPlatform:      {base}/"))
        self.stdout.write(f"Admin panel:   {base}/admin/   (sign in as admin / admin-demo)")
        self.stdout.write(f"API docs:      {base}/api/docs/")
        self.stdout.flush()
        if no_serve:
            return
        daphne = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            host,
            "-p",
            str(port),
            "vrplatform.asgi:application",
        ]
        process = subprocess.Popen(daphne)  # noqa: S603
        try:
            sys.exit(process.wait())
        except KeyboardInterrupt:
            process.terminate()
            process.wait(timeout=10)
