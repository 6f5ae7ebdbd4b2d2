"""Exports: CSV cells are defused against formula injection; machine formats stay exact."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from server.exports import write_export

DANGEROUS = [
    '=HYPERLINK("https://evil.example","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\tindented",
    "\rcarriage",
    "\nnewline",
    "\0nul",
]
HARMLESS = ["plain", "a=b", "mid-dash", "user@example.com", " =space first", "", None]


def _table() -> pa.Table:
    texts = DANGEROUS + HARMLESS
    n = len(texts)
    return pa.table(
        {
            "text": pa.array(texts, pa.string()),
            "count": pa.array([-5 - i for i in range(n)], pa.int64()),
            "amount": pa.array([-1.5] * n, pa.float64()),
            "day": pa.array([dt.date(2024, 2, 29)] * n, pa.date32()),
            "ok": pa.array([True] * n, pa.bool_()),
        }
    )


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_csv_prefixes_formula_starters_with_a_quote(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    write_export(_table(), out)
    rows = _read_csv(out)
    assert [r["text"] for r in rows[: len(DANGEROUS)]] == ["'" + v for v in DANGEROUS]


def test_csv_leaves_other_text_alone(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    write_export(_table(), out)
    rows = _read_csv(out)[len(DANGEROUS) :]
    assert [r["text"] for r in rows] == [
        "plain",
        "a=b",
        "mid-dash",
        "user@example.com",
        " =space first",
        "",
        "",
    ]


def test_csv_leaves_typed_numbers_alone(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    write_export(_table(), out)
    rows = _read_csv(out)
    assert [r["count"] for r in rows[:3]] == ["-5", "-6", "-7"]
    assert {r["amount"] for r in rows} == {"-1.5"}
    assert {r["day"] for r in rows} == {"2024-02-29"}
    assert {r["ok"] for r in rows} == {"true"}


def test_ndjson_keeps_values_exactly(tmp_path: Path) -> None:
    out = tmp_path / "out.ndjson"
    write_export(_table(), out)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in lines] == DANGEROUS + HARMLESS
    assert lines[0] == {
        "text": DANGEROUS[0],
        "count": -5,
        "amount": -1.5,
        "day": "2024-02-29",
        "ok": True,
    }


def test_parquet_keeps_values_and_types_exactly(tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    write_export(_table(), out)
    back = pq.read_table(out)
    assert back.column("text").to_pylist() == DANGEROUS + HARMLESS
    assert back.column("count").to_pylist()[:2] == [-5, -6]
    assert back.schema.field("day").type == pa.date32()
    assert back.schema.field("count").type == pa.int64()
    assert pl.read_parquet(out).shape == (len(DANGEROUS) + len(HARMLESS), 5)


@pytest.mark.parametrize("name", ["out.xlsx", "out.json", "out", "out.csv.gz"])
def test_unknown_formats_are_refused_before_writing(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=r"choose an output ending in \.csv, \.ndjson, \.parquet"):
        write_export(_table(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_format_is_chosen_case_insensitively(tmp_path: Path) -> None:
    out = tmp_path / "OUT.CSV"
    write_export(_table(), out)
    assert _read_csv(out)[0]["text"] == "'" + DANGEROUS[0]
