"""Exports: CSV and XLSX cells are defused against formula injection; machine formats stay
exact; a stored import streams batch by batch, and is Gone (410) once deleted."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from python_calamine import CalamineWorkbook

from server import db, exports, imports, retention, uploads
from server.batches import load_batch
from server.errors import Gone, Invalid, NotFound
from server.exports import export_import, plan_export, write_export
from server.http.responses import status_of
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory

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


# --- a stored import, streamed (export_import) --------------------------------------------------

SCHEMA: dict[str, object] = {
    "name": "ledger",
    "fields": [
        {"name": "label", "type": "string"},
        {"name": "count", "type": "integer"},
        {"name": "amount", "type": "number"},
        {"name": "day", "type": "date"},
        {"name": "ok", "type": "boolean"},
    ],
}
LEDGER = (
    "label,count,amount,day,ok\n"
    "=1+1,1,1.5,2024-02-29,true\n"
    "plain,2,-2.25,2024-03-01,false\n"
    "@SUM(A1),3,0,2023-12-31,true\n"
    "-dash,4,10,2024-01-01,false\n"
    "mid=eq,5,7.75,2024-06-30,true\n"
    "+plus,6,-1,2022-02-28,false\n"
)
LABELS = ["=1+1", "plain", "@SUM(A1)", "-dash", "mid=eq", "+plus"]
ESCAPED = ["'=1+1", "plain", "'@SUM(A1)", "'-dash", "mid=eq", "'+plus"]


@pytest.fixture
def stored(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> tuple[Runtime, str, pa.Table]:
    """An import of six rows stored as three batches of two; the rows as stored."""
    import_id = _store_ledger(runtime, demo_org, batch_factory, SCHEMA)
    with runtime.sessions() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None
        rows = pa.concat_tables(load_batch(runtime, session, imp, seq) for seq in range(3))
    return runtime, import_id, rows


def _store_ledger(
    runtime: Runtime,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    schema: dict[str, object],
) -> str:
    """LEDGER under `schema`, stored as three batches of two; the import's id."""
    setup = demo_org(runtime, schema=schema)
    created = imports.create_import(runtime, setup.org, setup.template.id, "ledger.csv")
    for seq in range(3):
        body = batch_factory(LEDGER, schema, offset=2 * seq, length=2)
        uploads.receive_batch(
            runtime, created.import_id, created.upload_token, seq, 2 + 2 * seq, body
        )
    imports.submit(runtime, created.import_id, created.upload_token, 3, 6)
    return created.import_id


def _export(rt: Runtime, import_id: str, fmt: str) -> bytes:
    out = io.BytesIO()
    export_import(rt, import_id, fmt, out)
    return out.getvalue()


def test_the_stored_rows_are_what_the_tests_expect(stored: tuple[Runtime, str, pa.Table]) -> None:
    _, _, rows = stored
    assert rows.column_names == ["label", "count", "amount", "day", "ok"]  # no __row
    assert rows.column("label").to_pylist() == LABELS
    assert rows.schema.field("day").type == pa.date32()


def test_csv_export_is_the_stored_rows_formula_escaped(
    stored: tuple[Runtime, str, pa.Table],
) -> None:
    rt, import_id, rows = stored
    back = list(csv.DictReader(io.StringIO(_export(rt, import_id, "csv").decode())))
    assert [r["label"] for r in back] == ESCAPED
    assert [int(r["count"]) for r in back] == rows.column("count").to_pylist()
    assert [float(r["amount"]) for r in back] == rows.column("amount").to_pylist()
    assert [r["day"] for r in back] == [d.isoformat() for d in rows.column("day").to_pylist()]
    assert [r["ok"] for r in back] == ["true", "false"] * 3
    assert list(back[0]) == ["label", "count", "amount", "day", "ok"]  # header once, in order


def test_xlsx_export_has_dates_as_dates_and_escaped_text(
    stored: tuple[Runtime, str, pa.Table],
) -> None:
    rt, import_id, rows = stored
    data = _export(rt, import_id, "xlsx")
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).to_python()
    assert sheet[0] == ["label", "count", "amount", "day", "ok"]
    body = sheet[1:]
    assert [r[0] for r in body] == ESCAPED
    assert [r[1] for r in body] == [float(c) for c in rows.column("count").to_pylist()]
    assert [r[2] for r in body] == rows.column("amount").to_pylist()
    assert [r[3] for r in body] == rows.column("day").to_pylist()  # dates, not text
    assert [r[4] for r in body] == rows.column("ok").to_pylist()


def test_parquet_export_is_exact_with_one_row_group_per_batch(
    stored: tuple[Runtime, str, pa.Table],
) -> None:
    rt, import_id, rows = stored
    parquet = pq.ParquetFile(io.BytesIO(_export(rt, import_id, "parquet")))
    assert parquet.metadata.num_row_groups == 3
    assert [parquet.metadata.row_group(i).num_rows for i in range(3)] == [2, 2, 2]
    assert parquet.read().equals(rows)


def test_ndjson_export_is_exact(stored: tuple[Runtime, str, pa.Table]) -> None:
    rt, import_id, rows = stored
    lines = [json.loads(x) for x in _export(rt, import_id, "ndjson").decode().splitlines()]
    expected = [{**row, "day": row["day"].isoformat()} for row in rows.to_pylist()]
    assert lines == expected
    assert lines[0]["label"] == "=1+1"  # machine formats are not escaped


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet", "ndjson"])
def test_an_export_is_fed_batch_by_batch(
    stored: tuple[Runtime, str, pa.Table], monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Memory is bounded by one batch: no more than one batch is loaded ahead of what has
    been handed to the writer, and never the whole import at once."""
    rt, import_id, _ = stored
    loaded: list[int] = []
    handed: list[int] = []
    real = load_batch

    def counting(rt: Runtime, session: Any, imp: db.Import, seq: int) -> pa.Table:
        assert len(loaded) == len(handed), "a batch was loaded before the last one was written"
        loaded.append(seq)
        return real(rt, session, imp, seq)

    writer = exports.WRITERS[fmt]

    def spying(tables: Any, columns: Any, out: Any) -> int:
        def watched() -> Any:
            for table in tables:
                assert table.num_rows == 2  # one batch, never the import
                yield table
                handed.append(loaded[-1])

        return writer(watched(), columns, out)

    monkeypatch.setattr(exports, "load_batch", counting)
    monkeypatch.setitem(exports.WRITERS, fmt, spying)
    assert export_import(rt, import_id, fmt, io.BytesIO()) == 6
    assert loaded == [0, 1, 2]
    assert handed == [0, 1, 2]


def test_an_unknown_format_is_refused(stored: tuple[Runtime, str, pa.Table]) -> None:
    rt, import_id, _ = stored
    out = io.BytesIO()
    with pytest.raises(Invalid, match="csv, xlsx, parquet, ndjson"):
        export_import(rt, import_id, "xls", out)
    assert out.getvalue() == b""


def test_xlsx_above_excels_row_limit_is_refused_before_writing(
    stored: tuple[Runtime, str, pa.Table],
) -> None:
    rt, import_id, _ = stored
    with rt.sessions.begin() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None
        imp.row_count = 1_048_576  # one more than fits below the header
    out = io.BytesIO()
    with pytest.raises(Invalid, match=r"at most 1,048,575 below its header"):
        export_import(rt, import_id, "xlsx", out)
    assert out.getvalue() == b""
    assert export_import(rt, import_id, "csv", io.BytesIO()) == 6  # other formats still go


def test_after_deletion_the_export_is_gone_with_its_date(
    stored: tuple[Runtime, str, pa.Table],
) -> None:
    rt, import_id, _ = stored
    before = db.utcnow()
    assert retention.delete_import_data(rt, import_id, actor="api-key:key_1")
    out = io.BytesIO()
    with pytest.raises(Gone) as caught:
        export_import(rt, import_id, "csv", out)
    assert out.getvalue() == b""
    error = caught.value
    assert error.details["reason"] == "deleted"
    at = dt.datetime.fromisoformat(error.details["at"])
    assert before <= at <= db.utcnow()
    assert error.message == (
        f"The data of import {import_id} was deleted by api-key:key_1 on "
        f"{at:%Y-%m-%d at %H:%M} UTC; its rows are no longer stored."
    )
    assert error.details["actor"] == "api-key:key_1"
    assert status_of(error) == 410
    with pytest.raises(Gone, match="deleted by api-key:key_1 on"):
        plan_export(rt, import_id, "parquet")


def test_after_expiry_the_export_is_gone_as_expired(
    stored: tuple[Runtime, str, pa.Table],
) -> None:
    rt, import_id, _ = stored
    with rt.sessions.begin() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None
        imp.expires_at = db.utcnow() - dt.timedelta(seconds=1)
        imp.created_at = imp.expires_at - dt.timedelta(days=rt.settings.retention_days)
    assert retention.purge_expired(rt) == [import_id]
    days = rt.settings.retention_days
    with pytest.raises(
        Gone,
        match=rf"import {import_id} was expired after {days} days retention on \d{{4}}-\d\d-\d\d",
    ) as e:
        export_import(rt, import_id, "ndjson", io.BytesIO())
    assert e.value.details["reason"] == "expired"
    assert e.value.details["actor"] == "retention"


def test_another_organisations_import_is_not_found(
    stored: tuple[Runtime, str, pa.Table],
) -> None:
    rt, import_id, _ = stored
    with pytest.raises(NotFound):
        export_import(rt, import_id, "csv", io.BytesIO(), org_id="org_other")
    plan = plan_export(rt, import_id, "xlsx")
    assert (plan.file_name, plan.rows, plan.batches) == ("ledger.xlsx", 6, 3)
    assert plan.columns == ("label", "count", "amount", "day", "ok")


def test_xlsx_writes_times_numbers_and_gaps_as_excel_types() -> None:
    table = pa.table(
        {
            "at": pa.array(
                [dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC), None], pa.timestamp("us", "UTC")
            ),
            "x": pa.array([float("nan"), 2.5], pa.float64()),
            "t": pa.array(["\tcell", None], pa.string()),
        }
    )
    out = io.BytesIO()
    assert exports.WRITERS["xlsx"](iter([table]), ("at", "x", "t"), out) == 2
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(out.getvalue())).get_sheet_by_index(0)
    assert sheet.to_python() == [
        ["at", "x", "t"],
        [dt.datetime(2024, 5, 1, 12, 30), "nan", "'\tcell"],
        ["", 2.5, ""],
    ]


def _personal_ledger(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> str:
    """The ledger, `count` classified as personal data, stored as three batches of two."""
    schema = json.loads(json.dumps(SCHEMA))
    schema["fields"][1]["x-loadbay"] = {"classification": "personal"}
    return _store_ledger(runtime, demo_org, batch_factory, schema)


def test_a_masked_export_writes_personal_fields_as_the_mask_in_every_batch(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    import_id = _personal_ledger(runtime, demo_org, batch_factory)
    assert plan_export(runtime, import_id, "parquet", clear=False).masked == {"count"}
    assert plan_export(runtime, import_id, "parquet").masked == frozenset()
    out = io.BytesIO()
    assert export_import(runtime, import_id, "parquet", out, clear=False) == 6
    table = pq.read_table(io.BytesIO(out.getvalue()))
    assert table.schema.field("count").type == pa.string()  # one type across the batches
    assert table.column("count").to_pylist() == [exports.MASK] * 6
    assert table.column("label").to_pylist() == LABELS
    clear = io.BytesIO()
    export_import(runtime, import_id, "parquet", clear)
    assert pq.read_table(io.BytesIO(clear.getvalue())).column("count").to_pylist() == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]


def test_a_preview_pages_across_batches_and_reveals_only_what_it_names(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    from server import previews

    import_id = _personal_ledger(runtime, demo_org, batch_factory)
    with runtime.sessions() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None
        org_id = imp.org_id
    found = previews.preview(runtime, org_id, import_id, actor="t", first_row=2, limit=3)
    assert (found.first_row, found.last_row, found.total_rows) == (2, 4, 6)
    assert [r[:2] for r in found.rows] == [
        ("plain", previews.MASK),
        ("@SUM(A1)", previews.MASK),
        ("-dash", previews.MASK),
    ]
    shown = previews.preview(
        runtime, org_id, import_id, actor="t", reveal=["count"], first_row=5, limit=9
    )
    assert [r[:2] for r in shown.rows] == [("mid=eq", "5"), ("+plus", "6")]
    assert shown.masked == frozenset()
    with pytest.raises(Invalid, match="label: not a personal-data field"):
        previews.preview(runtime, org_id, import_id, actor="t", reveal=["label"])
    with pytest.raises(Invalid, match="1 to 100 rows"):
        previews.preview(runtime, org_id, import_id, actor="t", limit=101)
