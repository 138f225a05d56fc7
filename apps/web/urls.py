"""Pages of the browser/WebXR client (sign in, lobby, viewer)."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
