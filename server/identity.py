"""End-user identity: who, in the client's app, made an import.

The client's backend signs `{"user", "metadata", "exp"}` as an HS256 JWT with one of its
organisation's secret keys (the key's id as the `kid` header); the page passes the token to
embed.js (`user`), the importer sends it when it creates the import, and the server checks
it here. A template with `"x-loadbay": {"identity": "required"}` refuses an import without
a valid, unexpired token. What is recorded with the import is the user and metadata the
token vouches for (never cell values); the management API shows it in the import's detail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import select

from server import db
from server.errors import Invalid, Unauthorized
from server.runtime import Runtime

ALGORITHM = "HS256"
MAX_TOKEN = 8192  # characters
MAX_USER = 200  # characters of the user id
MAX_METADATA = 4096  # bytes of the metadata as JSON
LEEWAY = 30  # seconds of clock difference tolerated on `exp`


@dataclass(frozen=True)
class Identity:
    user: str
    metadata: dict[str, Any]
    key_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "metadata": self.metadata, "key_id": self.key_id}


def required(schema: dict[str, Any]) -> bool:
    """The template's setting: `x-loadbay.identity` is "required" or "optional" (default)."""
    ext = schema.get("x-loadbay")
    return isinstance(ext, dict) and ext.get("identity") == "required"


def verify(rt: Runtime, org: db.Organisation, template_id: str, token: Any) -> Identity | None:
    """The identity a token vouches for; None when none was sent and the template allows
    that. Unauthorized says what is wrong with a token (and what the client must do)."""
    with rt.sessions() as session:
        template = session.get(db.Template, template_id)
        needed = template is not None and template.org_id == org.id and required(template.schema)
        if token in (None, ""):
            if needed:
                raise Unauthorized(
                    "This importer needs a signed identity: the site's backend signs "
                    "{user, metadata, exp} with its secret key and passes it to "
                    "loadbay.open({user: ...})."
                )
            return None
        if not isinstance(token, str) or len(token) > MAX_TOKEN:
            raise Invalid(f"The identity must be a signed token (at most {MAX_TOKEN} characters).")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("The identity token is not a signed JWT.") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthorized(f"The identity token must be signed with {ALGORITHM}.")
        keys = session.scalars(
            select(db.SecretKey).where(
                db.SecretKey.org_id == org.id,
                db.SecretKey.revoked_at.is_(None),
                db.SecretKey.sealed_secret.is_not(None),
            )
        ).all()
        kid = header.get("kid")
        candidates = [k for k in keys if k.id == kid] if kid else list(keys)
        for key in candidates:
            assert key.sealed_secret is not None  # noqa: S101 - filtered in the query
            secret = rt.vault.open_key_secret(org.id, org.wrapped_key, key.id, key.sealed_secret)
            try:
                claims = jwt.decode(
                    token,
                    secret,
                    algorithms=[ALGORITHM],
                    options={"require": ["exp"]},
                    leeway=LEEWAY,
                )
            except jwt.ExpiredSignatureError:
                raise Unauthorized(
                    "The identity token has expired: have the site's backend sign a fresh "
                    "one each time the importer is opened."
                ) from None
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"The identity token is not valid: {exc}.") from None
            return _identity(claims, key.id)
    raise Unauthorized(
        "The identity token's signature does not verify with any of the organisation's "
        "live secret keys (keys made before identities were supported cannot sign them: "
        "create a new one)."
    )


def _identity(claims: dict[str, Any], key_id: str) -> Identity:
    user = claims.get("user")
    if not isinstance(user, str) or not 0 < len(user) <= MAX_USER:
        raise Invalid(f'The identity token needs "user": text of 1 to {MAX_USER} characters.')
    metadata = claims.get("metadata", {})
    if not isinstance(metadata, dict):
        raise Invalid('The identity token\'s "metadata" must be a JSON object.')
    if len(json.dumps(metadata)) > MAX_METADATA:
        raise Invalid(f'The identity token\'s "metadata" must be at most {MAX_METADATA} bytes.')
    return Identity(user, metadata, key_id)
