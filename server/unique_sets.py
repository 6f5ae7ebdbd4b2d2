"""Cross-batch uniqueness for a stored import: one sorted array of keyed digests a batch.

`EarlierBatches` for the upload path (server/uploads.py). Each batch that passes adds one
`unique_sets` row: the keyed digests of the unique values (and primary keys) it was the
first to hold, sorted, and the row each appeared in. A later batch looks its values up in
every earlier batch's array with a binary search (numpy, in C), so a batch costs a few
array operations, not a database row and an HMAC call per value.

Digests are keyed under a key derived from the import's data key, so the metadata
database holds nothing that confirms a guessed value:
- values that are one 64-bit integer in Arrow (whole numbers, dates, times; a unique
  field's `CanonicalValues.whole`) are one AES-256 block each, (target tag, value),
  encrypted in one call: a keyed permutation, so two values never share a digest;
- other values (text, numbers, composite keys) are keyed BLAKE2b-128 of
  `[target, canonical text]`, as the per-value digests were.

`SeenInFile` keeps the same digests in memory for one file the server reads part by part
(the headless import), under a random key of its own, valid rows or not.

Exact under concurrent batches: `settle` runs in the transaction that records the batch,
after locking the import's row (PostgreSQL's row lock, SQLite's write lock); it looks the
batch's values up in the arrays committed since its first look, and a value met there is a
Conflict (send the batch again: it is then checked against both).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring as _json_string  # what json.dumps writes

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipeline.keys import CanonicalValues
from server import db
from server.errors import Conflict

_ROWS = np.dtype("<u4")


@dataclass(frozen=True)
class _Set:
    """One batch's digests, sorted by (high, low) 64-bit halves, and their first rows."""

    high: np.ndarray
    low: np.ndarray
    rows: np.ndarray
    ties: bool  # two digests share a high half (about 2^-64 a pair): look those up exactly

    @classmethod
    def of(cls, digests: bytes, rows: bytes) -> _Set:
        halves = np.frombuffer(digests, dtype=">u8").reshape(-1, 2).astype(np.uint64)
        high = np.ascontiguousarray(halves[:, 0])
        return cls(
            high,
            np.ascontiguousarray(halves[:, 1]),
            np.frombuffer(rows, dtype=_ROWS),
            bool(len(high) > 1 and np.any(high[1:] == high[:-1])),
        )

    @classmethod
    def sorted(cls, high: np.ndarray, low: np.ndarray, rows: np.ndarray) -> _Set:
        order = np.lexsort((low, high))
        high = np.ascontiguousarray(high[order])
        return cls(
            high,
            np.ascontiguousarray(low[order]),
            rows[order].astype(_ROWS),
            bool(len(high) > 1 and np.any(high[1:] == high[:-1])),
        )

    def find(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """For each digest, the row it first appeared in here, or -1."""
        out = np.full(len(high), -1, dtype=np.int64)
        if not len(self.high):
            return out
        if self.ties:
            mine = zip(self.high.tolist(), self.low.tolist(), self.rows.tolist(), strict=True)
            where = {(h, lo): r for h, lo, r in mine}
            pairs = zip(high.tolist(), low.tolist(), strict=True)
            return np.array([where.get(pair, -1) for pair in pairs], dtype=np.int64)
        at = np.minimum(np.searchsorted(self.high, high), len(self.high) - 1)
        hit = (self.high[at] == high) & (self.low[at] == low)
        out[hit] = self.rows[at[hit]]
        return out


class _Keyed:
    """Keyed digests of unique values and keys, under keys derived from `data_key`."""

    def __init__(self, data_key: bytes) -> None:
        base = hmac.new(data_key, b"loadbay/unique-sets", hashlib.sha256).digest()
        self._hash_key = hmac.new(base, b"blake2b", hashlib.sha256).digest()
        self._block_key = hmac.new(base, b"aes", hashlib.sha256).digest()

    def _digests(self, target: str, values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each value's digest as its (high, low) 64-bit halves."""
        if isinstance(values, CanonicalValues) and values.whole and values.typed.null_count == 0:
            raw = bytes(self._blocks(target, values))
        else:
            prefix = f"[{_json_string(target)}, "
            key, blake = self._hash_key, hashlib.blake2b
            raw = b"".join(
                blake(f"{prefix}{_json_string(v)}]".encode(), key=key, digest_size=16).digest()
                for v in values
            )
        halves = np.frombuffer(raw, dtype=">u8").reshape(-1, 2).astype(np.uint64)
        return np.ascontiguousarray(halves[:, 0]), np.ascontiguousarray(halves[:, 1])

    def _blocks(self, target: str, values: CanonicalValues) -> bytes:
        """One AES block per value: a tag naming the target, then the value's 64 bits."""
        numbers = np.asarray(values.typed.to_numpy())
        numbers = numbers.view(np.int64) if numbers.dtype.itemsize == 8 else numbers
        tag = hashlib.blake2b(f"whole:{target}".encode(), key=self._hash_key, digest_size=8)
        blocks = np.empty((len(numbers), 2), dtype=">u8")
        blocks[:, 0] = int.from_bytes(tag.digest(), "big")
        blocks[:, 1] = numbers.astype(np.int64).view(np.uint64)
        # ECB on purpose: each block is one value, and the same value must give the same
        # digest (a deterministic keyed permutation), never a ciphertext to be decrypted.
        cipher = Cipher(algorithms.AES(self._block_key), modes.ECB())  # noqa: S305
        encryptor = cipher.encryptor()
        return encryptor.update(blocks.tobytes()) + encryptor.finalize()


class SeenInSets(_Keyed):
    """`EarlierBatches` of one stored import, kept as `unique_sets` rows."""

    def __init__(self, session: Session, import_id: str, data_key: bytes) -> None:
        super().__init__(data_key)
        self._session = session
        self._import_id = import_id
        self._earlier: dict[int, _Set] | None = None
        self._high: list[np.ndarray] = []
        self._low: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []

    def first_rows(self, target: str, values: Sequence[str], rows: list[int]) -> list[int | None]:
        high, low = self._digests(target, values)
        order = np.argsort(high)  # searched in order, a binary search stays in cache
        ordered = np.full(len(high), -1, dtype=np.int64)
        sorted_high, sorted_low = high[order], low[order]
        for earlier in self._load().values():
            hits = earlier.find(sorted_high, sorted_low)
            ordered = np.where(ordered < 0, hits, ordered)
        found = np.empty_like(ordered)
        found[order] = ordered
        new = found < 0
        self._high.append(high[new])
        self._low.append(low[new])
        self._rows.append(np.asarray(rows, dtype=np.int64)[new])
        if new.all():  # the usual case: nothing this batch holds was met before
            return [None] * len(high)
        return [None if f < 0 else f for f in found.tolist()]

    def settle(self, session: Session, seq: int) -> None:
        """In the transaction that records batch `seq`: lock the import, check what this
        batch adds against the batches committed since it looked, and record it."""
        if not self._high:
            return  # the template has no unique rule the batch was checked against
        session.execute(
            update(db.Import)
            .where(db.Import.id == self._import_id)
            .values(status=db.Import.status)
            .execution_options(synchronize_session=False)
        )
        high, low = np.concatenate(self._high), np.concatenate(self._low)
        known = set(self._load())
        for since in self._sets(session, known).values():
            if (since.find(high, low) >= 0).any():
                raise Conflict(
                    f"Batch {seq} met another upload of this import at the same moment; "
                    "send it again."
                )
        added = _Set.sorted(high, low, np.concatenate(self._rows))
        digests = np.stack([added.high, added.low], axis=1).astype(">u8").tobytes()
        session.add(db.UniqueSet(import_id=self._import_id, seq=seq, digests=digests,
                                 first_rows=added.rows.tobytes()))  # fmt: skip

    def _load(self) -> dict[int, _Set]:
        if self._earlier is None:
            self._earlier = self._sets(self._session, set())
        return self._earlier

    def _sets(self, session: Session, skip: set[int]) -> dict[int, _Set]:
        query = select(db.UniqueSet.seq, db.UniqueSet.digests, db.UniqueSet.first_rows).where(
            db.UniqueSet.import_id == self._import_id
        )
        if skip:
            query = query.where(db.UniqueSet.seq.not_in(skip))
        return {
            int(seq): _Set.of(bytes(digests), bytes(rows))
            for seq, digests, rows in session.execute(query)
        }


class SeenInFile(_Keyed):
    """`EarlierBatches` over the parts of one file read in turn (the headless import): the
    unique values and keys of every row read so far, valid or not, as the whole file's
    validation sees them. In memory only, under a key of its own: about 20 bytes a value."""

    MERGE_AT = 8  # sorted arrays kept apart before they are merged into one

    def __init__(self) -> None:
        super().__init__(secrets.token_bytes(32))
        self._sets: list[_Set] = []

    def first_rows(self, target: str, values: Sequence[str], rows: list[int]) -> list[int | None]:
        high, low = self._digests(target, values)
        found = np.full(len(high), -1, dtype=np.int64)
        for earlier in self._sets:
            found = np.where(found < 0, earlier.find(high, low), found)
        new = found < 0
        self._sets.append(_Set.sorted(high[new], low[new], np.asarray(rows, np.int64)[new]))
        if len(self._sets) > self.MERGE_AT:
            every = self._sets
            self._sets = [
                _Set.sorted(
                    np.concatenate([e.high for e in every]),
                    np.concatenate([e.low for e in every]),
                    np.concatenate([e.rows for e in every]),
                )
            ]
        if new.all():
            return [None] * len(high)
        return [None if f < 0 else f for f in found.tolist()]
