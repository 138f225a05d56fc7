"""Start the whole platform for development: the one command behind ``make run``.

Migrates, creates the demo accounts, the demo scene (built by code, uploaded, validated and
published through the same services as the API) and a streaming worker identity, prints where
to go and how to sign in, then runs daphne and one streaming worker process. Ctrl-C, SIGTERM or
SIGHUP to this command (or either process exiting) stops both: a launcher that died alone would
leave them orphaned, still serving the port.

``RUN_TURN=1`` without ``TURN_URLS`` also runs a local coturn (Debian's ``turnserver``) on
127.0.0.1:3478 with a secret generated for this run, and gives the web server and the worker
its URL and secret: try relay-only streaming with ``ICE_TRANSPORT_POLICY=relay``.

It lives in ``apps/web``, the top layer, because it sets up every app (accounts, scenes,
streaming); core may not import them.
"""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.streaming.coturn import coturn_command
from apps.streaming.models import StreamingWorker
from apps.streaming.services import worker_create, worker_token_rotate

DEV_WORKER_NAME = "dev-worker"


class Command(BaseCommand):
    help = "Set up demo data and run the web server and a streaming worker for development."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-serve", action="store_true", help="set up only, do not serve")
        parser.add_argument("--no-worker", action="store_true", help="do not start a worker")
        parser.add_argument(
            "--skip-setup",
            action="store_true",
            help="serve at once: no migrations, demo accounts or demo scene (a set-up database)",
        )

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        no_serve: bool,
        no_worker: bool,
        skip_setup: bool = False,
        **options: Any,
    ) -> None:
        if not skip_setup:
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write(self.style.MIGRATE_HEADING("Demo accounts (username / password):"))
            call_command("create_demo_users", stdout=self.stdout)
            self.stdout.write(self.style.MIGRATE_HEADING("Demo scene:"))
            call_command("create_demo_scene", stdout=self.stdout)
        token = self._worker_token()

        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
        base = f"http://{shown}:{port}"
        self.stdout.write(
            self.style.SUCCESS(f"\nPlatform:      {base}/   (sign in as player / player-demo)")
        )
        self.stdout.write(f"Admin panel:   {base}/admin/   (admin / admin-demo)")
        self.stdout.write(f"Dashboard:     {base}/admin/dashboard/")
        self.stdout.write(f"Creator page:  {base}/create/   (creator / creator-demo)")
        self.stdout.write(f"API docs:      {base}/api/docs/")
        self.stdout.write(
            "Synthetic headset: .venv/bin/python -m workers.headset "
            f"--platform-url {base} --username player --password player-demo --seconds 10 "
            "--json var/headset.json"
        )
        self.stdout.flush()
        if no_serve:
            return
        self._serve(host, port, token if not no_worker else None)

    def _worker_token(self) -> str:
        # A fresh token on every start: tokens are stored hashed, so the old one is unknown.
        worker = StreamingWorker.objects.filter(name=DEV_WORKER_NAME).first()
        if worker is None:
            return worker_create(name=DEV_WORKER_NAME)[1]
        return worker_token_rotate(worker=worker)

    def _serve(self, host: str, port: int, worker_token: str | None) -> None:
        web = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            host,
            "-p",
            str(port),
            "vrplatform.asgi:application",
        ]
        # SIGTERM (a service manager, `kill`) and SIGHUP (the terminal closed) stop the children
        # like Ctrl-C does; installed before the first child starts, so none can be left behind.
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _interrupt)
        processes: list[subprocess.Popen[bytes]] = []
        base_env = dict(os.environ)
        if settings.RUN_TURN and not settings.TURN_URLS:
            turn, turn_env = self._coturn()
            processes.append(turn)
            base_env.update(turn_env)
        processes.append(subprocess.Popen(web, env=base_env))  # noqa: S603
        if worker_token:
            # The token travels in the environment, not argv, so `ps` does not show it.
            env = {**base_env, "WORKER_TOKEN": worker_token, "WORKER_NAME": DEV_WORKER_NAME}
            worker = [
                sys.executable,
                "-m",
                "workers.streaming",
                "--platform-url",
                f"http://127.0.0.1:{port}",
            ]
            processes.append(subprocess.Popen(worker, env=env))  # noqa: S603
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            # A second signal must not cut the cleanup short (it is bounded below).
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        sys.exit(next((p.returncode for p in processes if p.returncode), 0))

    def _coturn(self) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
        if shutil.which("turnserver") is None:
            raise SystemExit("RUN_TURN=1 needs coturn: apt-get install coturn")
        secret = secrets.token_urlsafe(32)
        state = settings.VAR_DIR / "coturn"
        state.mkdir(parents=True, exist_ok=True)
        # Everything on loopback: relayed peers are loopback addresses too.
        command = coturn_command(
            secret=secret, listen_ip="127.0.0.1", state_dir=state, allow_loopback_peers=True
        )
        log = (state / "turnserver.log").open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        urls = "turn:127.0.0.1:3478?transport=udp,turn:127.0.0.1:3478?transport=tcp"
        self.stdout.write(f"TURN relay:    {urls} (coturn, log {state / 'turnserver.log'})")
        return process, {"TURN_URLS": urls, "TURN_SHARED_SECRET": secret}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)
