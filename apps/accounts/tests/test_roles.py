import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import Group

from apps.accounts.roles import ROLES, scopes_allow
from apps.accounts.services import user_group_name

pytestmark = pytest.mark.django_db

USERS = "/api/athena/users"


def test_roles_exist_as_groups_with_permissions():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)
    admin = Group.objects.get(name="admin")
    operator = Group.objects.get(name="operator")
    assert admin.permissions.filter(codename="change_user").exists()
    assert operator.permissions.filter(codename="view_user").exists()
    assert not operator.permissions.filter(codename="change_user").exists()


def test_role_without_permission_is_403(make_user, bearer_client):
    response = bearer_client(make_user("participant")).get(USERS)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_operator_lists_users_but_cannot_change_roles(make_user, bearer_client):
    target = make_user("participant")
    operator = bearer_client(make_user("operator"))
    listing = operator.get(USERS)
    assert listing.status_code == 200
    assert target.username in [u["username"] for u in listing.json()]
    assert (
        operator.put(f"{USERS}/{target.pk}/roles", {"roles": ["admin"]}, format="json").status_code
        == 403
    )


def test_admin_sets_roles_and_the_users_sockets_hear_it(
    make_user, bearer_client, django_capture_on_commit_callbacks
):
    target = make_user("participant")
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group_name(target.pk), channel)
    try:
        admin = bearer_client(make_user("admin"))
        with django_capture_on_commit_callbacks(execute=True):
            response = admin.put(
                f"{USERS}/{target.pk}/roles", {"roles": ["creator", "operator"]}, format="json"
            )
        assert response.status_code == 200
        assert response.json()["roles"] == ["operator", "creator"]
        message = async_to_sync(layer.receive)(channel)
        assert message["type"] == "wisdom.updated"
        assert message["roles"] == ["operator", "creator"]
    finally:
        async_to_sync(layer.group_discard)(user_group_name(target.pk), channel)
    target.refresh_from_db()
    assert target.is_staff is True


def test_unknown_role_is_400_and_missing_user_404(make_user, bearer_client):
    admin = bearer_client(make_user("admin"))
    target = make_user()
    bad = admin.put(f"{USERS}/{target.pk}/roles", {"roles": ["emperor"]}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "unknown_role"
    assert admin.put(f"{USERS}/999999/roles", {"roles": []}, format="json").status_code == 404


@pytest.mark.parametrize(
    ("scopes", "permission", "allowed"),
    [
        ({"sessions"}, "hermes.add_vrsession", True),
        ({"sessions"}, "scenes.add_scene", False),
        ({"sessions"}, "hermes.end_any_vrsession", False),
        ({"sessions", "operations"}, "hermes.end_any_vrsession", True),
        ({"profile"}, "accounts.view_user", False),
        ({"operations"}, "accounts.view_user", True),
        ({"operations"}, "accounts.change_user", False),
        ({"admin"}, "accounts.change_user", True),
    ],
)
def test_scopes_narrow_permissions(scopes, permission, allowed):
    assert scopes_allow(frozenset(scopes), permission) is allowed
