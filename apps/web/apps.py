from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "apps.web"
    label = "web"
    verbose_name = "ArcadiaWeb — the browser and WebXR client pages"
