"""Envelope encryption: AES-256-GCM, a fresh data key per import.

master key --wraps--> organisation key --wraps--> import data key --seals--> blobs.
Every ciphertext carries its owners in the associated data, so a blob or a wrapped
key cannot be replayed into another organisation, import or batch. Deleting an
import's wrapped data key (every copy, backups included) is crypto-shredding.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_MAGIC = b"LBY1"


class MasterKeyError(ValueError):
    """The master key file is unusable: wrong size, or readable by others."""


class DecryptionError(Exception):
    """Ciphertext is corrupt, truncated, or was moved to another owner."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return _MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if not sealed.startswith(_MAGIC) or len(sealed) < len(_MAGIC) + NONCE_BYTES + 16:
        raise DecryptionError("not a loadbay ciphertext")
    nonce = sealed[len(_MAGIC) : len(_MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, sealed[len(_MAGIC) + NONCE_BYTES :], aad)
    except InvalidTag as exc:
        raise DecryptionError("ciphertext does not authenticate (tampered or wrong owner)") from exc


def org_aad(org_id: str) -> bytes:
    return f"loadbay/org-key/{org_id}".encode()


def import_aad(org_id: str, import_id: str) -> bytes:
    return f"loadbay/data-key/{org_id}/{import_id}".encode()


def batch_aad(org_id: str, import_id: str, seq: int) -> bytes:
    return f"loadbay/batch/{org_id}/{import_id}/{seq}".encode()


def load_or_create_master_key(path: Path) -> bytes:
    """The operator's root key; created with 0600 permissions on first use. An existing key
    that others may read is refused: whoever can read it can decrypt everything."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise MasterKeyError(
                f"{path} may be read by other users (mode {mode:o}); run `chmod 600 {path}` "
                "and keep it outside the data directory's backups."
            )
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise MasterKeyError(f"{path} must hold exactly {KEY_BYTES} bytes")
        return key
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())  # on disk before anything is wrapped under it
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return key
