"""Celery tasks (thin: they call services). Schedule ``streaming.reap_workers`` every 5 s with
beat in production; in development the worker consumer reaps on every heartbeat."""

from celery import shared_task

from apps.streaming.services import workers_reap


@shared_task(name="streaming.reap_workers", ignore_result=True)
def reap_workers() -> int:
    return len(workers_reap())
