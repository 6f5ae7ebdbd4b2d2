"""Sealed batch storage: blob keys, associated data, integrity digests, load and iterate.

A stored batch is the typed rows as a zstd Arrow IPC stream, sealed with the import's data
key under associated data that names its organisation, import and batch: in the blob
store, or for a passthrough import (retention 0) in Redis only (`server.passthrough`),
where its data key lives too. Each upload
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

from server import crypto, db, passthrough
from server.errors import Gone, NotFound
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


def data_key(rt: Runtime, org: db.Organisation, imp: db.Import) -> bytes:
    """The key the import's batches are sealed under; Gone once its data is."""
    if passthrough.is_passthrough(imp):
        return passthrough.data_key(rt, org, imp)
    if imp.wrapped_data_key is None:
        raise Gone(
            f"The data of import {imp.id} was {imp.status}; nothing of it is kept. "
            "Start the import again.",
            details={"import_id": imp.id, "reason": imp.status},
        )
    return rt.vault.data_key(org.id, org.wrapped_key, imp.id, imp.wrapped_data_key)


def store(rt: Runtime, imp: db.Import, seq: int, key: bytes, table: pa.Table, digest: str) -> str:
    """Seal and write one typed batch under a fresh blob key (for a passthrough import, a
    Redis key, which holds its digest too); returns the key."""
    sealed = crypto.seal(key, ipc_bytes(table), crypto.batch_aad(imp.org_id, imp.id, seq))
    if passthrough.is_passthrough(imp):
        return passthrough.put(rt, imp, seq, sealed, digest)
    blob_key = new_blob_key(imp.org_id, imp.id, seq)
    rt.blobs.put(blob_key, sealed)
    return blob_key


def recorded_digest(imp: db.Import, digest: str) -> str:
    """What the batch row keeps of its content digest: nothing for a passthrough import."""
    return "" if passthrough.is_passthrough(imp) else digest


def digest_of(rt: Runtime, imp: db.Import, batch: db.Batch) -> str:
    if passthrough.is_passthrough(imp):
        return passthrough.digest_of(rt, batch.blob_key)
    return batch.digest


def discard(rt: Runtime, imp: db.Import, key: str) -> None:
    """Remove what a failed upload attempt wrote."""
    if passthrough.is_passthrough(imp):
        passthrough.discard(rt, key)
    else:
        rt.blobs.delete(key)


def load_batch(rt: Runtime, session: Session, imp: db.Import, seq: int) -> pa.Table:
    """Decrypt one stored (or passing) batch back to its typed rows."""
    batch = session.scalar(
        select(db.Batch).where(db.Batch.import_id == imp.id, db.Batch.seq == seq)
    )
    org = session.get(db.Organisation, imp.org_id)
    if batch is None or org is None:
        raise NotFound(f"Batch {seq} of import {imp.id} is no longer stored.")
    if passthrough.is_passthrough(imp):
        wrapped, sealed = passthrough.get(rt, imp, seq, batch.blob_key)
    elif imp.wrapped_data_key is None:
        raise NotFound(f"Batch {seq} of import {imp.id} is no longer stored.")
    else:
        wrapped, sealed = imp.wrapped_data_key, rt.blobs.get(batch.blob_key)
    key = rt.vault.data_key(org.id, org.wrapped_key, imp.id, wrapped)
    plaintext = crypto.open_sealed(key, sealed, crypto.batch_aad(org.id, imp.id, seq))
    return pa.ipc.open_stream(plaintext).read_all()
