"""Scenes and their versions (DaedalusBuilder).

A :class:`Scene` is what a creator names and publishes; each upload makes a new immutable
:class:`SceneVersion` that goes ``uploaded`` → ``processing`` → ``ready`` | ``rejected``. Only a
ready version can be published, and only the published version of a scene can be streamed.

Stored files live in Django's default storage under a per-version directory whose name holds
two random UUIDs (scene and version) plus a random token, so a MEDIA URL is not guessable; the
API still serves thumbnails through an authenticated view (visibility can change after a URL
has been seen).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from django.conf import settings
from django.db import models


def _version_dir(instance: SceneVersion) -> str:
    return f"scenes/{instance.scene_id}/{instance.id}"


def version_file_upload_to(instance: SceneVersion, filename: str) -> str:
    # Each stored file gets a directory of its own: a .gltf is read with its directory as the
    # package root, so nothing else we store may sit beside it.
    return f"{_version_dir(instance)}/{secrets.token_hex(8)}/{filename}"


class Visibility(models.TextChoices):
    PRIVATE = "private", "Private (owner and operators)"
    UNLISTED = "unlisted", "Unlisted (anyone with the id, once published)"
    PUBLIC = "public", "Public (listed, once published)"


class VersionStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    REJECTED = "rejected", "Rejected"


class Container(models.TextChoices):
    GLB = "glb", "Binary glTF (.glb)"
    GLTF = "gltf", "glTF JSON (.gltf)"
    ZIP = "zip", "Zip of a .gltf and its resources"
    FBX = "fbx", "FBX (converted to glTF on upload)"
    OBJ = "obj", "Wavefront OBJ (converted to glTF on upload)"


class Scene(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scenes"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=10_000)
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    published_version = models.ForeignKey(
        "SceneVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("publish_scene", "Can publish and unpublish own scenes"),
            ("manage_any_scene", "Can manage every user's scenes"),
        ]
        indexes = [models.Index(fields=["visibility", "published_version"])]

    def __str__(self) -> str:
        return self.name


class SceneVersion(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scene = models.ForeignKey(Scene, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    # The file as uploaded (.glb, .gltf, .zip, .fbx, .obj) and, when the upload was a zip, the
    # zip itself (kept as the creator's original).
    file = models.FileField(upload_to=version_file_upload_to, max_length=500)
    source = models.FileField(upload_to=version_file_upload_to, max_length=500, blank=True)
    # The render-ready derivative processing made (compressed glTF decoded, FBX/OBJ converted):
    # a plain GLB that workers load instead of ``file``. Empty when ``file`` is render-ready.
    render_file = models.FileField(upload_to=version_file_upload_to, max_length=500, blank=True)
    render_checksum = models.CharField(max_length=64, blank=True)
    container = models.CharField(max_length=8, choices=Container.choices)
    original_name = models.CharField(max_length=255)
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the uploaded file (hex).")
    size_bytes = models.BigIntegerField()

    status = models.CharField(
        max_length=16, choices=VersionStatus.choices, default=VersionStatus.UPLOADED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0)  # 0..100
    stage = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    report = models.JSONField(default=dict, blank=True)

    vertices = models.BigIntegerField(default=0)
    triangles = models.BigIntegerField(default=0)
    nodes = models.PositiveIntegerField(default=0)
    meshes = models.PositiveIntegerField(default=0)
    materials = models.PositiveIntegerField(default=0)
    textures = models.PositiveIntegerField(default=0)
    texture_pixels = models.BigIntegerField(default=0)
    bounds_min = models.JSONField(null=True, blank=True)
    bounds_max = models.JSONField(null=True, blank=True)
    thumbnail = models.FileField(upload_to=version_file_upload_to, max_length=500, blank=True)
    # Animation clips found at processing ([{"name", "duration"}], file order) and the one a
    # session plays until its host switches ("": the first clip).
    clips = models.JSONField(default=list, blank=True)
    default_clip = models.CharField(max_length=128, blank=True)
    # Where viewers start, computed at processing (workers/rendering/spawn.py: the default start,
    # the thumbnail's framing, the cameras, the scale) and the creator's choice over it:
    # {} (the computed default), {"camera": i}, {"framing": true} or {"point": {position, yaw,
    # pitch}}, each optionally with {"scale": units per metre}. Read it through ``spawn_start``.
    spawn = models.JSONField(null=True, blank=True)
    spawn_choice = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["scene", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["scene", "number"], name="scene_version_number_unique"),
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="scene_version_progress_0_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scene} v{self.number}"

    @property
    def streamed_checksum(self) -> str:
        """SHA-256 of the file workers load (their cache key)."""
        return self.render_checksum if self.render_file else self.checksum

    @property
    def is_ready(self) -> bool:
        return self.status == VersionStatus.READY

    def stats(self) -> dict[str, Any]:
        return {
            "vertices": self.vertices,
            "triangles": self.triangles,
            "nodes": self.nodes,
            "meshes": self.meshes,
            "materials": self.materials,
            "textures": self.textures,
            "texture_pixels": self.texture_pixels,
            "bounds_min": self.bounds_min,
            "bounds_max": self.bounds_max,
            "clips": self.clips,
            "spawn": self.spawn,
        }

    def spawn_start(self) -> dict[str, Any] | None:
        """Where a viewer starts: ``{source, position, yaw, pitch, scale}`` (positions are the
        viewer's eye in scene units; ``scale`` is scene units per metre), the creator's choice
        applied over what processing computed. None before processing."""
        spawn = self.spawn
        if not spawn:
            return None
        choice = self.spawn_choice or {}
        keys = ("position", "yaw", "pitch")
        start = {"source": spawn.get("source", "bounds"), **{k: spawn.get(k) for k in keys}}
        if "camera" in spawn:
            start["camera"] = spawn["camera"]
        cameras = spawn.get("cameras") or []
        camera = choice.get("camera")
        if isinstance(camera, int) and 0 <= camera < len(cameras):
            start = {"source": "camera", "camera": camera, **{k: cameras[camera][k] for k in keys}}
        elif choice.get("framing") and spawn.get("framing"):
            start = {"source": "bounds", **{k: spawn["framing"][k] for k in keys}}
        elif isinstance(choice.get("point"), dict):
            start = {"source": "creator", **{k: choice["point"][k] for k in keys}}
        start["scale"] = float(choice.get("scale") or spawn.get("scale") or 1.0)
        return start
