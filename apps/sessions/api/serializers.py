import re

from rest_framework import serializers

from apps.sessions.models import MAX_PARTICIPANTS_LIMIT, ParticipantRole, SessionVisibility

_EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_STATE_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
JOIN_ROLES = [ParticipantRole.PARTICIPANT, ParticipantRole.SPECTATOR]


class SessionCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    visibility = serializers.ChoiceField(
        choices=SessionVisibility.choices, default=SessionVisibility.PUBLIC
    )
    max_participants = serializers.IntegerField(
        min_value=1, max_value=MAX_PARTICIPANTS_LIMIT, default=8
    )
    scene_version = serializers.UUIDField(required=False, allow_null=True, default=None)


class StateInput(serializers.Serializer):
    key = serializers.RegexField(_STATE_KEY)
    value = serializers.JSONField(allow_null=True, help_text="null deletes the key.")
    version = serializers.IntegerField(
        min_value=0, help_text="The state version you last saw; 409 state_conflict if stale."
    )


class TransmitInput(serializers.Serializer):
    event = serializers.RegexField(_EVENT_NAME, required=False)
    payload = serializers.JSONField(required=False, allow_null=True, default=None)
    state = StateInput(required=False)

    def validate(self, attrs: dict) -> dict:
        if "event" not in attrs and "state" not in attrs:
            raise serializers.ValidationError("Send an event, a state change, or both.")
        attrs.setdefault("event", "state_changed")
        return attrs


class JoinInput(serializers.Serializer):
    invite_token = serializers.CharField(max_length=64, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=JOIN_ROLES, required=False)


class JoinByInviteInput(serializers.Serializer):
    invite_token = serializers.CharField(max_length=64)
    role = serializers.ChoiceField(choices=JOIN_ROLES, required=False)


class WsUrlOutput(serializers.Serializer):
    path = serializers.CharField()
    url = serializers.CharField()


class OwnerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class SessionOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.CharField()
    visibility = serializers.CharField()
    max_participants = serializers.IntegerField()
    owner = OwnerOutput()
    scene_version = serializers.UUIDField(allow_null=True)
    state_version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    ws_url = WsUrlOutput()
    invite_token = serializers.CharField(
        allow_null=True, help_text="Only for the host, operators and admins."
    )


class ParticipantOutput(serializers.Serializer):
    participant_id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    display_name = serializers.CharField()
    role = serializers.CharField()
    connected = serializers.BooleanField()
    joined_at = serializers.CharField()
    last_seen_at = serializers.CharField(allow_null=True)


class SessionStatusOutput(SessionOutput):
    participants = ParticipantOutput(many=True)
    streams = serializers.ListField(child=serializers.JSONField())
    state = serializers.JSONField()


class JoinOutput(serializers.Serializer):
    session = SessionOutput()
    participant = ParticipantOutput()


class TransmitOutput(serializers.Serializer):
    delivered = serializers.BooleanField()
    state_version = serializers.IntegerField()
