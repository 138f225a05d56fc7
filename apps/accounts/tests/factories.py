"""Users and their OAuth2 grants for tests (``make_user`` in the root conftest wraps
``UserFactory``)."""

import secrets
from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model

from apps.accounts.models import User
from apps.accounts.services import user_set_roles

DEFAULT_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: Any) -> None:
        self.save()
        user_set_roles(user=self, roles=extracted if extracted is not None else ["participant"])


class OAuthApplicationFactory(factory.django.DjangoModelFactory):
    """A third-party tool registered for the authorization code grant."""

    class Meta:
        model = get_application_model()

    name = "tool"
    user = factory.SubFactory(UserFactory)
    client_type = "confidential"
    authorization_grant_type = "authorization-code"
    redirect_uris = "https://client.example.test/cb"


class AccessTokenFactory(factory.django.DjangoModelFactory):
    """An OAuth2 access token of ``user``, issued to an application of the same user; its
    ``token`` is the raw bearer value."""

    class Meta:
        model = get_access_token_model()

    user = factory.SubFactory(UserFactory)
    application = factory.SubFactory(OAuthApplicationFactory, user=factory.SelfAttribute("..user"))
    token = factory.LazyFunction(lambda: secrets.token_urlsafe(30))
    expires = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=15))
    scope = "profile"
