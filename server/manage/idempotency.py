"""Idempotency-Key on the management API's POSTs, by Stripe's rules: a key is kept 24 h;
a retry with the same key and body gets the first answer again; the same key with another
body is refused (422); a retry while the first is still running gets 409.

Keys and request bodies are stored as SHA-256 digests; the answer is stored as it was
sent (answers never hold a secret: destination settings are redacted)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from starlette.responses import JSONResponse, Response

from server import db
from server.errors import Conflict, Invalid
from server.runtime import Runtime

KEEP = dt.timedelta(hours=24)
MAX_KEY = 255


class KeyReused(Invalid):
    code = "idempotency-key-reused"


class InProgress(Conflict):
    code = "idempotency-key-in-use"


@dataclass(frozen=True)
class Claim:
    replay: Response | None  # the first answer, when this is a retry


def _digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def _canonical(body: bytes) -> bytes:
    """The same JSON however it is spaced or ordered (a client's library may re-serialise a
    retry); a body that is not JSON as it is."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def claim(rt: Runtime, org_id: str, key: str, path: str, body: bytes) -> Claim:
    if not 0 < len(key) <= MAX_KEY:
        raise Invalid(f"An Idempotency-Key holds 1 to {MAX_KEY} characters.")
    key_hash = _digest(key.encode())
    request_hash = _digest(path.encode() + b"\n" + _canonical(body))
    now = db.utcnow()
    with rt.sessions.begin() as session:
        session.execute(
            delete(db.IdempotencyKey).where(
                db.IdempotencyKey.org_id == org_id,
                db.IdempotencyKey.key_hash == key_hash,
                db.IdempotencyKey.created_at < now - KEEP,
            )
        )
        found = session.get(db.IdempotencyKey, (org_id, key_hash))
        if found is not None:
            if found.request_hash != request_hash:
                raise KeyReused("This Idempotency-Key was used for another request; use a new key.")
            if found.status is None:
                raise InProgress("A request with this Idempotency-Key is still running.")
            headers = {"idempotent-replayed": "true"}
            if found.body is None:
                return Claim(Response(status_code=found.status, headers=headers))
            media = "application/problem+json" if found.status >= 400 else "application/json"
            return Claim(
                JSONResponse(
                    found.body, status_code=found.status, headers=headers, media_type=media
                )
            )
    try:
        with rt.sessions.begin() as session:
            session.add(
                db.IdempotencyKey(
                    org_id=org_id, key_hash=key_hash, request_hash=request_hash, created_at=now
                )
            )
    except IntegrityError:  # another request with this key got there first
        raise InProgress("A request with this Idempotency-Key is still running.") from None
    return Claim(None)


def finish(rt: Runtime, org_id: str, key: str, response: Response) -> None:
    """Keep the answer for retries; a server error is not kept (a retry runs again)."""
    key_hash = _digest(key.encode())
    with rt.sessions.begin() as session:
        row = session.get(db.IdempotencyKey, (org_id, key_hash))
        if row is None:
            return
        if response.status_code >= 500:
            session.delete(row)
            return
        row.status = response.status_code
        row.body = json.loads(bytes(response.body)) if response.body else None


def release(rt: Runtime, org_id: str, key: str) -> None:
    with rt.sessions.begin() as session:
        row = session.get(db.IdempotencyKey, (org_id, _digest(key.encode())))
        if row is not None:
            session.delete(row)


def purge(rt: Runtime) -> int:
    """Forget keys older than KEEP; returns how many."""
    with rt.sessions.begin() as session:
        result = session.execute(
            delete(db.IdempotencyKey).where(db.IdempotencyKey.created_at < db.utcnow() - KEEP)
        )
        return int(getattr(result, "rowcount", 0) or 0)
