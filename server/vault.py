"""Keys for one installation: organisation keys under the master key, data keys under those."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from server import crypto


class Vault:
    def __init__(self, master_key: bytes) -> None:
        self._master = master_key

    def new_org_key(self, org_id: str) -> bytes:
        """A fresh organisation key, returned wrapped for storage."""
        return crypto.seal(self._master, crypto.new_key(), crypto.org_aad(org_id))

    def _org_key(self, org_id: str, wrapped_org_key: bytes) -> bytes:
        return crypto.open_sealed(self._master, wrapped_org_key, crypto.org_aad(org_id))

    def new_data_key(self, org_id: str, wrapped_org_key: bytes, import_id: str) -> bytes:
        """A fresh per-import data key, returned wrapped by the organisation key."""
        org_key = self._org_key(org_id, wrapped_org_key)
        return crypto.seal(org_key, crypto.new_key(), crypto.import_aad(org_id, import_id))

    def data_key(
        self, org_id: str, wrapped_org_key: bytes, import_id: str, wrapped: bytes
    ) -> bytes:
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
