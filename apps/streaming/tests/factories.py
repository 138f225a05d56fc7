"""Rows of the streaming app for tests that need data rather than the services' behaviour
(the ``online_worker`` fixture registers a worker through them, with a test channel)."""

import factory

from apps.sessions.tests.factories import ParticipantFactory
from apps.streaming.models import Stream, StreamingWorker


class StreamingWorkerFactory(factory.django.DjangoModelFactory):
    """An online worker as its heartbeats leave it (no control socket)."""

    class Meta:
        model = StreamingWorker

    name = factory.Sequence(lambda n: f"gpu-{n}")
    token_hash = factory.Sequence(lambda n: f"{n:064x}")  # unique; no token hashes to it
    status = StreamingWorker.Status.ONLINE
    max_streams = 4


class StreamFactory(factory.django.DjangoModelFactory):
    """A stream of a participant (its session and user) on a worker."""

    class Meta:
        model = Stream

    participant = factory.SubFactory(ParticipantFactory)
    session = factory.SelfAttribute("participant.session")
    user = factory.SelfAttribute("participant.user")
    worker = factory.SubFactory(StreamingWorkerFactory)
    encoder = "libx264"
