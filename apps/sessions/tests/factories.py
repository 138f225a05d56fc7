"""Rows of the sessions app for tests that need data rather than the service's behaviour
(``services.session_create`` also seats the owner and sends events; the ``make_session``
fixture goes through it)."""

import factory

from apps.accounts.tests.factories import UserFactory
from apps.sessions.models import Participant, VRSession


class VRSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VRSession

    name = factory.Sequence(lambda n: f"room {n}")
    owner = factory.SubFactory(UserFactory)


class ParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participant

    session = factory.SubFactory(VRSessionFactory)
    user = factory.SubFactory(UserFactory)
