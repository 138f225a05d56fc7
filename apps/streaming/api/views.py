"""MorpheusVR REST: render_start, quality_adjust, performance_metrics, render_stop, and the
scene download the streaming workers call with their worker token."""

import uuid
from typing import Any

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasPermission
from apps.accounts.signins import signin_key
from apps.core.errors import InvalidInput, NotFound
from apps.scenes.selectors import scene_version_file_path, scene_version_streamable
from apps.streaming import selectors, services
from apps.streaming.api.serializers import (
    IceConfigOut,
    QualityAdjustIn,
    RenderStartIn,
    SessionMetricsOutput,
    StreamMetricsOutput,
    StreamOut,
    VoiceMuteIn,
    VoiceMuteOut,
)
from apps.streaming.ice import ice_config
from apps.streaming.models import StreamingWorker


class RenderStartView(APIView):
    permission_classes = [HasPermission("streaming.add_stream")]

    @extend_schema(request=RenderStartIn, responses={200: StreamOut, 201: StreamOut})
    def post(self, request: Request) -> Response:
        data = RenderStartIn(data=request.data)
        data.is_valid(raise_exception=True)
        stream, created = services.stream_start(
            user=request.user, signin=signin_key(request.auth), **data.validated_data
        )
        return Response(StreamOut(stream).data, status=201 if created else 200)


class IceServersView(APIView):
    """The caller's RTCPeerConnection configuration: STUN/TURN servers with fresh short-lived
    TURN credentials of this user (renewal before expiry, ICE restarts, the lobby's check)."""

    permission_classes = [HasPermission("streaming.add_stream")]

    @extend_schema(responses={200: IceConfigOut})
    def get(self, request: Request) -> Response:
        return Response(IceConfigOut(ice_config(user_id=request.user.pk)).data)


class QualityAdjustView(APIView):
    permission_classes = [HasPermission("streaming.view_stream")]

    @extend_schema(request=QualityAdjustIn, responses={200: StreamOut})
    def put(self, request: Request) -> Response:
        data = QualityAdjustIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        stream = selectors.stream_get_for_user(
            user=request.user, identity=request.auth, stream_id=v["stream_id"]
        )
        stream = services.stream_quality_adjust(
            stream=stream, quality=v["quality"], max_bitrate_kbps=v.get("max_bitrate_kbps")
        )
        return Response(StreamOut(stream).data)


class VoiceMuteView(APIView):
    """Operators mute or unmute a participant's voice (the worker drops their audio)."""

    permission_classes = [HasPermission("streaming.view_any_stream")]

    @extend_schema(request=VoiceMuteIn, responses={200: VoiceMuteOut})
    def put(self, request: Request) -> Response:
        data = VoiceMuteIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        told = services.voice_mute(
            session_id=v["session_id"], participant_id=v["participant_id"], muted=v["muted"]
        )
        return Response(VoiceMuteOut({**v, "workers": told}).data)


class PerformanceMetricsView(APIView):
    permission_classes = [HasPermission("streaming.view_stream")]

    @extend_schema(
        parameters=[
            OpenApiParameter("stream_id", str, required=False),
            OpenApiParameter("session_id", str, required=False),
        ],
        responses={
            200: PolymorphicProxySerializer(
                component_name="PerformanceMetrics",
                serializers=[StreamMetricsOutput, SessionMetricsOutput],
                resource_type_field_name=None,
            )
        },
    )
    def get(self, request: Request) -> Response:
        stream_id = request.query_params.get("stream_id")
        session_id = request.query_params.get("session_id")
        if stream_id:
            stream = selectors.stream_get_for_user(
                user=request.user, identity=request.auth, stream_id=stream_id
            )
            return Response(selectors.stream_metrics(stream))
        if session_id:
            streams = selectors.streams_of_session(
                user=request.user, identity=request.auth, session_id=session_id
            )
            metrics = [selectors.stream_metrics(s) for s in streams]
            return Response({"session_id": session_id, "streams": metrics})
        raise InvalidInput("Give stream_id or session_id.", code="missing_parameter")


class RenderStopView(APIView):
    permission_classes = [HasPermission("streaming.view_stream")]

    @extend_schema(
        parameters=[OpenApiParameter("stream_id", str, required=True)],
        responses={200: StreamOut},
    )
    def delete(self, request: Request) -> Response:
        stream_id = request.query_params.get("stream_id") or request.data.get("stream_id")
        if not stream_id:
            raise InvalidInput("Give stream_id.", code="missing_parameter")
        stream = selectors.stream_get_for_user(
            user=request.user, identity=request.auth, stream_id=stream_id
        )
        stream = services.stream_stop(stream=stream)
        return Response(StreamOut(stream).data)


class WorkerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Worker <token>``: a streaming worker, not a user."""

    def authenticate(self, request: Request) -> tuple[Any, StreamingWorker] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"worker":
            return None
        worker = (
            services.worker_authenticate(token=parts[1].decode("ascii", "replace"))
            if len(parts) == 2
            else None
        )
        if worker is None or worker.status == StreamingWorker.Status.DEAD:
            raise exceptions.AuthenticationFailed("Unknown worker.", code="token_invalid")
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser(), worker

    def authenticate_header(self, request: Request) -> str:
        return 'Worker realm="morpheus"'


class IsWorker:
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, StreamingWorker)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return True


class WorkerSceneFileView(APIView):
    """The stored main file of a streamable scene version, for the worker that renders it."""

    authentication_classes = [WorkerTokenAuthentication]
    permission_classes = [IsWorker]
    throttle_classes: list[Any] = []

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, version_id: uuid.UUID) -> FileResponse:
        version = scene_version_streamable(version_id=version_id)
        path = scene_version_file_path(version)
        if not path.is_file():
            raise NotFound("The scene file is missing.", code="scene_file_missing")
        response = FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
        checksum = version.streamed_checksum
        if checksum:
            response["X-Checksum-SHA256"] = str(checksum)
        return response
