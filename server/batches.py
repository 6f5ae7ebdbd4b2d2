"""Sealed batch storage: blob keys, associated data, integrity digests, load and iterate.

A stored batch is the typed rows as a zstd Arrow IPC stream, sealed with the import's data
key under associated data that names its organisation, import and batch. Each upload
attempt writes its own blob key, and a blob counts only once its row has committed: two
concurrent uploads of one batch number cannot leave one's rows under the other's record.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from server import crypto, db
from server.errors import NotFound
from server.runtime import Runtime


def blob_prefix(org_id: str, import_id: str) -> str:
    return f"{org_id}/{import_id}/"


def new_blob_key(org_id: str, import_id: str, seq: int) -> str:
    """A key of its own for each upload attempt, so a losing attempt overwrites nothing."""
    return f"{blob_prefix(org_id, import_id)}{seq}.{secrets.token_hex(8)}.arrow.sealed"


def content_digest(data_key: bytes, body: bytes) -> str:
    """What a batch's request body was, for spotting a re-send: an HMAC under a key derived
    from the import's data key, so the digest of a guessable batch reveals nothing."""
    key = hmac.new(data_key, b"loadbay/batch-digest", hashlib.sha256).digest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def store(rt: Runtime, org_id: str, import_id: str, seq: int, key: bytes, table: pa.Table) -> str:
    """Seal and write one typed batch under a fresh blob key; returns the key."""
    blob_key = new_blob_key(org_id, import_id, seq)
    sealed = crypto.seal(key, ipc_bytes(table), crypto.batch_aad(org_id, import_id, seq))
    rt.blobs.put(blob_key, sealed)
    return blob_key


def load_batch(rt: Runtime, session: Session, imp: db.Import, seq: int) -> pa.Table:
    """Decrypt one stored batch back to its typed rows."""
    batch = session.scalar(
        select(db.Batch).where(db.Batch.import_id == imp.id, db.Batch.seq == seq)
    )
    org = session.get(db.Organisation, imp.org_id)
    if batch is None or org is None or imp.wrapped_data_key is None:
        raise NotFound(f"Batch {seq} of import {imp.id} is no longer stored.")
    key = rt.vault.data_key(org.id, org.wrapped_key, imp.id, imp.wrapped_data_key)
    sealed = rt.blobs.get(batch.blob_key)
    plaintext = crypto.open_sealed(key, sealed, crypto.batch_aad(org.id, imp.id, seq))
    return pa.ipc.open_stream(plaintext).read_all()
