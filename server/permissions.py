"""Who may do what: the roles, what each role is granted, and which permission every
dashboard route and every management API endpoint needs. The one place these live: the
edge asks `allowed()`, and tests/server/test_users_matrix.py fails for a route missing here.

A secret key acts as the organisation itself (every API permission, no dashboard page);
a dashboard session acts as its user, with the role they hold in its organisation.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    VIEWER = "viewer"


class Permission(enum.StrEnum):
    SELF = "self"  # one's own sessions and two-factor: every signed-in member
    MEMBERS_VIEW = "members.view"
    MEMBERS_MANAGE = "members.manage"
    SECURITY_MANAGE = "security.manage"
    AUDIT_VIEW = "audit.view"
    CONFIG_VIEW = "config.view"  # templates, destinations, organisation settings
    CONFIG_MANAGE = "config.manage"
    SETTINGS_MANAGE = "settings.manage"
    DATA_VIEW = "data.view"  # imports: list, detail, delivery attempts (counts, no rows)
    DATA_IMPORT = "data.import"  # a headless import; retrying a failed delivery
    DATA_DOWNLOAD = "data.download"  # an import's rows
    DATA_DELETE = "data.delete"  # shredding an import now
    KEYS_MANAGE = "keys.manage"  # secret and publishable keys: a secret key is the organisation
    DATA_REVEAL = "data.reveal"  # personal-data fields in clear: a reveal, a download


P = Permission
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({P.SELF, P.MEMBERS_VIEW, P.CONFIG_VIEW, P.DATA_VIEW}),
    Role.DEVELOPER: frozenset(
        {
            P.SELF,
            P.MEMBERS_VIEW,
            P.CONFIG_VIEW,
            P.CONFIG_MANAGE,
            P.DATA_VIEW,
            P.DATA_IMPORT,
            P.DATA_DOWNLOAD,
        }
    ),
    Role.ADMIN: frozenset(P),
    Role.OWNER: frozenset(P),
}
# What only an owner may do to memberships: make or unmake an owner (members.manage
# covers the other roles; server.users enforces this rule, naming it from here).
OWNER_ONLY_ROLES = frozenset({Role.OWNER})
# The secret key: every permission the management API asks for.
KEY_GRANTS = frozenset(
    {
        P.CONFIG_VIEW,
        P.CONFIG_MANAGE,
        P.SETTINGS_MANAGE,
        P.DATA_VIEW,
        P.DATA_IMPORT,
        P.DATA_DOWNLOAD,
        P.DATA_DELETE,
        P.DATA_REVEAL,
        P.KEYS_MANAGE,  # the API rotates the publishable key only; secret keys are the CLI's
    }
)

# Pages reachable without a session (signing in, accepting an invitation, assets).
PUBLIC = "public"
# Pages for a half-finished sign-in: the TOTP step, or enrolment when the organisation
# requires two-factor of a member who has none.
PENDING = "pending"

DASHBOARD: dict[tuple[str, str], str] = {
    ("GET", "/dashboard/"): P.SELF,
    ("GET", "/dashboard/sign-in"): PUBLIC,
    ("POST", "/dashboard/sign-in"): PUBLIC,
    ("GET", "/dashboard/sign-in/code"): PENDING,
    ("POST", "/dashboard/sign-in/code"): PENDING,
    ("POST", "/dashboard/sign-out"): PENDING,
    ("GET", "/dashboard/invitations/{token}"): PUBLIC,
    ("POST", "/dashboard/invitations/{token}"): PUBLIC,
    ("GET", "/dashboard/static/{name}"): PUBLIC,
    ("GET", "/dashboard/two-factor"): PENDING,
    ("POST", "/dashboard/two-factor"): PENDING,
    ("POST", "/dashboard/two-factor/disable"): P.SELF,
    ("GET", "/dashboard/sessions"): P.SELF,
    ("POST", "/dashboard/sessions/{id}/end"): P.SELF,
    ("POST", "/dashboard/sessions/end-all"): P.SELF,
    ("GET", "/dashboard/members"): P.MEMBERS_VIEW,
    ("POST", "/dashboard/members/invite"): P.MEMBERS_MANAGE,
    ("POST", "/dashboard/members/{id}/role"): P.MEMBERS_MANAGE,
    ("POST", "/dashboard/members/{id}/remove"): P.MEMBERS_MANAGE,
    ("GET", "/dashboard/security"): P.SECURITY_MANAGE,
    ("POST", "/dashboard/security"): P.SECURITY_MANAGE,
    ("GET", "/dashboard/audit"): P.AUDIT_VIEW,
    ("GET", "/dashboard/audit/export"): P.AUDIT_VIEW,
    ("GET", "/dashboard/templates"): P.CONFIG_VIEW,
    ("POST", "/dashboard/templates"): P.CONFIG_MANAGE,
    ("POST", "/dashboard/templates/import"): P.CONFIG_MANAGE,
    ("GET", "/dashboard/templates/{id}"): P.CONFIG_VIEW,
    ("POST", "/dashboard/templates/{id}"): P.CONFIG_MANAGE,
    ("POST", "/dashboard/templates/{id}/save"): P.CONFIG_MANAGE,
    ("POST", "/dashboard/templates/{id}/discard"): P.CONFIG_MANAGE,
    ("GET", "/dashboard/templates/{id}/field"): P.CONFIG_VIEW,
    ("POST", "/dashboard/templates/{id}/field"): P.CONFIG_MANAGE,
    ("POST", "/dashboard/templates/{id}/field/remove"): P.CONFIG_MANAGE,
    ("POST", "/dashboard/templates/{id}/json"): P.CONFIG_MANAGE,
    ("GET", "/dashboard/templates/{id}/schema.json"): P.CONFIG_VIEW,
    ("POST", "/dashboard/templates/{id}/delete"): P.CONFIG_MANAGE,
    ("POST", "/dashboard/templates/{id}/restore"): P.CONFIG_MANAGE,
    ("GET", "/dashboard/destinations"): P.CONFIG_VIEW,
    ("GET", "/dashboard/destinations/new"): P.CONFIG_MANAGE,
    ("POST", "/dashboard/destinations"): P.CONFIG_MANAGE,
    ("GET", "/dashboard/destinations/{id}"): P.CONFIG_VIEW,
    ("POST", "/dashboard/destinations/{id}"): P.CONFIG_MANAGE,
    ("POST", "/dashboard/destinations/{id}/test"): P.CONFIG_MANAGE,
    ("POST", "/dashboard/destinations/{id}/delete"): P.CONFIG_MANAGE,
    ("POST", "/dashboard/destinations/{id}/restore"): P.CONFIG_MANAGE,
    ("GET", "/dashboard/keys"): P.KEYS_MANAGE,
    ("POST", "/dashboard/keys"): P.KEYS_MANAGE,
    ("POST", "/dashboard/keys/{id}/rotate"): P.KEYS_MANAGE,
    ("POST", "/dashboard/keys/{id}/revoke"): P.KEYS_MANAGE,
    ("POST", "/dashboard/publishable-key/rotate"): P.KEYS_MANAGE,
    ("POST", "/dashboard/publishable-key/previous/revoke"): P.KEYS_MANAGE,
    ("GET", "/dashboard/settings"): P.CONFIG_VIEW,
    ("POST", "/dashboard/settings"): P.SETTINGS_MANAGE,
    ("GET", "/dashboard/imports"): P.DATA_VIEW,
    ("GET", "/dashboard/imports/{id}"): P.DATA_VIEW,
    ("POST", "/dashboard/imports/{id}/reveal"): P.DATA_REVEAL,
    ("GET", "/dashboard/imports/{id}/download"): P.DATA_DOWNLOAD,
    ("POST", "/dashboard/imports/{id}/delete"): P.DATA_DELETE,
    ("POST", "/dashboard/deliveries/{id}/retry"): P.DATA_IMPORT,
}

_T, _D = "/api/v1/templates", "/api/v1/destinations"
API: dict[tuple[str, str], str] = {
    ("GET", _T): P.CONFIG_VIEW,
    ("POST", _T): P.CONFIG_MANAGE,
    ("GET", _T + "/{id}"): P.CONFIG_VIEW,
    ("PUT", _T + "/{id}"): P.CONFIG_MANAGE,
    ("DELETE", _T + "/{id}"): P.CONFIG_MANAGE,
    ("POST", _T + "/{id}/restore"): P.CONFIG_MANAGE,
    ("GET", _D): P.CONFIG_VIEW,
    ("POST", _D): P.CONFIG_MANAGE,
    ("GET", _D + "/{id}"): P.CONFIG_VIEW,
    ("PATCH", _D + "/{id}"): P.CONFIG_MANAGE,
    ("DELETE", _D + "/{id}"): P.CONFIG_MANAGE,
    ("POST", _D + "/{id}/restore"): P.CONFIG_MANAGE,
    ("POST", _D + "/{id}/test"): P.CONFIG_MANAGE,
    ("GET", "/api/v1/destination-kinds"): P.CONFIG_VIEW,
    ("GET", "/api/v1/organisation"): P.CONFIG_VIEW,
    ("PATCH", "/api/v1/organisation"): P.SETTINGS_MANAGE,
    ("POST", "/api/v1/organisation/publishable-key/rotate"): P.KEYS_MANAGE,
    ("DELETE", "/api/v1/organisation/publishable-key/previous"): P.KEYS_MANAGE,
    ("GET", "/api/v1/imports"): P.DATA_VIEW,
    ("GET", "/api/v1/imports/{id}"): P.DATA_VIEW,
    ("GET", "/api/v1/imports/{id}/rows"): P.DATA_DOWNLOAD,
    ("GET", "/api/v1/imports/{id}/preview"): P.DATA_DOWNLOAD,
    ("POST", "/api/v1/imports/{id}/reveal"): P.DATA_REVEAL,
    ("DELETE", "/api/v1/imports/{id}"): P.DATA_DELETE,
    ("GET", "/api/v1/imports/{id}/deliveries"): P.DATA_VIEW,
    ("POST", "/api/v1/deliveries/{id}/retry"): P.DATA_IMPORT,
    ("POST", "/api/v1/files"): P.DATA_IMPORT,
    ("GET", "/api/v1/files/{id}"): P.DATA_VIEW,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
}

# The importer's own routes (server/importer/routes.py): the end user's browser calls
# them with a publishable key or an upload token; no role or dashboard session applies.
IMPORTER = "importer"
IMPORTER_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/imports"): IMPORTER,
    ("GET", "/api/v1/imports/{import_id}"): IMPORTER,
    ("PUT", "/api/v1/imports/{import_id}/batches/{seq}"): IMPORTER,
    ("GET", "/api/v1/imports/{import_id}/batches"): IMPORTER,
    ("POST", "/api/v1/imports/{import_id}/submit"): IMPORTER,
    ("GET", "/api/v1/imports/{import_id}/handoff"): IMPORTER,
    ("POST", "/api/v1/imports/{import_id}/handoff/ack"): IMPORTER,
    ("POST", "/api/v1/templates/{template_id}/mappings"): IMPORTER,
    ("POST", "/api/v1/templates/{template_id}/mappings/recall"): IMPORTER,
}


def granted(role: str, permission: str) -> bool:
    try:
        return Permission(permission) in GRANTS[Role(role)]
    except ValueError:
        return False


def needed(method: str, path: str) -> str | None:
    """The permission a route needs (`public`, `pending` or a Permission), None for a
    route the matrix does not know (the edge refuses it); `importer` for the importer's."""
    key = (method, path)
    return DASHBOARD.get(key) or API.get(key) or IMPORTER_ROUTES.get(key)


def sees_personal_data(role: str | None) -> bool:
    """Personal-data fields in clear in a download: a secret key (None: the client's own
    backend) or a role holding data.reveal; any other member gets them masked."""
    return role is None or granted(role, Permission.DATA_REVEAL)
