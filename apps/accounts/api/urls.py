from django.urls import path

from apps.accounts.api import views
from apps.core.views import off_request_thread

urlpatterns = [
    # Password hashing and token rotation off the request thread (off_request_thread).
    path(
        "authenticate",
        off_request_thread(views.AuthenticateView.as_view()),
        name="athena-authenticate",
    ),
    path(
        "wisdom_refresh",
        off_request_thread(views.WisdomRefreshView.as_view()),
        name="athena-wisdom-refresh",
    ),
    path("session_token", views.SessionTokenView.as_view(), name="athena-session-token"),
    path("profile", views.ProfileView.as_view(), name="athena-profile"),
    path("logout", views.LogoutView.as_view(), name="athena-logout"),
    path("users", views.UserListView.as_view(), name="athena-users"),
    path("users/<int:user_id>/roles", views.UserRolesView.as_view(), name="athena-user-roles"),
]
