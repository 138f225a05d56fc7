from django.urls import URLPattern, URLResolver, path

from apps.sessions.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("session_create", views.SessionCreateView.as_view(), name="hermes-session-create"),
    path(
        "session_status/<uuid:session_id>",
        views.SessionStatusView.as_view(),
        name="hermes-session-status",
    ),
    path(
        "session_transmit/<uuid:session_id>",
        views.SessionTransmitView.as_view(),
        name="hermes-session-transmit",
    ),
    path(
        "session_end/<uuid:session_id>", views.SessionEndView.as_view(), name="hermes-session-end"
    ),
    path("sessions", views.SessionListView.as_view(), name="hermes-sessions"),
    path("sessions/join", views.SessionJoinByInviteView.as_view(), name="hermes-join-by-invite"),
    path(
        "sessions/<uuid:session_id>/join",
        views.SessionJoinView.as_view(),
        name="hermes-session-join",
    ),
    path(
        "sessions/<uuid:session_id>/leave",
        views.SessionLeaveView.as_view(),
        name="hermes-session-leave",
    ),
]
