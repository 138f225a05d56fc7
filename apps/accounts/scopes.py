"""Which OAuth2 scope each REST endpoint needs, declared in one table.

A platform JWT carries its user's full permissions; an OAuth2 access token only what its
scopes grant. Before this table only the views with a ``HasPermission`` check narrowed by
scope, so a ``sessions`` token could read the profile and the owner's unpublished scenes.
Now the bearer authentication refuses an OAuth2 token on any endpoint whose declared scopes it
lacks (403 ``insufficient_scope``), and an endpoint with no declaration refuses every OAuth2
token: a new endpoint is closed until someone declares it here (the matrix test in
``apps/core/tests/test_rbac_matrix.py`` fails until then).

Values: the scopes of which the token needs *one* (``admin`` always suffices), ``ANY`` for
endpoints any token may call, ``NO_BEARER`` for endpoints that take no bearer token at all.
"""

from typing import Final

ANY: Final[frozenset[str]] = frozenset({"*"})
NO_BEARER: Final[frozenset[str]] = frozenset()

SESSIONS = frozenset({"sessions"})
STREAMING = frozenset({"streaming"})
SCENES = frozenset({"scenes"})
OPERATIONS = frozenset({"operations"})

ENDPOINT_SCOPES: dict[str, frozenset[str]] = {
    # accounts (AthenaCore)
    "athena-authenticate": NO_BEARER,
    "athena-wisdom-refresh": NO_BEARER,
    "athena-session-token": NO_BEARER,  # a cookie session only
    "athena-profile": frozenset({"profile"}),
    "athena-logout": ANY,  # revokes the caller's own platform tokens; harmless for any token
    "athena-users": OPERATIONS,
    "athena-user-roles": frozenset({"admin"}),
    # sessions (HermesAPI)
    "hermes-session-create": SESSIONS,
    "hermes-sessions": SESSIONS,
    "hermes-session-status": SESSIONS,
    "hermes-session-transmit": SESSIONS,
    "hermes-join-by-invite": SESSIONS,
    "hermes-session-join": SESSIONS,
    "hermes-session-leave": SESSIONS,
    "hermes-session-end": SESSIONS,
    # streaming (MorpheusVR)
    "morpheus-render-start": STREAMING,
    "morpheus-ice-servers": STREAMING,  # the caller's own TURN credentials
    "morpheus-quality-adjust": STREAMING,
    "morpheus-performance-metrics": STREAMING,
    "morpheus-render-stop": STREAMING,
    "morpheus-voice-mute": OPERATIONS,  # an operator silences a participant
    "morpheus-worker-scene-file": NO_BEARER,  # streaming-worker tokens only
    # monitoring (DelphiOracle)
    "delphi-predictions": OPERATIONS,
    "delphi-overview": OPERATIONS,
    # the web client's pre-flight check: before a session or a stream
    "web-netcheck": frozenset({"sessions", "streaming"}),
    # scenes (DaedalusBuilder): reading them too, since private and unpublished ones show
    "daedalus-scenes": SCENES,
    "daedalus-scene": SCENES,
    "daedalus-versions": SCENES,
    "daedalus-version": SCENES,
    "daedalus-version-report": SCENES,
    "daedalus-version-thumbnail": SCENES,
    "daedalus-publish": SCENES,
    "daedalus-unpublish": SCENES,
}


def endpoint_scope_allows(url_name: str | None, token_scopes: frozenset[str]) -> bool:
    """Whether an OAuth2 token with ``token_scopes`` may call the endpoint ``url_name``."""
    required = ENDPOINT_SCOPES.get(url_name or "")
    if not required:  # undeclared (or an endpoint that takes no bearer token): closed
        return False
    if required is ANY or "admin" in token_scopes:
        return True
    return bool(required & token_scopes)
