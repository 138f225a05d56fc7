"""Which local account an external sign-in may take over: one whose e-mail the provider says
is verified, never an unconfirmed self sign-up claim, never a guess between two."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress

from apps.accounts.adapters import linkable_user

pytestmark = pytest.mark.django_db


def addr(email: str, verified: bool) -> EmailAddress:
    return EmailAddress(email=email, verified=verified)


def test_links_by_a_verified_address(make_user):
    user = make_user(username="vic", email="vic@corp.example")
    assert linkable_user([addr("VIC@corp.example", True)]) == user


def test_an_unverified_provider_address_links_nothing(make_user):
    make_user(username="vic", email="vic@corp.example")
    assert linkable_user([addr("vic@corp.example", False)]) is None


def test_an_unconfirmed_self_sign_up_claim_is_not_taken_over(make_user):
    squatter = make_user(username="squatter", email="ceo@corp.example")
    EmailAddress.objects.create(user=squatter, email="ceo@corp.example", verified=False)
    assert linkable_user([addr("ceo@corp.example", True)]) is None


def test_two_accounts_with_the_address_link_neither(make_user):
    make_user(username="a1", email="dup@corp.example")
    make_user(username="a2", email="dup@corp.example")
    assert linkable_user([addr("dup@corp.example", True)]) is None


def test_a_disabled_account_is_not_linked(make_user):
    make_user(username="gone", email="gone@corp.example", is_active=False)
    assert linkable_user([addr("gone@corp.example", True)]) is None


def test_unicode_look_alikes_link_nothing(make_user):
    """Issue 25, item 7: KELVIN SIGN (U+212A) lower-cases to "k" in Python and may upper-case
    to "K" in the database; a provider's verified "\u212aate@corp.test" is not kate's."""
    make_user(username="kate", email="kate@corp.test")
    assert linkable_user([addr("\u212aate@corp.test", True)]) is None
    assert linkable_user([addr("kate@corp.te\u017ft", True)]) is None  # LONG S, "s"
    assert linkable_user([addr("\uff4bate@corp.test", True)]) is None  # FULLWIDTH k (NFKC)


def test_a_stored_look_alike_is_not_linked_to_the_plain_address(make_user):
    make_user(username="mallory", email="\u212aate@corp.test")
    assert linkable_user([addr("kate@corp.test", True)]) is None
