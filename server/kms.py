"""Customer-managed keys: an organisation's data keys generated and unwrapped by AWS KMS.

An organisation that sets `kms_key_arn` gets each new import's data key from KMS
`GenerateDataKey` (AES_256) and loadbay stores only the `CiphertextBlob`, so every read
of that import's rows is a KMS `Decrypt` the customer can audit in CloudTrail and stop by
disabling the key. The EncryptionContext names the organisation and the import: a wrapped
key moved to another import does not decrypt. Nothing is cached: disabling the key stops
reads at once (each batch read or delivery is one Decrypt call).

The client is boto3's, configured from the usual AWS environment (credentials, and
`AWS_ENDPOINT_URL_KMS` / `AWS_ENDPOINT_URL` for another endpoint); the region is the
key ARN's own.
"""

from __future__ import annotations

import os
import re
import struct
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from server.errors import Invalid, Unavailable

# A stored KMS-wrapped data key: magic, the key ARN's length and bytes, the CiphertextBlob.
MAGIC = b"LBKMS1"
RETRY_AFTER = 60
ARN = re.compile(
    r"arn:aws[a-z-]*:kms:(?P<region>[a-z]{2}(?:-[a-z0-9]+)+-\d):\d{12}:"
    r"(?:key/[A-Za-z0-9-]{1,128}|alias/[A-Za-z0-9/_-]{1,250})"
)
_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})


class KeyRefused(Unavailable):
    """KMS would not generate or unwrap a data key (the key disabled, pending deletion,
    access denied, KMS unreachable): the rows stay sealed until it does."""

    code = "kms-key-refused"


class UnusableKey(Invalid):
    """A key ARN an organisation may not set: malformed, or KMS refuses to use it."""

    code = "kms-key-unusable"


def checked_arn(value: str) -> str:
    """The ARN of a KMS key or alias, or UnusableKey saying what shape is expected."""
    arn = value.strip() if isinstance(value, str) else ""
    if not ARN.fullmatch(arn):
        raise UnusableKey(
            f"{str(value)[:200]!r} is not an AWS KMS key ARN: give "
            "arn:aws:kms:<region>:<account>:key/<key id> (or an alias/<name> ARN)."
        )
    return arn


def context(org_id: str, import_id: str) -> dict[str, str]:
    return {"loadbay:org": org_id, "loadbay:import": import_id}


def is_wrapped(blob: bytes) -> bool:
    return blob.startswith(MAGIC)


class KeyService:
    """GenerateDataKey and Decrypt through one boto3 client per region (and process)."""

    def __init__(self) -> None:
        self._clients: dict[tuple[int, str], Any] = {}
        self._lock = threading.Lock()

    def _client(self, arn: str) -> Any:
        match = ARN.fullmatch(arn)
        if match is None:
            raise KeyRefused(f"The organisation's KMS key {arn[:200]!r} is not a KMS key ARN.")
        # A worker's work horses are forked: each process makes its own client.
        slot = (os.getpid(), match["region"])
        with self._lock:
            if slot not in self._clients:
                self._clients[slot] = boto3.client(
                    "kms", region_name=match["region"], config=_CONFIG
                )
            return self._clients[slot]

    def generate(self, arn: str, ctx: dict[str, str]) -> tuple[bytes, bytes]:
        """A fresh 256-bit data key: (plaintext, wrapped for storage)."""
        answer = self._call(
            arn,
            "generate a data key",
            "generate_data_key",
            KeyId=arn,
            KeySpec="AES_256",
            EncryptionContext=ctx,
        )
        plaintext: bytes = answer["Plaintext"]
        encoded = arn.encode()
        wrapped = MAGIC + struct.pack(">H", len(encoded)) + encoded + answer["CiphertextBlob"]
        return plaintext, wrapped

    def decrypt(self, wrapped: bytes, ctx: dict[str, str]) -> bytes:
        """The data key a `generate` wrapped, from KMS under the same context."""
        if not is_wrapped(wrapped) or len(wrapped) < len(MAGIC) + 2:
            raise KeyRefused("A stored data key is not one KMS wrapped.")
        (length,) = struct.unpack(">H", wrapped[len(MAGIC) : len(MAGIC) + 2])
        start = len(MAGIC) + 2
        arn = wrapped[start : start + length].decode("ascii", errors="replace")
        blob = wrapped[start + length :]
        if not ARN.fullmatch(arn) or not blob:
            raise KeyRefused("A stored data key is damaged: it names no KMS key.")
        answer = self._call(
            arn,
            "unwrap a data key",
            "decrypt",
            KeyId=arn,
            CiphertextBlob=blob,
            EncryptionContext=ctx,
        )
        plaintext: bytes = answer["Plaintext"]
        return plaintext

    def check(self, arn: str, org_id: str) -> None:
        """That loadbay may both generate and unwrap data keys with `arn` (before it is
        saved); UnusableKey naming what KMS said otherwise."""
        try:
            plaintext, wrapped = self.generate(arn, context(org_id, "loadbay-key-check"))
            if self.decrypt(wrapped, context(org_id, "loadbay-key-check")) != plaintext:
                raise KeyRefused("KMS unwrapped the test data key to another key.")
        except KeyRefused as exc:
            raise UnusableKey(
                f"{exc.message} The key was not saved: enable it and allow loadbay "
                "kms:GenerateDataKey and kms:Decrypt on it, then set it again."
            ) from None

    def _call(self, arn: str, doing: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self._client(arn), operation)
        try:
            answer: dict[str, Any] = method(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Error"))
            said = str(error.get("Message", ""))[:300]
            raise KeyRefused(
                f"The organisation's KMS key refused to {doing} ({code}: {said}); "
                "its stored rows cannot be read until the key is usable again.",
                retry_after=RETRY_AFTER,
            ) from None
        except BotoCoreError as exc:
            raise KeyRefused(
                f"The organisation's KMS key could not be used to {doing}: "
                f"{type(exc).__name__} ({str(exc)[:300]}). Try again later.",
                retry_after=RETRY_AFTER,
            ) from None
        return answer
