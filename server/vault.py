"""Keys for one installation: organisation keys under the master key, data keys under those
(or, for an organisation with a customer-managed key, data keys from AWS KMS: server.kms)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from server import crypto, kms


class Vault:
    def __init__(self, master_key: bytes, key_service: kms.KeyService | None = None) -> None:
        self._master = master_key
        self.kms = key_service or kms.KeyService()

    def new_org_key(self, org_id: str) -> bytes:
        """A fresh organisation key, returned wrapped for storage."""
        return crypto.seal(self._master, crypto.new_key(), crypto.org_aad(org_id))

    def _org_key(self, org_id: str, wrapped_org_key: bytes) -> bytes:
        return crypto.open_sealed(self._master, wrapped_org_key, crypto.org_aad(org_id))

    def rewrap_org_key(self, org_id: str, wrapped_org_key: bytes, new_master: bytes) -> bytes:
        """The same organisation key, wrapped under `new_master` instead (master rotation:
        everything under the organisation key stays as it is)."""
        org_key = self._org_key(org_id, wrapped_org_key)
        return crypto.seal(new_master, org_key, crypto.org_aad(org_id))

    def has_master(self, key: bytes) -> bool:
        return hmac.compare_digest(self._master, key)

    def opens(self, org_id: str, wrapped_org_key: bytes) -> bool:
        """Whether this vault's master key unwraps the organisation key."""
        try:
            self._org_key(org_id, wrapped_org_key)
        except crypto.DecryptionError:
            return False
        return True

    def new_data_key(
        self,
        org_id: str,
        wrapped_org_key: bytes,
        import_id: str,
        *,
        kms_key_arn: str | None = None,
    ) -> bytes:
        """A fresh per-import data key, returned wrapped: by the organisation's KMS key when
        it has one (kms.KeyRefused when KMS will not), else by the organisation key."""
        if kms_key_arn:
            return self.kms.generate(kms_key_arn, kms.context(org_id, import_id))[1]
        org_key = self._org_key(org_id, wrapped_org_key)
        return crypto.seal(org_key, crypto.new_key(), crypto.import_aad(org_id, import_id))

    def data_key(
        self, org_id: str, wrapped_org_key: bytes, import_id: str, wrapped: bytes
    ) -> bytes:
        """An import's data key; one KMS wrapped is unwrapped by KMS (kms.KeyRefused when it
        refuses: a disabled key makes the organisation's rows unreadable)."""
        if kms.is_wrapped(wrapped):
            return self.kms.decrypt(wrapped, kms.context(org_id, import_id))
        org_key = self._org_key(org_id, wrapped_org_key)
        return crypto.open_sealed(org_key, wrapped, crypto.import_aad(org_id, import_id))

    def seal_config(
        self, org_id: str, wrapped_org_key: bytes, destination_id: str, config: dict[str, Any]
    ) -> bytes:
        """Destination settings hold secrets (signing keys, passwords): sealed at rest, bound
        to their destination (one destination's sealed settings cannot be moved to another's
        row to send its rows elsewhere)."""
        org_key = self._org_key(org_id, wrapped_org_key)
        aad = _config_aad(org_id, destination_id)
        return crypto.seal(org_key, json.dumps(config).encode(), aad)

    def open_config(
        self, org_id: str, wrapped_org_key: bytes, destination_id: str, sealed: bytes
    ) -> dict[str, Any]:
        org_key = self._org_key(org_id, wrapped_org_key)
        aad = _config_aad(org_id, destination_id)
        config: dict[str, Any] = json.loads(crypto.open_sealed(org_key, sealed, aad))
        return config

    def seal_key_secret(
        self, org_id: str, wrapped_org_key: bytes, key_id: str, secret: str
    ) -> bytes:
        """A secret key, sealed to its row: it verifies the identities the client's backend
        signs (HS256) with it, and is never shown again."""
        org_key = self._org_key(org_id, wrapped_org_key)
        return crypto.seal(org_key, secret.encode(), _key_aad(org_id, key_id))

    def open_key_secret(
        self, org_id: str, wrapped_org_key: bytes, key_id: str, sealed: bytes
    ) -> str:
        org_key = self._org_key(org_id, wrapped_org_key)
        return crypto.open_sealed(org_key, sealed, _key_aad(org_id, key_id)).decode()

    def mapping_key(self, org_id: str, wrapped_org_key: bytes, template_id: str) -> bytes:
        """The key a template's mapping memory digests header labels and client addresses
        under (HMAC-SHA256). Derived from the organisation key, never stored: without it a
        stored digest cannot be tested against a dictionary of likely labels."""
        org_key = self._org_key(org_id, wrapped_org_key)
        info = f"loadbay/mapping-memory/{org_id}/{template_id}".encode()
        return hmac.new(org_key, info, hashlib.sha256).digest()

    def seal_user_secret(self, user_id: str, secret: bytes) -> bytes:
        """A person's TOTP secret, sealed under the master key and bound to them (a
        user belongs to no one organisation)."""
        return crypto.seal(self._master, secret, _user_aad(user_id))

    def open_user_secret(self, user_id: str, sealed: bytes) -> bytes:
        return crypto.open_sealed(self._master, sealed, _user_aad(user_id))


def _user_aad(user_id: str) -> bytes:
    return f"loadbay/totp-secret/{user_id}".encode()


def _config_aad(org_id: str, destination_id: str) -> bytes:
    return f"loadbay/destination-config/{org_id}/{destination_id}".encode()


def _key_aad(org_id: str, key_id: str) -> bytes:
    return f"loadbay/secret-key/{org_id}/{key_id}".encode()
