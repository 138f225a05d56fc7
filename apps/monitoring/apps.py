from django.apps import AppConfig

from apps.core.instruments import connect_celery_signals


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = "DelphiOracle — metrics, QoS history, predictions"

    def ready(self) -> None:
        # Every process that runs tasks (Celery workers, and web processes in eager mode)
        # loads Django apps, so connecting here covers them all.
        connect_celery_signals()
