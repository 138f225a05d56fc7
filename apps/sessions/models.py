"""Multi-user VR sessions (HermesAPI) and their participants.

A :class:`VRSession` is ``open`` when created, ``active`` once someone has joined it live over
the WebSocket, and ``ended`` for good. Its shared state (a small JSON object) and the state's
version live here, so the state survives reconnects and server restarts. A
:class:`Participant` row is a user's membership: its ``role`` is kept across reconnects,
``left_at`` is set when the user leaves or their last socket drops, and ``connections``
counts the user's open sockets in the session right now.
"""

import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

MAX_PARTICIPANTS_LIMIT = 256


def new_invite_token() -> str:
    return secrets.token_urlsafe(24)


class SessionStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"


class SessionVisibility(models.TextChoices):
    PUBLIC = "public", "Public (listed; anyone may join)"
    INVITE = "invite", "Invite (not listed; joining needs the invite token)"
    PRIVATE = "private", "Private (members only; joining needs the invite token)"


class ParticipantRole(models.TextChoices):
    HOST = "host", "Host"
    PARTICIPANT = "participant", "Participant"
    SPECTATOR = "spectator", "Spectator"


class VRSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_vrsessions"
    )
    # The scene everyone sees; null while none is chosen (or after its version is deleted).
    scene_version = models.ForeignKey(
        "scenes.SceneVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="vrsessions",
    )
    status = models.CharField(
        max_length=8, choices=SessionStatus.choices, default=SessionStatus.OPEN, db_index=True
    )
    visibility = models.CharField(
        max_length=8, choices=SessionVisibility.choices, default=SessionVisibility.PUBLIC
    )
    max_participants = models.PositiveSmallIntegerField(
        default=8, validators=[MinValueValidator(1), MaxValueValidator(MAX_PARTICIPANTS_LIMIT)]
    )
    # Shared by invite/private sessions out of band; public sessions have none.
    invite_token = models.CharField(max_length=64, blank=True, db_index=True)
    state = models.JSONField(default=dict, blank=True)
    # The animation clip the host chose (hermes:clip_change); "": the scene version's default.
    animation_clip = models.CharField(max_length=128, blank=True)
    state_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "VR session"
        permissions = [
            ("join_vrsession", "Can join VR sessions"),
            ("end_any_vrsession", "Can end any VR session"),
            ("view_any_vrsession", "Can see every VR session, private ones included"),
        ]
        indexes = [models.Index(fields=["status", "visibility"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def is_ended(self) -> bool:
        return self.status == SessionStatus.ENDED


class Participant(models.Model):
    session = models.ForeignKey(VRSession, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vrsession_memberships"
    )
    role = models.CharField(
        max_length=12, choices=ParticipantRole.choices, default=ParticipantRole.PARTICIPANT
    )
    joined_at = models.DateTimeField(auto_now_add=True)
    left_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    connections = models.PositiveIntegerField(default=0)
    # An operator muted this participant's voice (PUT /api/morpheus/voice_mute): kept here so
    # that a worker taking the session over (a failover, a new stream) drops it too.
    voice_muted = models.BooleanField(default=False)

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            models.UniqueConstraint(fields=["session", "user"], name="hermes_participant_unique")
        ]
        indexes = [models.Index(fields=["session", "left_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.session_id} as {self.role}"

    @property
    def is_current(self) -> bool:
        return self.left_at is None

    @property
    def is_connected(self) -> bool:
        return self.connections > 0
