from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasPermission, caller_has_perm
from apps.core.errors import PermissionDenied
from apps.sessions import selectors, services
from apps.sessions.api.serializers import (
    JoinByInviteInput,
    JoinInput,
    JoinOutput,
    SessionCreateInput,
    SessionOutput,
    SessionStatusOutput,
    TransmitInput,
    TransmitOutput,
)
from apps.sessions.models import ParticipantRole, VRSession


def ws_url(session: VRSession) -> dict[str, str]:
    path = f"/ws/hermes/sessions/{session.id}/"
    public = urlsplit(settings.PUBLIC_URL)
    scheme = "wss" if public.scheme == "https" else "ws"
    return {"path": path, "url": f"{scheme}://{public.netloc}{public.path.rstrip('/')}{path}"}


def session_output(session: VRSession, request: Request) -> dict[str, Any]:
    may_see_invite = session.owner_id == request.user.pk or selectors.can_view_any(
        request.user, request.auth
    )
    return {
        "id": session.id,
        "name": session.name,
        "status": session.status,
        "visibility": session.visibility,
        "max_participants": session.max_participants,
        "owner": {"id": session.owner_id, "username": session.owner.username},
        "scene_version": session.scene_version_id,
        "state_version": session.state_version,
        "created_at": session.created_at,
        "started_at": session.started_at,
        "ended_at": session.ended_at,
        "ws_url": ws_url(session),
        "invite_token": (session.invite_token or None) if may_see_invite else None,
    }


class SessionCreateView(APIView):
    permission_classes = [HasPermission("hermes.add_vrsession")]

    @extend_schema(
        request=SessionCreateInput,
        responses={201: SessionOutput},
        summary="Create a session (you are its host); 409 session_limit_reached at capacity",
    )
    def post(self, request: Request) -> Response:
        data = SessionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_create(
            owner=request.user,
            name=data.validated_data["name"],
            visibility=data.validated_data["visibility"],
            max_participants=data.validated_data["max_participants"],
            scene_version_id=data.validated_data["scene_version"],
        )
        session = selectors.session_get_visible(
            session_id=session.id, user=request.user, identity=request.auth
        )
        return Response(SessionOutput(session_output(session, request)).data, status=201)


class SessionStatusView(APIView):
    permission_classes = [HasPermission("hermes.view_vrsession")]

    @extend_schema(responses={200: SessionStatusOutput}, summary="A session's live status")
    def get(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get_visible(
            session_id=session_id, user=request.user, identity=request.auth
        )
        body = {
            **session_output(session, request),
            "participants": selectors.session_members(session=session),
            "streams": selectors.session_streams(session=session),
            "state": session.state,
        }
        return Response(SessionStatusOutput(body).data)


class SessionTransmitView(APIView):
    permission_classes = [HasPermission("hermes.join_vrsession")]

    @extend_schema(
        request=TransmitInput,
        responses={200: TransmitOutput},
        summary="Send an event to every connected member, optionally setting shared state",
    )
    def put(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get_visible(
            session_id=session_id, user=request.user, identity=request.auth
        )
        data = TransmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_transmit(
            session_id=session.id,
            user=request.user,
            event=data.validated_data["event"],
            payload=data.validated_data["payload"],
            state=data.validated_data.get("state"),
        )
        return Response({"delivered": True, "state_version": session.state_version})


class SessionEndView(APIView):
    permission_classes = [HasPermission("hermes.view_vrsession")]

    @extend_schema(
        request=None,
        responses={200: SessionOutput},
        summary="End a session (host, operators, admins); members' sockets close with 4000",
    )
    def delete(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get_visible(
            session_id=session_id, user=request.user, identity=request.auth
        )
        is_host = session.participants.filter(user=request.user, role=ParticipantRole.HOST).exists()
        if not is_host and not caller_has_perm(
            request.user, request.auth, "hermes.end_any_vrsession"
        ):
            raise PermissionDenied("Only the host, an operator or an admin may end a session.")
        session = services.session_end(session_id=session.id)
        session = selectors.session_get_visible(
            session_id=session.id, user=request.user, identity=request.auth
        )
        return Response(SessionOutput(session_output(session, request)).data)


class SessionListView(APIView):
    permission_classes = [HasPermission("hermes.view_vrsession")]

    @extend_schema(
        responses={200: SessionOutput(many=True)},
        summary="Sessions you may see: live public ones and yours (operators: all)",
    )
    def get(self, request: Request) -> Response:
        sessions = selectors.sessions_visible_to(user=request.user, identity=request.auth)
        status = request.query_params.get("status")
        if status:
            sessions = sessions.filter(status=status)
        body = [session_output(s, request) for s in sessions[:200]]
        return Response(SessionOutput(body, many=True).data)


def _join_response(request: Request, participant: Any) -> Response:
    session = selectors.session_get_visible(
        session_id=participant.session_id, user=request.user, identity=request.auth
    )
    participant = selectors.participant_get(session_id=session.id, user=request.user)
    body = {
        "session": session_output(session, request),
        "participant": selectors.participant_as_dict(participant),
    }
    return Response(JoinOutput(body).data)


class SessionJoinView(APIView):
    permission_classes = [HasPermission("hermes.join_vrsession")]

    @extend_schema(
        request=JoinInput,
        responses={200: JoinOutput},
        summary="Join a session (invite token for invite/private); 409 session_full",
    )
    def post(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get_visible(
            session_id=session_id, user=request.user, identity=request.auth
        )
        data = JoinInput(data=request.data)
        data.is_valid(raise_exception=True)
        participant = services.participant_join(
            session_id=session.id,
            user=request.user,
            role=data.validated_data.get("role"),
            invite_token=data.validated_data.get("invite_token") or None,
            privileged=selectors.can_view_any(request.user, request.auth),
        )
        return _join_response(request, participant)


class SessionJoinByInviteView(APIView):
    permission_classes = [HasPermission("hermes.join_vrsession")]

    @extend_schema(
        operation_id="hermes_sessions_join_by_invite",  # else it collides with <id>/join
        request=JoinByInviteInput,
        responses={200: JoinOutput},
        summary="Join by invite token",
    )
    def post(self, request: Request) -> Response:
        data = JoinByInviteInput(data=request.data)
        data.is_valid(raise_exception=True)
        participant = services.participant_join_by_invite(
            invite_token=data.validated_data["invite_token"],
            user=request.user,
            role=data.validated_data.get("role"),
        )
        return _join_response(request, participant)


class SessionLeaveView(APIView):
    permission_classes = [HasPermission("hermes.join_vrsession")]

    @extend_schema(request=None, responses={204: None}, summary="Leave a session")
    def post(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get_visible(
            session_id=session_id, user=request.user, identity=request.auth
        )
        services.participant_leave(session_id=session.id, user=request.user)
        return Response(status=204)
