from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "apps.streaming"
    label = "streaming"
    verbose_name = "MorpheusVR — streaming workers, streams, placement, quality"

    def ready(self) -> None:
        # Here, not at the top: these import models, which app loading forbids before ready().
        from apps.accounts.signals import user_deactivated, user_roles_reduced
        from apps.accounts.signins import signin_ended
        from apps.sessions.extensions import (
            participant_left,
            register_client_event,
            register_session_streams,
            session_ended,
        )
        from apps.streaming import events, schema  # noqa: F401  (schema: OpenAPI extension)
        from apps.streaming.selectors import streams_for_session

        register_client_event("morpheus:signal", events.on_signal)
        register_client_event("morpheus:quality_change", events.on_quality_change)
        register_client_event("hermes:clip_change", events.on_clip_change)
        session_ended.connect(
            events.on_session_ended, dispatch_uid="streaming.stop_streams_of_ended_session"
        )
        participant_left.connect(
            events.on_participant_left, dispatch_uid="streaming.stop_streams_of_leaver"
        )
        signin_ended.connect(
            events.on_signin_ended, dispatch_uid="streaming.stop_streams_of_ended_signin"
        )
        user_roles_reduced.connect(
            events.on_user_roles_reduced, dispatch_uid="streaming.stop_streams_of_reduced_roles"
        )
        user_deactivated.connect(
            events.on_user_deactivated, dispatch_uid="streaming.stop_streams_of_disabled_user"
        )
        register_session_streams(streams_for_session)
