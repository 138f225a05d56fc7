"""The root urlconf plus the scenes pages, until the lead includes ``apps.scenes.urls``."""

from django.urls import include, path

from vrplatform.urls import urlpatterns as root_patterns

urlpatterns = [*root_patterns, path("", include("apps.scenes.urls"))]
