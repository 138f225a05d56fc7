from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.sessions import services
from apps.sessions.models import Participant, SessionStatus, VRSession


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    fields = ("user", "role", "connections", "voice_muted", "joined_at", "last_seen_at", "left_at")
    # Muting goes through PUT /api/morpheus/voice_mute, which also tells the session's workers.
    readonly_fields = ("joined_at", "last_seen_at", "left_at", "connections", "voice_muted")
    raw_id_fields = ("user",)


@admin.register(VRSession)
class VRSessionAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "owner", "status", "visibility", "max_participants", "created_at")
    list_filter = ("status", "visibility", "created_at")
    search_fields = ("name", "id", "owner__username")
    readonly_fields = ("id", "created_at", "started_at", "ended_at", "state_version")
    raw_id_fields = ("owner", "scene_version")
    inlines = [ParticipantInline]
    actions = ["end_sessions"]

    @admin.action(description="End the selected sessions (members are disconnected)")
    def end_sessions(self, request: HttpRequest, queryset: QuerySet[VRSession]) -> None:
        live = list(queryset.exclude(status=SessionStatus.ENDED).values_list("id", flat=True))
        for session_id in live:
            services.session_end(session_id=session_id)
        self.message_user(request, f"Ended {len(live)} session(s).", messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Ending is the way to stop a session; deleting would skip the events and signal.
        return bool(request.user.is_superuser)


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ("user", "session", "role", "connections", "joined_at", "left_at")
    list_filter = ("role", "left_at")
    search_fields = ("user__username", "session__name", "session__id")
    raw_id_fields = ("user", "session")
    readonly_fields = ("joined_at", "last_seen_at", "left_at", "connections")
