"""Input and output shapes of the scenes API."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from apps.scenes.models import Scene, SceneVersion, Visibility


class SceneCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    file = serializers.FileField(
        allow_empty_file=False,
        help_text=".glb, .zip of one .gltf with its .bin and images, .fbx or .obj "
        "(converted to glTF on upload)",
    )


class SceneUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class SceneVersionUploadInput(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False)


class ScenePublishInput(serializers.Serializer):
    version_id = serializers.UUIDField()


class SceneStatsOutput(serializers.Serializer):
    vertices = serializers.IntegerField()
    triangles = serializers.IntegerField()
    nodes = serializers.IntegerField()
    meshes = serializers.IntegerField()
    materials = serializers.IntegerField()
    textures = serializers.IntegerField()
    texture_pixels = serializers.IntegerField()
    bounds_min = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    bounds_max = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    clips = serializers.ListField(
        child=serializers.DictField(),
        help_text="Animation clips in file order: [{name, duration (s)}]; empty: not animated.",
    )
    spawn = serializers.DictField(
        allow_null=True,
        help_text="Where viewers start, as processing computed it (workers/rendering/spawn.py): "
        "source, position (eye, scene units), yaw, pitch, scale (units per metre), framing, "
        "cameras [{node, name, position, yaw, pitch}].",
    )


class SpawnChoiceInput(serializers.Serializer):
    camera = serializers.IntegerField(required=False, min_value=0)
    framing = serializers.BooleanField(required=False)
    point = serializers.DictField(required=False, help_text="{position: [x, y, z], yaw, pitch}")
    scale = serializers.FloatField(required=False, allow_null=True)


class SceneVersionConfigureInput(serializers.Serializer):
    default_clip = serializers.CharField(
        max_length=128, required=False, allow_blank=True, help_text='"": the first clip'
    )
    spawn = SpawnChoiceInput(required=False, help_text="{}: the computed default start")


class SceneVersionOutput(serializers.ModelSerializer):
    scene_id = serializers.UUIDField(read_only=True)
    stats = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    report_url = serializers.SerializerMethodField()
    is_published = serializers.SerializerMethodField()
    spawn_start = serializers.SerializerMethodField()

    class Meta:
        model = SceneVersion
        fields = [
            "id",
            "scene_id",
            "number",
            "status",
            "progress",
            "stage",
            "error",
            "container",
            "original_name",
            "checksum",
            "size_bytes",
            "stats",
            "thumbnail_url",
            "report_url",
            "is_published",
            "default_clip",
            "spawn_choice",
            "spawn_start",
            "created_at",
            "processing_started_at",
            "processed_at",
        ]

    def get_stats(self, obj: SceneVersion) -> dict[str, Any]:
        return SceneStatsOutput(obj.stats()).data

    def get_thumbnail_url(self, obj: SceneVersion) -> str | None:
        if not obj.thumbnail:
            return None
        return reverse("daedalus-version-thumbnail", args=[obj.scene_id, obj.id])

    def get_report_url(self, obj: SceneVersion) -> str:
        return reverse("daedalus-version-report", args=[obj.scene_id, obj.id])

    def get_is_published(self, obj: SceneVersion) -> bool:
        return bool(obj.scene.published_version_id == obj.id)

    def get_spawn_start(self, obj: SceneVersion) -> dict[str, Any] | None:
        """Where viewers start, the creator's choice applied (what the viewer receives)."""
        return obj.spawn_start()


class SceneOwnerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class SceneOutput(serializers.ModelSerializer):
    owner = SceneOwnerOutput(read_only=True)
    published_version = SceneVersionOutput(read_only=True, allow_null=True)
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Scene
        fields = [
            "id",
            "name",
            "description",
            "visibility",
            "owner",
            "published_version",
            "thumbnail_url",
            "created_at",
            "updated_at",
        ]

    def get_thumbnail_url(self, obj: Scene) -> str | None:
        version = obj.published_version
        if version is None or not version.thumbnail:
            return None
        return reverse("daedalus-version-thumbnail", args=[obj.id, version.id])


class SceneCreatedOutput(SceneOutput):
    version = serializers.SerializerMethodField()

    class Meta(SceneOutput.Meta):
        fields = [*SceneOutput.Meta.fields, "version"]

    def get_version(self, obj: Scene) -> dict[str, Any]:
        return SceneVersionOutput(self.context["version"]).data


class SceneReportOutput(serializers.Serializer):
    version_id = serializers.UUIDField()
    status = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    report = serializers.JSONField(
        help_text=(
            '{"ok", "issues": [{"code", "severity", "message", "pointer", "source"}] (at most 3 '
            'of each code), "issue_groups": [{"code", "severity", "source", "count", "message", '
            '"examples": [pointer], "hint", "at_least"?}], "stats" (triangles drawn, '
            'unique_triangles, ...), "stat_labels", "khronos", "processing"}'
        )
    )
