from django.urls import URLPattern, URLResolver, path

from apps.streaming.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("render_start", views.RenderStartView.as_view(), name="morpheus-render-start"),
    path("ice_servers", views.IceServersView.as_view(), name="morpheus-ice-servers"),
    path("quality_adjust", views.QualityAdjustView.as_view(), name="morpheus-quality-adjust"),
    path(
        "performance_metrics",
        views.PerformanceMetricsView.as_view(),
        name="morpheus-performance-metrics",
    ),
    path("render_stop", views.RenderStopView.as_view(), name="morpheus-render-stop"),
    path("voice_mute", views.VoiceMuteView.as_view(), name="morpheus-voice-mute"),
    path(
        "worker/scenes/<uuid:version_id>/file",
        views.WorkerSceneFileView.as_view(),
        name="morpheus-worker-scene-file",
    ),
]
