import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A platform account. Roles are Django groups (see ``roles.py``)."""

    display_name = models.CharField(max_length=150, blank=True)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class RefreshToken(models.Model):
    """One issued refresh token (stored as a SHA-256 hash, never in clear).

    Tokens of one login form a *family*: each refresh spends the presented token and issues
    the next. Presenting a spent token means it was stolen or replayed, so the whole family is
    revoked, including the access tokens it issued (by their ``jti``).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_tokens")
    family = models.UUIDField(default=uuid.uuid4, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    access_jti = models.CharField(max_length=64)
    access_expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"refresh token {self.pk} of {self.user_id} (family {self.family})"
