"""Pages of the browser/WebXR client (sign in, lobby, viewer) and the pre-flight check."""

from django.urls import URLPattern, URLResolver, path

from apps.web import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.login_page, name="web-login"),
    path("login/", views.login_page, name="web-login-alias"),
    path("lobby/", views.lobby_page, name="web-lobby"),
    path("play/<uuid:session_id>/", views.play_page, name="web-play"),
    path("api/web/netcheck", views.netcheck, name="web-netcheck"),
]
