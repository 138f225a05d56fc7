from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "apps.streaming"
    label = "streaming"
    verbose_name = "MorpheusVR — streaming workers, streams, placement, quality"
