"""Values that must not repeat: `unique` fields and the primary key, across batches too.

Each row's value (or key) is numbered in Arrow; only the repeats are looked at in
Python. `EarlierBatches` is how the server tells what an import's earlier batches held.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from json.encoder import encode_basestring as _json_string  # what json.dumps writes
from typing import Any, Protocol, overload

import arro3.compute as acc
import arro3.core as ac

from pipeline.cell_errors import CellError, cut
from pipeline.scan import positions
from pipeline.schema import Template
from pipeline.types import Distinct


class EarlierBatches(Protocol):
    """Values an import's earlier batches held, for `unique` and `primaryKey` across batches."""

    def first_rows(self, target: str, values: Sequence[str], rows: list[int]) -> list[int | None]:
        """For each value (first met in this batch at `rows`), the row it had earlier, or None.

        `target` is "unique:<field>" or "primaryKey"; values are canonical JSON text (for a
        unique field, a `CanonicalValues`: the typed values too, texts made on first use).
        """
        ...


class CanonicalValues(Sequence[str]):
    """One field's distinct typed values as canonical JSON texts (`canonical_texts`), written
    only when asked for: a server that can key the typed values themselves (whole numbers,
    dates, times: `whole`) never makes a Python string per value."""

    def __init__(self, typed: ac.Array) -> None:
        self.typed = typed
        self._texts: list[str] | None = None

    @property
    def whole(self) -> bool:
        """Whether each value is one 64-bit integer in Arrow (a number, a date, a time)."""
        t, dtype = self.typed.type, ac.DataType
        return (
            dtype.is_signed_integer(t)
            or dtype.is_date32(t)
            or dtype.is_timestamp(t)
            or dtype.is_time64(t)
        )

    @property
    def texts(self) -> list[str]:
        if self._texts is None:
            self._texts = canonical_texts(self.typed.to_pylist())
        return self._texts

    def __len__(self) -> int:
        return len(self.typed)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self.texts[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self.texts)


def primary_key_errors(
    template: Template,
    texts: dict[str, ac.Array],
    typed: dict[str, ac.Array],
    row_of: Callable[[int], int],
    earlier: EarlierBatches | None,
) -> Iterator[CellError]:
    """Each row's key (its primary key fields' typed values together) must be unique."""
    names = template.primary_key
    keys: ac.Array | None = None
    count = 1
    for name in names:  # combine per-field keys into one integer key per row
        part = Distinct.of(typed[name])
        part_keys = acc.cast(part.keys, ac.DataType.int64())
        if keys is None:
            keys = part_keys
        else:
            width = ac.Scalar(len(part.values), ac.DataType.int64())
            keys = acc.add(acc.mul(keys, width), part_keys)
        combined = Distinct.of(keys)  # renumber, so the product never overflows
        keys, count = acc.cast(combined.keys, ac.DataType.int64()), len(combined.values)
    assert keys is not None  # noqa: S101 - a primary key names at least one field

    def canonical(indices: ac.Array) -> list[str]:
        columns = [acc.take(typed[n], indices).to_pylist() for n in names]
        return [canonical_text(list(values)) for values in zip(*columns, strict=True)]

    repeats = find_repeats(keys, count, row_of, earlier, "primaryKey", canonical)
    if not repeats:
        return
    indices = ac.Array([i for i, _ in repeats], ac.DataType.int64())
    cells = [acc.take(texts[n], indices).to_pylist() for n in names]
    labels = ", ".join(template.field(n).label for n in names)
    for (index, row), values in zip(repeats, zip(*cells, strict=True), strict=True):
        shown = ", ".join(f'"{cut(v)}"' for v in values)
        yield CellError(  # a row error, as in Frictionless: no field, the key's fields apart
            row=row_of(index),
            field=None,
            code="primary-key",
            key="primaryKey",
            params={"labels": labels, "values": shown, "first_row": row, "fields": list(names)},
        )


def find_repeats(
    keys: ac.Array,
    count: int,
    row_of: Callable[[int], int],
    earlier: EarlierBatches | None,
    target: str,
    canonical: Callable[[ac.Array], Sequence[str]],
) -> list[tuple[int, int]]:
    """(index, row of the first occurrence) of every cell whose key was met before.

    `keys` numbers each row's value (null: no value); `count` is how many distinct.
    """
    distinct = count == len(keys) - keys.null_count  # as many distinct values as values
    if earlier is None and distinct:
        return []
    repeats: list[tuple[int, int]] = []
    if distinct:  # the usual case: each value's first row is its only row
        firsts = acc.filter(positions(len(keys)), acc.is_not_null(keys))
        at: list[int] = list(firsts.to_pylist())
    else:
        first: dict[int, int] = {}
        for index, key in enumerate(keys.to_pylist()):
            if key is not None:
                seen = first.setdefault(key, index)
                if seen != index:
                    repeats.append((index, seen))
        if earlier is None:
            return [(index, row_of(seen)) for index, seen in repeats]
        at = list(first.values())
        firsts = ac.Array(at, ac.DataType.int64())
    assert earlier is not None  # noqa: S101 - returned above otherwise
    found = earlier.first_rows(target, canonical(firsts), list(map(row_of, at)))
    if not repeats and found.count(None) == len(found):
        return []  # the usual case: no value met before, none repeated here
    before = {i: row for i, row in zip(at, found, strict=True) if row is not None}
    out = [(index, before.get(seen, row_of(seen))) for index, seen in repeats]
    out += list(before.items())
    return sorted(out)


def comparable(value: Any) -> Any:
    """Timestamps as naive UTC, as Arrow's dictionaries give them back."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def canonical_text(values: list[Any]) -> str:
    return json.dumps([comparable(v) for v in values], default=str, ensure_ascii=False)


def canonical_texts(values: Iterable[Any]) -> list[str]:
    """`canonical_text([v])` for each value; text and whole numbers (most keys) without a
    `json.dumps` call each: the same characters, written directly."""
    return [
        f"[{_json_string(v)}]"
        if type(v) is str
        else f"[{v}]"
        if type(v) is int
        else canonical_text([v])
        for v in values
    ]
