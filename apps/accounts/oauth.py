"""OAuth2/OIDC customisation: the claims an ID token and ``/o/userinfo/`` carry."""

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

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        user = request.user
        return {
            "preferred_username": user.username,
            "name": user.display_name or user.username,
            "email": user.email,
            "roles": user_roles(user),
        }
