"""Roles (Django groups) and what they may do.

Permissions are matched by ``fnmatch`` patterns over ``"<app_label>.<codename>"`` so apps added
later (sessions ``hermes``, ``scenes``, ``streaming``, ``monitoring``) get their permissions
attached to the roles automatically after their migrations run.

Codename conventions: ``*_any_*`` and ``manage_*`` are powers over other users' objects
(operators and admins); model permissions (``add_``/``view_``...) are for one's own.
"""

from fnmatch import fnmatchcase

ADMIN = "admin"
OPERATOR = "operator"
CREATOR = "creator"
PARTICIPANT = "participant"
ROLES: tuple[str, ...] = (ADMIN, OPERATOR, CREATOR, PARTICIPANT)
STAFF_ROLES = frozenset({ADMIN, OPERATOR})  # may sign in to the admin panel

_PARTICIPANT = [
    "hermes.add_vrsession",
    "hermes.view_vrsession",
    "hermes.join_vrsession",
    "streaming.add_stream",
    "streaming.view_stream",
    "scenes.view_scene",
]
_CREATOR = [
    *_PARTICIPANT,
    "scenes.add_scene",
    "scenes.change_scene",
    "scenes.delete_scene",
    "scenes.publish_scene",
    "scenes.add_sceneversion",
    "scenes.view_sceneversion",
]
_OPERATOR = [
    *_CREATOR,
    "hermes.*",
    "streaming.*",
    "scenes.*",
    "monitoring.*",
    "accounts.view_user",
]

ROLE_PERMISSION_PATTERNS: dict[str, list[str]] = {
    ADMIN: ["*"],
    OPERATOR: _OPERATOR,
    CREATOR: _CREATOR,
    PARTICIPANT: _PARTICIPANT,
}

# OAuth2 scopes narrow what a token may do to the permissions in the scope's area; powers
# over other users' objects additionally need the ``operations`` scope.
SCOPE_PERMISSION_PATTERNS: dict[str, list[str]] = {
    "sessions": ["hermes.*"],
    "streaming": ["streaming.*"],
    "scenes": ["scenes.*"],
    "operations": ["hermes.*", "streaming.*", "scenes.*", "monitoring.*", "accounts.view_*"],
    "admin": ["*"],
}
_ELEVATED_PATTERNS = ["*.*_any_*", "*.manage_*", "monitoring.*", "accounts.*"]


def role_grants(role: str, permission: str) -> bool:
    return any(fnmatchcase(permission, p) for p in ROLE_PERMISSION_PATTERNS.get(role, []))


def scopes_allow(scopes: frozenset[str], permission: str) -> bool:
    """Whether an OAuth2 token with ``scopes`` may use ``permission`` (``app.codename``)."""
    if "admin" in scopes:
        return True
    elevated = any(fnmatchcase(permission, p) for p in _ELEVATED_PATTERNS)
    allowed_by = [
        s
        for s in scopes
        if any(fnmatchcase(permission, p) for p in SCOPE_PERMISSION_PATTERNS.get(s, []))
    ]
    if not allowed_by:
        return False
    return not elevated or "operations" in allowed_by
