"""Celery tasks of sessions (thin). ``sessions.reap_presence`` every 30 s with beat: the sockets
of a web process that died are taken off their participants (apps/sessions/presence.py)."""

from celery import shared_task

from apps.sessions.presence import presence_reap


@shared_task(name="sessions.reap_presence", ignore_result=True)
def reap_presence() -> int:
    return presence_reap()
