from django.urls import URLPattern, URLResolver, path

from apps.monitoring.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("predictions", views.PredictionsView.as_view(), name="delphi-predictions"),
    path("overview", views.OverviewView.as_view(), name="delphi-overview"),
]
