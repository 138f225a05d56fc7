from django.urls import path

from apps.accounts.api import views

urlpatterns = [
    path("authenticate", views.AuthenticateView.as_view(), name="athena-authenticate"),
    path("wisdom_refresh", views.WisdomRefreshView.as_view(), name="athena-wisdom-refresh"),
    path("session_token", views.SessionTokenView.as_view(), name="athena-session-token"),
    path("profile", views.ProfileView.as_view(), name="athena-profile"),
    path("logout", views.LogoutView.as_view(), name="athena-logout"),
    path("users", views.UserListView.as_view(), name="athena-users"),
    path("users/<int:user_id>/roles", views.UserRolesView.as_view(), name="athena-user-roles"),
]
