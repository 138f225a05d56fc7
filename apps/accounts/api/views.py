from django.contrib.auth import logout as session_logout
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from apps.accounts import services
from apps.accounts.api.serializers import (
    AuthenticateInput,
    RefreshInput,
    RolesInput,
    TokenPairOutput,
    UserOutput,
)
from apps.accounts.authentication import TokenIdentity
from apps.accounts.permissions import HasPermission
from apps.accounts.selectors import user_get, user_profile, users_list


def _client_ip(request: Request) -> str:
    # DRF's identification honours NUM_PROXIES, so the gateway's X-Forwarded-For is trusted
    # only as far as configured.
    return AnonRateThrottle().get_ident(request)


def _pair_response(pair: services.TokenPair) -> Response:
    body = {
        "access": pair.access,
        "refresh": pair.refresh,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "user": user_profile(pair.user),
    }
    return Response(TokenPairOutput(body).data)


class AuthenticateView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "authenticate"

    @extend_schema(request=AuthenticateInput, responses={200: TokenPairOutput}, summary="Sign in")
    def post(self, request: Request) -> Response:
        data = AuthenticateInput(data=request.data)
        data.is_valid(raise_exception=True)
        pair = services.auth_login(
            username=data.validated_data["username"],
            password=data.validated_data["password"],
            client_ip=_client_ip(request),
        )
        return _pair_response(pair)


class WisdomRefreshView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "authenticate"

    @extend_schema(request=RefreshInput, responses={200: TokenPairOutput}, summary="Rotate tokens")
    def post(self, request: Request) -> Response:
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _pair_response(services.token_refresh(refresh=data.validated_data["refresh"]))


class SessionTokenView(APIView):
    """The web client's bridge from the sign-in pages (a cookie session, set by a password or an
    external provider) to its bearer tokens. Session authentication only, so DRF checks the
    CSRF token: another site cannot mint tokens with the visitor's cookie."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "authenticate"

    @extend_schema(request=None, responses={200: TokenPairOutput}, summary="Tokens for a session")
    def post(self, request: Request) -> Response:
        return _pair_response(services.token_pair_issue(user=request.user))


class ProfileView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [UserRateThrottle]

    @extend_schema(responses={200: UserOutput}, summary="The signed-in user, roles, permissions")
    def get(self, request: Request) -> Response:
        return Response(UserOutput(user_profile(request.user)).data)


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=RefreshInput, responses={204: None}, summary="Sign out")
    def post(self, request: Request) -> Response:
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        identity = request.auth if isinstance(request.auth, TokenIdentity) else None
        services.auth_logout(
            user=request.user,
            refresh=data.validated_data["refresh"],
            access_jti=identity.jti if identity else None,
            access_expires_at=identity.expires_at if identity else None,
        )
        # The browser's sign-in page session ends too, or the web client would trade it for
        # new tokens on its next visit to /login/.
        django_request = request._request
        if getattr(django_request, "user", None) is not None and (
            django_request.user.pk == request.user.pk
        ):
            session_logout(django_request)
        return Response(status=204)


class UserListView(APIView):
    """Operators and admins: list accounts with their roles."""

    permission_classes = [IsAuthenticated, HasPermission("accounts.view_user")]

    @extend_schema(responses={200: UserOutput(many=True)}, summary="List users")
    def get(self, request: Request) -> Response:
        return Response(UserOutput(users_list(), many=True).data)


class UserRolesView(APIView):
    """Admins: replace a user's roles. Their open sockets get ``athena:wisdom_updated``."""

    permission_classes = [IsAuthenticated, HasPermission("accounts.change_user")]

    @extend_schema(request=RolesInput, responses={200: UserOutput}, summary="Set a user's roles")
    def put(self, request: Request, user_id: int) -> Response:
        data = RolesInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_set_roles(
            user=user_get(user_id=user_id), roles=data.validated_data["roles"]
        )
        return Response(UserOutput(user_profile(user)).data)
