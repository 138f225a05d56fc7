"""Tell drf-spectacular how the platform's bearer authentication appears in OpenAPI."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.PlatformBearerAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT or OAuth2 access token",
            "description": "A platform JWT from /api/athena/authenticate or an OAuth2 access "
            "token from /o/token/.",
        }
