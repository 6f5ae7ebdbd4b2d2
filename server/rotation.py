"""Rotating the master key: every organisation key re-wrapped under a new master key.

Only the organisations' wrapped keys change (one row each); data keys, sealed destination
settings, mapping digests and blobs stay exactly as they are, since the organisation keys
themselves do not change. Safe to interrupt: the new key file is on disk (fsynced) before
anything is wrapped under it, and every organisation is re-wrapped in one transaction,
so the database is either wholly under the old key or wholly under the new one. Running
it again after an interruption or alongside a straggler finishes the job: an organisation
already under the new key is left as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from server import crypto, db
from server.errors import Conflict, Invalid
from server.runtime import Runtime
from server.vault import Vault

log = logging.getLogger("loadbay.rotation")


@dataclass(frozen=True)
class Rotation:
    rewrapped: int  # organisation keys moved from the old master key to the new one
    already: int  # organisation keys the new master key opened already (an earlier run)
    new_key_file: Path


def rotate_master(rt: Runtime, new_key_file: Path) -> Rotation:
    """Re-wrap every organisation key under the key in `new_key_file` (created, 0600, if
    it does not exist). Conflict, and nothing changed, when an organisation key opens
    under neither key."""
    try:
        new_master = crypto.load_or_create_master_key(new_key_file)
    except crypto.MasterKeyError as exc:
        raise Invalid(str(exc)) from exc
    if rt.vault.has_master(new_master):
        raise Invalid(f"{new_key_file} holds the current master key: give a new key file.")
    new_vault = Vault(new_master, rt.vault.kms)
    rewrapped = already = 0
    with rt.sessions.begin() as session:
        for org in session.scalars(
            select(db.Organisation).order_by(db.Organisation.id).with_for_update()
        ):
            if rt.vault.opens(org.id, org.wrapped_key):
                org.wrapped_key = rt.vault.rewrap_org_key(org.id, org.wrapped_key, new_master)
                rewrapped += 1
            elif new_vault.opens(org.id, org.wrapped_key):
                already += 1
            else:
                raise Conflict(
                    f"The key of organisation {org.id} opens under neither the current master "
                    f"key nor {new_key_file}; nothing was changed. Is LOADBAY_MASTER_KEY_FILE "
                    "the key this database was written with?"
                )
    log.info("master key rotated: %d organisation keys re-wrapped, %d already", rewrapped, already)
    return Rotation(rewrapped, already, new_key_file)
