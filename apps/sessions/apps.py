from django.apps import AppConfig


class SessionsConfig(AppConfig):
    name = "apps.sessions"
    label = "hermes"
    verbose_name = "HermesAPI — multi-user sessions and the session WebSocket"
