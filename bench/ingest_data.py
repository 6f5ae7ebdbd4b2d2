"""Valid bench batches, as the browser sends them: mapped string columns plus `__row`.

The server refuses a batch holding an invalid cell, so the ingest bench uses the same 20
columns and rules as `bench.generate` without the injected bad values (and, in a second
run, `id` unique, so that cross-batch uniqueness is measured too).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import arro3.core as ac
import numpy as np

from bench.generate import COLUMNS, OPTIONAL_EMPTY_RATE, SEED, build_template
from pipeline.batches import BATCH_ROWS, encode_ipc
from pipeline.session import ROW_COLUMN

GZIP_LEVEL = 6  # what the browser's CompressionStream("gzip") uses (zlib's default)


def ingest_template(unique_id: bool) -> dict[str, Any]:
    """The `make bench` template; with `unique_id`, `id` is unique as well (each value is
    then looked up among the import's earlier batches and recorded for later ones)."""
    template = build_template()
    for field in template["fields"]:
        if unique_id and field["name"] == "id":
            field.setdefault("constraints", {})["unique"] = True
    return template


@dataclass(frozen=True)
class Batch:
    seq: int
    first_row: int
    rows: int
    ipc: bytes  # uncompressed Arrow IPC stream (the browser's)

    def gzipped(self) -> bytes:
        return gzip.compress(self.ipc, GZIP_LEVEL)


def valid_batches(rows: int, batch_rows: int = BATCH_ROWS, seed: int = SEED) -> Iterator[Batch]:
    """Every batch of `rows` valid rows, generated batch by batch (ids stay unique)."""
    rng = np.random.default_rng(seed)
    for seq, start in enumerate(range(0, rows, batch_rows)):
        n = min(batch_rows, rows - start)
        arrays = []
        for col in COLUMNS:
            values: list[str | None] = list(col.make(rng, n))
            if col.name == "id":
                values = [str(start + i + 1) for i in range(n)]
            elif col.optional_empty:
                for i in np.flatnonzero(rng.random(n) < OPTIONAL_EMPTY_RATE).tolist():
                    values[i] = ""
            arrays.append(ac.Array(values, ac.DataType.string()))
        first_row = start + 2  # the header is row 1
        numbers = ac.Array(list(range(first_row, first_row + n)), ac.DataType.int64())
        names = [c.name for c in COLUMNS]
        table = ac.Table.from_arrays([*arrays, numbers], names=[*names, ROW_COLUMN])
        yield Batch(seq, first_row, n, encode_ipc(table, None))


CONTACT_NAMES = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Hedy Lamarr")
CONTACT_COUNTRIES = ("DE", "FR", "GB", "IT", "NL", "US")


def contacts_batches(rows: int, batch_rows: int = BATCH_ROWS, seed: int = SEED) -> Iterator[Batch]:
    """Valid rows of the demo's contacts template (6 columns), as the browser sends them."""
    rng = np.random.default_rng(seed)
    for seq, start in enumerate(range(0, rows, batch_rows)):
        n = min(batch_rows, rows - start)
        names = rng.integers(0, len(CONTACT_NAMES), n).tolist()
        days = rng.integers(0, 3650, n).tolist()
        cents = rng.integers(0, 10_000_000, n).tolist()
        columns = {
            "full_name": [CONTACT_NAMES[i] for i in names],
            "email": [f"user{start + i}@example.com" for i in range(n)],
            "phone": [f"+4930{start + i:08d}" for i in range(n)],
            "country": [CONTACT_COUNTRIES[i % 6] for i in names],
            "signup_date": [
                (np.datetime64("2016-01-01") + np.timedelta64(d, "D")).astype(str) for d in days
            ],
            "amount": [f"{c / 100:.2f}" for c in cents],
        }
        first_row = start + 2
        arrays = [ac.Array(v, ac.DataType.string()) for v in columns.values()]
        numbers = ac.Array(list(range(first_row, first_row + n)), ac.DataType.int64())
        table = ac.Table.from_arrays([*arrays, numbers], names=[*columns, ROW_COLUMN])
        yield Batch(seq, first_row, n, encode_ipc(table, None))
