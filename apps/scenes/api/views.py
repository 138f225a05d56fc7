"""The scenes API (DaedalusBuilder) under ``/api/daedalus/``.

Objects come from querysets restricted to what the caller may see (``selectors``), so a scene
or version outside them is a 404; a visible object the caller may not change is a 403.
Thumbnails are served by an authenticated view rather than public MEDIA URLs: a scene can turn
private after someone has seen its URL, and access checks must follow it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasPermission, caller_has_perm
from apps.core.errors import PermissionDenied
from apps.scenes import selectors, services
from apps.scenes.api.serializers import (
    SceneCreatedOutput,
    SceneCreateInput,
    SceneOutput,
    ScenePublishInput,
    SceneReportOutput,
    SceneUpdateInput,
    SceneVersionConfigureInput,
    SceneVersionOutput,
    SceneVersionUploadInput,
)
from apps.scenes.models import Scene
from apps.scenes.uploads import SceneUploadHandler, check_content_length


def _scene(request: Request, scene_id: uuid.UUID) -> Scene:
    return selectors.scene_get_visible(user=request.user, identity=request.auth, scene_id=scene_id)


def _require(request: Request, scene: Scene, codename: str) -> None:
    if not selectors.scene_may(request.user, request.auth, scene, codename):
        raise PermissionDenied("Only the scene's owner or an operator may do this.")


class ScenePagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class StreamingUploadMixin:
    """For POSTs carrying a scene file: stream it to disk with a size limit (see uploads.py)."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method == "POST":
            # Set before anything parses the body (authentication's CSRF check may).
            request._request.upload_handlers = [
                SceneUploadHandler(request._request, max_bytes=services.max_upload_bytes())
            ]
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if request.method == "POST":
            check_content_length(request._request, services.max_upload_bytes())


class SceneListView(StreamingUploadMixin, APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="daedalus_scenes_list",
        # The body is a limit/offset page (count, next, previous, results), not a bare list.
        parameters=[
            OpenApiParameter("limit", int, required=False),
            OpenApiParameter("offset", int, required=False),
            OpenApiParameter("mine", bool, required=False),
        ],
        responses={
            200: inline_serializer(
                "PaginatedSceneList",
                {
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": SceneOutput(many=True),
                },
            )
        },
        summary="Scenes you may see: your own, every published public one (operators: all)",
    )
    def get(self, request: Request) -> Response:
        qs = selectors.scene_list_visible(user=request.user, identity=request.auth)
        if request.query_params.get("mine") in ("1", "true"):
            qs = qs.filter(owner=request.user)
        paginator = ScenePagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(SceneOutput(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": SceneCreateInput},
        responses={
            201: SceneCreatedOutput,
            400: OpenApiResponse(description="invalid_input, unsupported_format, empty_file"),
            413: OpenApiResponse(description="payload_too_large"),
        },
        summary="Create a scene from an upload (.glb or .zip); processing starts after commit",
    )
    def post(self, request: Request) -> Response:
        if not (
            caller_has_perm(request.user, request.auth, "scenes.add_scene")
            and caller_has_perm(request.user, request.auth, "scenes.add_sceneversion")
        ):
            raise PermissionDenied("Your roles do not allow uploading scenes.")
        data = SceneCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        scene, version = services.scene_create(
            owner=request.user,
            name=data.validated_data["name"],
            description=data.validated_data.get("description", ""),
            visibility=data.validated_data.get("visibility", "private"),
            upload=data.validated_data["file"],
        )
        scene.refresh_from_db()
        version.refresh_from_db()
        body = SceneCreatedOutput(scene, context={"version": version}).data
        return Response(body, status=status.HTTP_201_CREATED)


class SceneDetailView(APIView):
    permission_classes = [HasPermission("scenes.view_scene")]

    @extend_schema(responses={200: SceneOutput}, summary="A scene")
    def get(self, request: Request, scene_id: uuid.UUID) -> Response:
        return Response(SceneOutput(_scene(request, scene_id)).data)

    @extend_schema(request=SceneUpdateInput, responses={200: SceneOutput}, summary="Edit a scene")
    def patch(self, request: Request, scene_id: uuid.UUID) -> Response:
        scene = _scene(request, scene_id)
        _require(request, scene, "change_scene")
        data = SceneUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        scene = services.scene_update(scene=scene, data=dict(data.validated_data))
        return Response(SceneOutput(scene).data)

    @extend_schema(responses={204: None}, summary="Delete a scene, its versions and files")
    def delete(self, request: Request, scene_id: uuid.UUID) -> Response:
        scene = _scene(request, scene_id)
        _require(request, scene, "delete_scene")
        services.scene_delete(scene=scene)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionListView(StreamingUploadMixin, APIView):
    parser_classes = [MultiPartParser]
    permission_classes = [HasPermission("scenes.view_scene")]

    @extend_schema(responses={200: SceneVersionOutput(many=True)}, summary="Versions of a scene")
    def get(self, request: Request, scene_id: uuid.UUID) -> Response:
        scene = _scene(request, scene_id)
        qs = selectors.scene_version_list_visible(
            user=request.user, identity=request.auth, scene=scene
        )
        return Response(SceneVersionOutput(qs, many=True).data)

    @extend_schema(
        request={"multipart/form-data": SceneVersionUploadInput},
        responses={
            201: SceneVersionOutput,
            413: OpenApiResponse(description="payload_too_large"),
        },
        summary="Upload a new version; poll it for status and progress",
    )
    def post(self, request: Request, scene_id: uuid.UUID) -> Response:
        scene = _scene(request, scene_id)
        _require(request, scene, "add_sceneversion")
        data = SceneVersionUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.scene_version_create(
            scene=scene, uploaded_by=request.user, upload=data.validated_data["file"]
        )
        version.refresh_from_db()
        return Response(SceneVersionOutput(version).data, status=status.HTTP_201_CREATED)


class VersionDetailView(APIView):
    permission_classes = [HasPermission("scenes.view_scene")]

    @extend_schema(
        responses={200: SceneVersionOutput}, summary="A version: status, progress, stats"
    )
    def get(self, request: Request, scene_id: uuid.UUID, version_id: uuid.UUID) -> Response:
        scene = _scene(request, scene_id)
        version = selectors.scene_version_get_visible(
            user=request.user, identity=request.auth, scene=scene, version_id=version_id
        )
        return Response(SceneVersionOutput(version).data)

    @extend_schema(
        request=SceneVersionConfigureInput,
        responses={200: SceneVersionOutput},
        summary="The creator's choices: default animation clip, where viewers start",
    )
    def patch(self, request: Request, scene_id: uuid.UUID, version_id: uuid.UUID) -> Response:
        scene = _scene(request, scene_id)
        _require(request, scene, "change_scene")
        version = selectors.scene_version_get_visible(
            user=request.user, identity=request.auth, scene=scene, version_id=version_id
        )
        data = SceneVersionConfigureInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.scene_version_configure(
            version=version,
            default_clip=data.validated_data.get("default_clip"),
            spawn=request.data.get("spawn") if "spawn" in data.validated_data else None,
        )
        return Response(SceneVersionOutput(version).data)


class VersionReportView(APIView):
    permission_classes = [HasPermission("scenes.view_scene")]

    @extend_schema(responses={200: SceneReportOutput}, summary="The validation report of a version")
    def get(self, request: Request, scene_id: uuid.UUID, version_id: uuid.UUID) -> Response:
        scene = _scene(request, scene_id)
        if not selectors.scene_may(request.user, request.auth, scene, "view_sceneversion"):
            # Reports are for the scene's managers; to others the resource does not exist.
            raise selectors.NotFound("No such version.", code="version_not_found")
        version = selectors.scene_version_get_visible(
            user=request.user, identity=request.auth, scene=scene, version_id=version_id
        )
        body = {
            "version_id": version.id,
            "status": version.status,
            "error": version.error,
            "report": version.report,
        }
        return Response(SceneReportOutput(body).data)


class VersionThumbnailView(APIView):
    permission_classes = [HasPermission("scenes.view_scene")]

    @extend_schema(
        responses={(200, "image/png"): OpenApiTypes.BINARY}, summary="The version's thumbnail"
    )
    def get(self, request: Request, scene_id: uuid.UUID, version_id: uuid.UUID) -> Any:
        scene = _scene(request, scene_id)
        version = selectors.scene_version_get_visible(
            user=request.user, identity=request.auth, scene=scene, version_id=version_id
        )
        if not version.thumbnail:
            raise selectors.NotFound("This version has no thumbnail yet.", code="no_thumbnail")
        response = FileResponse(version.thumbnail.open("rb"), content_type="image/png")
        # Versions are immutable, but access can be revoked: private caching only.
        response["Cache-Control"] = "private, max-age=300"
        return response


class PublishView(APIView):
    permission_classes = [HasPermission("scenes.view_scene")]

    @extend_schema(
        request=ScenePublishInput,
        responses={200: SceneOutput, 409: OpenApiResponse(description="version_not_ready")},
        summary="Publish a ready version of the scene (replaces the published one)",
    )
    def post(self, request: Request, scene_id: uuid.UUID) -> Response:
        scene = _scene(request, scene_id)
        _require(request, scene, "publish_scene")
        data = ScenePublishInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = selectors.scene_version_get_visible(
            user=request.user,
            identity=request.auth,
            scene=scene,
            version_id=data.validated_data["version_id"],
        )
        scene = services.scene_publish(scene=scene, version=version)
        return Response(SceneOutput(scene).data)


class UnpublishView(APIView):
    permission_classes = [HasPermission("scenes.view_scene")]

    @extend_schema(request=None, responses={200: SceneOutput}, summary="Unpublish the scene")
    def post(self, request: Request, scene_id: uuid.UUID) -> Response:
        scene = _scene(request, scene_id)
        _require(request, scene, "publish_scene")
        return Response(SceneOutput(services.scene_unpublish(scene=scene)).data)
