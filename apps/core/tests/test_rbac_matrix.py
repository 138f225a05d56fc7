"""The RBAC matrix: every REST endpoint, every role, own and other's objects, against one table.

Each test plays one role against one kind of object: ``own`` (the caller created it: their
session, their stream, their scene, their account) or ``other`` (a *private* one of another
user: the default queryset restrictions must make it a 404, not a 403, for anyone without an
``*_any_*`` power). The ``EXPECTED`` table is the specification; a test fails with every cell
that disagrees, so a change in one permission shows up as a readable diff of the matrix.

Rows run in table order against objects built once per test, so the rows that destroy or
revoke (render_stop, session_end, leave, scene delete, logout) come last.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import token_pair_issue
from apps.scenes.tests.conftest import _media_root, make_scene  # noqa: F401 (fixtures)
from apps.sessions import services as session_services
from apps.streaming import services as stream_services
from apps.streaming.tests.conftest import online_worker  # noqa: F401 (fixture)

ROLES = ("anonymous", "participant", "creator", "operator", "admin")

# Columns: anonymous, then (own, other) for participant, creator, operator, admin.
# Anonymous has no objects of its own: its one figure holds for both columns.
Cell = tuple[int, int]
EXPECTED: dict[str, tuple[int, Cell, Cell, Cell, Cell]] = {
    # accounts
    "athena.authenticate": (400, (400, 400), (400, 400), (400, 400), (400, 400)),
    "athena.wisdom_refresh": (400, (400, 400), (400, 400), (400, 400), (400, 400)),
    # a cookie session only: a bearer token never mints more tokens here
    "athena.session_token": (403, (403, 403), (403, 403), (403, 403), (403, 403)),
    "athena.profile": (401, (200, 200), (200, 200), (200, 200), (200, 200)),
    "athena.users": (401, (403, 403), (403, 403), (200, 200), (200, 200)),
    "athena.user_roles": (401, (403, 403), (403, 403), (403, 403), (200, 200)),
    # sessions
    "hermes.session_create": (401, (201, 201), (201, 201), (201, 201), (201, 201)),
    "hermes.sessions": (401, (200, 200), (200, 200), (200, 200), (200, 200)),
    "hermes.session_status": (401, (200, 404), (200, 404), (200, 200), (200, 200)),
    "hermes.session_transmit": (401, (200, 404), (200, 404), (200, 403), (200, 403)),
    "hermes.join_by_invite": (401, (200, 200), (200, 200), (200, 200), (200, 200)),
    "hermes.session_join": (401, (200, 404), (200, 404), (200, 200), (200, 200)),
    # streaming
    # after session_join: operators and admins are members of the other's session by now
    "morpheus.render_start": (401, (200, 404), (200, 404), (200, 201), (200, 201)),
    "morpheus.quality_adjust": (401, (200, 404), (200, 404), (200, 200), (200, 200)),
    "morpheus.performance_metrics": (401, (200, 404), (200, 404), (200, 200), (200, 200)),
    # muting someone's voice is an operator's power, over any session (own included)
    "morpheus.voice_mute": (401, (403, 403), (403, 403), (200, 200), (200, 200)),
    "morpheus.worker_scene_file": (401, (401, 401), (401, 401), (401, 401), (401, 401)),
    # monitoring
    "delphi.predictions": (401, (403, 403), (403, 403), (200, 200), (200, 200)),
    "delphi.overview": (401, (403, 403), (403, 403), (200, 200), (200, 200)),
    "web.netcheck": (401, (200, 200), (200, 200), (200, 200), (200, 200)),
    # scenes (a participant's "own" scene: made while they were a creator, role since lost)
    "daedalus.scenes": (401, (200, 200), (200, 200), (200, 200), (200, 200)),
    "daedalus.scene_upload": (401, (403, 403), (400, 400), (400, 400), (400, 400)),
    "daedalus.scene": (401, (200, 404), (200, 404), (200, 200), (200, 200)),
    "daedalus.scene_edit": (401, (403, 404), (200, 404), (200, 200), (200, 200)),
    "daedalus.versions": (401, (200, 404), (200, 404), (200, 200), (200, 200)),
    "daedalus.version_upload": (401, (403, 404), (400, 404), (400, 400), (400, 400)),
    "daedalus.version": (401, (200, 404), (200, 404), (200, 200), (200, 200)),
    "daedalus.version_report": (401, (404, 404), (200, 404), (200, 200), (200, 200)),
    "daedalus.version_thumbnail": (401, (200, 404), (200, 404), (200, 200), (200, 200)),
    "daedalus.version_configure": (401, (403, 404), (200, 404), (200, 200), (200, 200)),
    "daedalus.unpublish": (401, (403, 404), (200, 404), (200, 200), (200, 200)),
    "daedalus.publish": (401, (403, 404), (200, 404), (200, 200), (200, 200)),
    # destructive rows last
    "morpheus.render_stop": (401, (200, 404), (200, 404), (200, 200), (200, 200)),
    "hermes.session_leave": (401, (204, 404), (204, 404), (204, 204), (204, 204)),
    "hermes.session_end": (401, (200, 404), (200, 404), (200, 200), (200, 200)),
    "daedalus.scene_delete": (401, (403, 404), (204, 404), (204, 204), (204, 204)),
    "athena.logout": (401, (204, 400), (204, 400), (204, 400), (204, 400)),
}


def expected(row: str, role: str, ownership: str) -> int:
    anonymous, *cells = EXPECTED[row]
    if role == "anonymous":
        return anonymous
    return cells[ROLES.index(role) - 1][0 if ownership == "own" else 1]


@dataclass
class World:
    """The objects one row acts on: the caller's and another user's."""

    actor: Any
    owner: Any  # whose objects the row targets (the actor for "own")
    session: Any
    private_session: Any  # an invite-only session of the owner, for join-by-invite
    stream: Any
    scene: Any
    version: Any
    refresh: str  # the owner's refresh token
    extra: dict[str, Any] = field(default_factory=dict)


Request = tuple[str, str, dict[str, Any] | None]


def _requests(w: World) -> dict[str, Callable[[], Request]]:
    sid, scene_id, vid = w.session.id, w.scene.id, w.version.id
    ver = f"/api/daedalus/scenes/{scene_id}/versions/{vid}"
    return {
        "athena.authenticate": lambda: ("post", "/api/athena/authenticate", {}),
        "athena.wisdom_refresh": lambda: ("post", "/api/athena/wisdom_refresh", {}),
        "athena.session_token": lambda: ("post", "/api/athena/session_token", {}),
        "athena.profile": lambda: ("get", "/api/athena/profile", None),
        "athena.users": lambda: ("get", "/api/athena/users", None),
        # own: set one's roles to what they are (a no-op); other: make the owner a creator.
        "athena.user_roles": lambda: (
            "put",
            f"/api/athena/users/{w.owner.pk}/roles",
            {"roles": sorted(g.name for g in w.owner.groups.all()) or ["participant"]},
        ),
        "hermes.session_create": lambda: ("post", "/api/hermes/session_create", {"name": "m"}),
        "hermes.sessions": lambda: ("get", "/api/hermes/sessions", None),
        "hermes.session_status": lambda: ("get", f"/api/hermes/session_status/{sid}", None),
        "hermes.session_transmit": lambda: (
            "put",
            f"/api/hermes/session_transmit/{sid}",
            {"event": "ping", "payload": {}},
        ),
        # Whoever holds an invite token may join: the token is the capability.
        "hermes.join_by_invite": lambda: (
            "post",
            "/api/hermes/sessions/join",
            {"invite_token": w.private_session.invite_token},
        ),
        "hermes.session_join": lambda: ("post", f"/api/hermes/sessions/{sid}/join", {}),
        "morpheus.render_start": lambda: (
            "post",
            "/api/morpheus/render_start",
            {"session_id": sid},
        ),
        "morpheus.quality_adjust": lambda: (
            "put",
            "/api/morpheus/quality_adjust",
            {"stream_id": str(w.stream.id), "quality": "720p"},
        ),
        "morpheus.performance_metrics": lambda: (
            "get",
            f"/api/morpheus/performance_metrics?stream_id={w.stream.id}",
            None,
        ),
        "morpheus.voice_mute": lambda: (
            "put",
            "/api/morpheus/voice_mute",
            {"session_id": str(sid), "participant_id": w.stream.participant_id, "muted": True},
        ),
        "morpheus.worker_scene_file": lambda: (
            "get",
            f"/api/morpheus/worker/scenes/{vid}/file",
            None,
        ),
        "delphi.predictions": lambda: ("get", "/api/delphi/predictions", None),
        "delphi.overview": lambda: ("get", "/api/delphi/overview", None),
        "web.netcheck": lambda: ("get", "/api/web/netcheck?bytes=16", None),
        "daedalus.scenes": lambda: ("get", "/api/daedalus/scenes", None),
        "daedalus.scene_upload": lambda: ("post", "/api/daedalus/scenes", {"name": "x"}),
        "daedalus.scene": lambda: ("get", f"/api/daedalus/scenes/{scene_id}", None),
        "daedalus.scene_edit": lambda: (
            "patch",
            f"/api/daedalus/scenes/{scene_id}",
            {"description": "edited"},
        ),
        "daedalus.versions": lambda: ("get", f"/api/daedalus/scenes/{scene_id}/versions", None),
        "daedalus.version_upload": lambda: (
            "post",
            f"/api/daedalus/scenes/{scene_id}/versions",
            {},
        ),
        "daedalus.version": lambda: ("get", ver, None),
        "daedalus.version_report": lambda: ("get", f"{ver}/report", None),
        "daedalus.version_thumbnail": lambda: ("get", f"{ver}/thumbnail", None),
        "daedalus.version_configure": lambda: ("patch", ver, {"default_clip": ""}),
        "daedalus.unpublish": lambda: ("post", f"/api/daedalus/scenes/{scene_id}/unpublish", {}),
        "daedalus.publish": lambda: (
            "post",
            f"/api/daedalus/scenes/{scene_id}/publish",
            {"version_id": str(vid)},
        ),
        "morpheus.render_stop": lambda: (
            "delete",
            f"/api/morpheus/render_stop?stream_id={w.stream.id}",
            None,
        ),
        "hermes.session_leave": lambda: ("post", f"/api/hermes/sessions/{sid}/leave", {}),
        "hermes.session_end": lambda: ("delete", f"/api/hermes/session_end/{sid}", None),
        "daedalus.scene_delete": lambda: ("delete", f"/api/daedalus/scenes/{scene_id}", None),
        "athena.logout": lambda: ("post", "/api/athena/logout", {"refresh": w.refresh}),
    }


def _call(client: APIClient, method: str, url: str, body: dict[str, Any] | None) -> Any:
    if method in ("get", "delete"):
        return getattr(client, method)(url)
    if url.startswith("/api/daedalus/") and method == "post":
        return client.post(url, body or {}, format="multipart")
    return getattr(client, method)(url, body, format="json")


def test_the_table_covers_every_rest_endpoint() -> None:
    """A new endpoint must get a row: every API route (and method) appears in the table."""
    from django.urls import URLResolver, get_resolver, resolve

    def api_routes(resolver: Any, prefix: str = "") -> set[str]:
        out: set[str] = set()
        for entry in resolver.url_patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                out |= api_routes(entry, route)
            elif route.startswith("api/") and not route.startswith(("api/schema", "api/docs")):
                out.add(route)
        return out

    stand_in = _StandIn()
    world = World(_User(), _User(), *(stand_in,) * 5, refresh="")
    calls = [make() for make in _requests(world).values()]
    assert set(EXPECTED) == set(_requests(world))
    assert {resolve(url.split("?")[0]).route for _, url, _ in calls} == api_routes(get_resolver())
    assert len({(method, resolve(url.split("?")[0]).route) for method, url, _ in calls}) == len(
        calls
    ), "two rows test the same endpoint and method"


class _StandIn:
    """Enough of a session/stream/scene/version to build the rows' URLs."""

    id = pk = uuid.UUID(int=1)
    invite_token = "invite"
    participant_id = 1


class _User:
    pk = 1

    class groups:  # stands in for a related manager
        @staticmethod
        def all() -> list[Any]:
            return []


def _other_user(make_user: Any) -> Any:
    return make_user("creator", username=f"other-{uuid.uuid4().hex[:8]}")


def _world(
    actor: Any, owner: Any, scene_maker: Callable[..., Any], worker_factory: Callable[..., Any]
) -> World:
    worker_factory(max_streams=16)
    session = session_services.session_create(owner=owner, name="matrix", visibility="private")
    invite = session_services.session_create(owner=owner, name="invite", visibility="invite")
    stream, _ = stream_services.stream_start(user=owner, session_id=session.id)
    scene = scene_maker(owner, visibility="private", publish=True)
    return World(
        actor=actor,
        owner=owner,
        session=session,
        private_session=invite,
        stream=stream,
        scene=scene,
        version=scene.published_version,
        refresh=token_pair_issue(user=owner).refresh,
    )


@pytest.mark.parametrize(
    ("role", "ownership"),
    [("anonymous", "other")] + [(r, o) for r in ROLES[1:] for o in ("own", "other")],
)
def test_rbac_matrix(
    role: str,
    ownership: str,
    make_user: Any,
    make_scene: Any,  # noqa: F811 (the imported fixture)
    online_worker: Any,  # noqa: F811 (the imported fixture)
    settings: Any,
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    actor = None if role == "anonymous" else make_user(role)
    owner = actor if ownership == "own" else _other_user(make_user)
    world = _world(actor, owner, make_scene, online_worker)
    client = APIClient()
    if actor is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_issue(user=actor).access}")

    wrong = []
    for row, make in _requests(world).items():
        method, url, body = make()
        response = _call(client, method, url, body)
        want = expected(row, role, ownership)
        if response.status_code != want:
            body = response.content[:160]
            wrong.append(f"{row}: {response.status_code} (table: {want}) {body!r}")
        elif response.status_code >= 400:
            error = response.json()["error"]  # every refusal is the one error shape
            assert error["code"], row
    assert not wrong, f"{role}/{ownership}:\n" + "\n".join(wrong)


# --- OAuth2 scopes: every endpoint x every scope --------------------------------------------
# Which scopes let an OAuth2 token through each endpoint (the token needs one of them; `admin`
# passes everywhere). "-": the endpoint takes no bearer token, so no scope helps or hurts.
# Written out here as the specification, independently of apps/accounts/scopes.py.
SCOPES = ("openid", "profile", "email", "sessions", "streaming", "scenes", "operations", "admin")
_S, _ST, _SC, _OP = {"sessions"}, {"streaming"}, {"scenes"}, {"operations"}
SCOPE_TABLE: dict[str, set[str] | str] = {
    "athena.authenticate": "-",
    "athena.wisdom_refresh": "-",
    "athena.session_token": "-",
    "athena.profile": {"profile"},
    "athena.users": _OP,
    "athena.user_roles": set(),
    "hermes.session_create": _S,
    "hermes.sessions": _S,
    "hermes.session_status": _S,
    "hermes.session_transmit": _S,
    "hermes.join_by_invite": _S,
    "hermes.session_join": _S,
    "morpheus.render_start": _ST,
    "morpheus.quality_adjust": _ST,
    "morpheus.performance_metrics": _ST,
    "morpheus.worker_scene_file": "-",
    "delphi.predictions": _OP,
    "delphi.overview": _OP,
    "web.netcheck": _S | _ST,
    "daedalus.scenes": _SC,
    "daedalus.scene_upload": _SC,
    "daedalus.scene": _SC,
    "daedalus.scene_edit": _SC,
    "daedalus.versions": _SC,
    "daedalus.version_upload": _SC,
    "daedalus.version": _SC,
    "daedalus.version_report": _SC,
    "daedalus.version_thumbnail": _SC,
    "daedalus.version_configure": _SC,
    "daedalus.unpublish": _SC,
    "daedalus.publish": _SC,
    "morpheus.render_stop": _ST,
    "morpheus.voice_mute": _OP,
    "hermes.session_leave": _S,
    "hermes.session_end": _S,
    "daedalus.scene_delete": _SC,
    "athena.logout": set(SCOPES),  # revokes the caller's own platform tokens
}


def _oauth_token(user: Any, scope: str) -> str:
    """An access token as /o/token/ issues it (client credentials of an app ``user`` owns)."""
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model, get_application_model

    application = get_application_model().objects.create(
        name=f"matrix-{scope}",
        user=user,
        client_type="confidential",
        authorization_grant_type="client-credentials",
    )
    raw = f"matrix-{scope}-{uuid.uuid4().hex}"
    get_access_token_model().objects.create(
        user=None,
        application=application,
        token=raw,
        scope=scope,
        expires=timezone.now() + timedelta(minutes=5),
    )
    return raw


def test_scope_table_covers_every_endpoint() -> None:
    stand_in = _StandIn()
    world = World(_User(), _User(), *(stand_in,) * 5, refresh="")
    assert set(SCOPE_TABLE) == set(_requests(world))
    from django.conf import settings

    assert set(SCOPES) == set(settings.OAUTH2_SCOPES)


@pytest.mark.parametrize("scope", SCOPES)
def test_scope_matrix(
    scope: str,
    make_user: Any,
    make_scene: Any,  # noqa: F811 (the imported fixture)
    online_worker: Any,  # noqa: F811 (the imported fixture)
    settings: Any,
) -> None:
    """An admin's client-credentials token with one scope against every endpoint: refused with
    403 ``insufficient_scope`` exactly where the table says the scope does not reach, and never
    refused for its scope where it does (the admin's roles allow everything)."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    admin = make_user("admin")
    world = _world(admin, admin, make_scene, online_worker)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {_oauth_token(admin, scope)}")

    wrong = []
    for row, make in _requests(world).items():
        method, url, body = make()
        response = _call(client, method, url, body)
        allowed = SCOPE_TABLE[row]
        refused = (
            response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
        )
        if allowed == "-":
            ok = not refused
        else:
            assert isinstance(allowed, set)
            want_refused = scope != "admin" and scope not in allowed
            ok = refused == want_refused and (
                want_refused or response.status_code not in (401, 403)
            )
        if not ok:
            wrong.append(f"{row}: {response.status_code} {response.content[:120]!r}")
    assert not wrong, f"scope {scope}:\n" + "\n".join(wrong)
