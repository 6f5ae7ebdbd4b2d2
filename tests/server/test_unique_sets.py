"""The per-batch arrays of keyed digests behind cross-batch uniqueness (server/unique_sets.py);
the rule end to end: tests/server/test_imports.py, racing batches: test_hardening.py."""

from __future__ import annotations

import arro3.core as ac
import numpy as np

from pipeline.keys import CanonicalValues
from server.unique_sets import SeenInSets, _Set


def _digests(seen: SeenInSets, target: str, values: list[str] | CanonicalValues) -> bytes:
    high, low = seen._digests(target, values)
    return np.stack([high, low], axis=1).astype(">u8").tobytes()


def test_digests_are_keyed_per_import_and_target_and_hold_no_value() -> None:
    one, other = SeenInSets(None, "i1", b"k" * 32), SeenInSets(None, "i2", b"q" * 32)  # type: ignore[arg-type]
    numbers = CanonicalValues(ac.Array([4242, 7, 4242], ac.DataType.int64()))
    assert numbers.whole and list(numbers) == ["[4242]", "[7]", "[4242]"]
    mine = _digests(one, "unique:ref", numbers)
    assert mine[:16] == mine[32:] != mine[16:32]  # the same value, the same digest
    assert mine != _digests(other, "unique:ref", numbers)  # another import's key
    assert mine != _digests(one, "unique:other", numbers)  # another field
    assert (4242).to_bytes(8, "big") not in mine and (4242).to_bytes(8, "little") not in mine
    texts = _digests(one, "unique:ref", ["[4242]", "[7]", "[4242]"])
    assert texts[:16] == texts[32:] and texts != mine  # text values: keyed BLAKE2b
    assert b"4242" not in texts


def test_a_lookup_is_exact_when_two_digests_share_a_high_half() -> None:
    high = np.array([1, 5, 5, 9], dtype=np.uint64)
    low = np.array([3, 1, 2, 0], dtype=np.uint64)
    digests = np.stack([high, low], axis=1).astype(">u8").tobytes()
    rows = np.array([10, 20, 30, 40], dtype="<u4").tobytes()
    found = _Set.of(digests, rows)
    assert found.ties
    asked_high = np.array([5, 5, 5, 9, 1, 2], dtype=np.uint64)
    asked_low = np.array([2, 1, 7, 0, 4, 3], dtype=np.uint64)
    assert found.find(asked_high, asked_low).tolist() == [30, 20, -1, 40, -1, -1]
    apart = _Set.of(digests[16:], rows[4:])  # 5/1, 5/2, 9/0: still a tie at 5
    assert apart.ties and apart.find(asked_high, asked_low).tolist() == [30, 20, -1, 40, -1, -1]
    plain = _Set.of(digests[:16] + digests[48:], rows[:4] + rows[12:])
    assert not plain.ties
    assert plain.find(asked_high, asked_low).tolist() == [-1, -1, -1, 40, -1, -1]
