"""Scenes in the admin panel (ElysiumUX): thumbnails, status, readable reports, and actions
to reprocess and publish. Actions call the same services as the API."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.core.errors import PlatformError
from apps.scenes import services
from apps.scenes.models import Scene, SceneVersion


def _thumbnail_tag(version: SceneVersion | None, height: int = 72) -> str:
    if version is None or not version.thumbnail:
        return "—"
    # Served by the authenticated API view (the admin's session authenticates it).
    url = reverse("daedalus-version-thumbnail", args=[version.scene_id, version.id])
    return format_html('<img src="{}" alt="thumbnail" style="height:{}px">', url, height)


class SceneVersionInline(admin.TabularInline):
    model = SceneVersion
    fk_name = "scene"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["number", "status", "progress", "triangles", "size_bytes", "created_at", "thumb"]
    readonly_fields = fields

    @admin.display(description="thumbnail")
    def thumb(self, obj: SceneVersion) -> str:
        return _thumbnail_tag(obj, 48)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Scene)
class SceneAdmin(admin.ModelAdmin):
    list_display = ["name", "thumb", "owner", "visibility", "published", "updated_at"]
    list_filter = ["visibility", ("published_version", admin.EmptyFieldListFilter)]
    search_fields = ["name", "owner__username", "id"]
    readonly_fields = ["id", "published_version", "thumb", "created_at", "updated_at"]
    fields = ["id", "name", "description", "owner", "visibility", "published_version", "thumb"]
    raw_id_fields = ["owner"]
    inlines = [SceneVersionInline]
    actions = ["unpublish"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Scene]:
        return super().get_queryset(request).select_related("owner", "published_version")

    @admin.display(description="thumbnail")
    def thumb(self, obj: Scene) -> str:
        return _thumbnail_tag(obj.published_version)

    @admin.display(description="published", boolean=True)
    def published(self, obj: Scene) -> bool:
        return obj.published_version_id is not None

    @admin.action(description="Unpublish the selected scenes", permissions=["change"])
    def unpublish(self, request: HttpRequest, queryset: QuerySet[Scene]) -> None:
        for scene in queryset:
            services.scene_unpublish(scene=scene)
        self.message_user(request, f"Unpublished {queryset.count()} scene(s).")


@admin.register(SceneVersion)
class SceneVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "thumb",
        "status",
        "progress",
        "triangles",
        "size_bytes",
        "created_at",
    ]
    list_filter = ["status", "container"]
    search_fields = ["scene__name", "id", "checksum"]
    actions = ["reprocess", "publish"]
    readonly_fields = [
        "id",
        "scene",
        "number",
        "status",
        "progress",
        "stage",
        "attempts",
        "thumb",
        "issues",
        "report_json",
        "error",
        "container",
        "original_name",
        "file",
        "source",
        "checksum",
        "size_bytes",
        "vertices",
        "triangles",
        "nodes",
        "meshes",
        "materials",
        "textures",
        "texture_pixels",
        "bounds_min",
        "bounds_max",
        "uploaded_by",
        "created_at",
        "processing_started_at",
        "processed_at",
    ]
    exclude = ["report", "thumbnail"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SceneVersion]:
        return super().get_queryset(request).select_related("scene")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from uploads (API or create_demo_scene)

    @admin.display(description="thumbnail")
    def thumb(self, obj: SceneVersion) -> str:
        return _thumbnail_tag(obj)

    @admin.display(description="issues")
    def issues(self, obj: SceneVersion) -> str:
        rows = (obj.report or {}).get("issues") or []
        if not rows:
            return "none"
        return format_html(
            "<table><tr><th>code</th><th>severity</th><th>where</th><th>what</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                (
                    (i.get("code"), i.get("severity"), i.get("pointer") or "/", i.get("message"))
                    for i in rows
                ),
            ),
        )

    @admin.display(description="report (JSON)")
    def report_json(self, obj: SceneVersion) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.report, indent=2))

    @admin.action(description="Reprocess the selected versions", permissions=["change"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[SceneVersion]) -> None:
        done = 0
        for version in queryset:
            try:
                services.scene_version_reprocess(version=version)
                done += 1
            except PlatformError as exc:
                self.message_user(request, f"{version}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Queued {done} version(s) for processing.")

    @admin.action(description="Publish the selected versions", permissions=["change"])
    def publish(self, request: HttpRequest, queryset: QuerySet[SceneVersion]) -> None:
        done = 0
        for version in queryset:
            try:
                services.scene_publish(scene=version.scene, version=version)
                done += 1
            except PlatformError as exc:
                self.message_user(request, f"{version}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Published {done} version(s).")
