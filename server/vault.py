"""Keys for one installation: organisation keys under the master key, data keys under those."""

from __future__ import annotations

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

    def seal_config(self, org_id: str, wrapped_org_key: bytes, config: dict[str, Any]) -> bytes:
        """Destination settings hold secrets (signing keys, passwords): sealed at rest."""
        org_key = self._org_key(org_id, wrapped_org_key)
        return crypto.seal(org_key, json.dumps(config).encode(), _config_aad(org_id))

    def open_config(self, org_id: str, wrapped_org_key: bytes, sealed: bytes) -> dict[str, Any]:
        org_key = self._org_key(org_id, wrapped_org_key)
        config: dict[str, Any] = json.loads(
            crypto.open_sealed(org_key, sealed, _config_aad(org_id))
        )
        return config


def _config_aad(org_id: str) -> bytes:
    return f"loadbay/destination-config/{org_id}".encode()
