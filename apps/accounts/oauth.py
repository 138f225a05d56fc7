"""OAuth2/OIDC customisation: the claims an ID token and ``/o/userinfo/`` carry, and the
one response type the authorization endpoint accepts."""

from typing import Any

from oauth2_provider.oauth2_validators import OAuth2Validator

from apps.accounts.selectors import user_roles


class PlatformOAuth2Validator(OAuth2Validator):
    oidc_claim_scope = {
        **OAuth2Validator.oidc_claim_scope,
        "preferred_username": "profile",
        "name": "profile",
        "roles": "profile",
        "email": "email",
    }

    def validate_response_type(
        self, client_id: str, response_type: str, client: Any, request: Any, *args: Any, **kw: Any
    ) -> bool:
        # The code flow only: every other response type (implicit ``token``, ``id_token``, the
        # hybrid ``code token``/``code id_token``...) puts tokens in the redirect URL's fragment,
        # where history, referrers and any script of the client's page can read them
        # (RFC 9700 2.1.2). oauthlib answers ``unauthorized_client`` to the redirect URI.
        if response_type != "code":
            return False
        return bool(super().validate_response_type(client_id, response_type, client, request))

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        user = request.user
        return {
            "preferred_username": user.username,
            "name": user.display_name or user.username,
            "email": user.email,
            "roles": user_roles(user),
        }
