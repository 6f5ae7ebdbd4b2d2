"""bench.ingest measures what it says: its batches pass the server's checks, and both
parts run end to end on a few rows (the figures themselves are the bench's, not tests')."""

from __future__ import annotations

import json

import pytest

from bench import ingest
from bench.ingest_data import contacts_batches, ingest_template, valid_batches
from pipeline.template import parse_template
from server.uploads import checked_typed_batch
from tests.conftest import CONTACTS_SCHEMA


@pytest.mark.parametrize("unique_id", [False, True])
def test_the_ingest_batches_pass_the_servers_checks(unique_id: bool) -> None:
    template = parse_template(ingest_template(unique_id))
    assert template.field("id").unique is unique_id
    batches = list(valid_batches(1500, batch_rows=1000))
    assert [(b.seq, b.first_row, b.rows) for b in batches] == [(0, 2, 1000), (1, 1002, 500)]
    typed = [checked_typed_batch(b.ipc, template, b.first_row)[0] for b in batches]
    assert [t.num_rows for t in typed] == [1000, 500]
    assert typed[1].column("id").to_pylist()[:2] == [1001, 1002]  # ids run on across batches


def test_the_contacts_batches_pass_the_demo_template() -> None:
    [batch] = contacts_batches(300)
    table, left_out = checked_typed_batch(
        batch.ipc, parse_template(CONTACTS_SCHEMA), batch.first_row
    )
    assert left_out == 0
    assert table.num_rows == 300
    assert table.column_names == [f["name"] for f in CONTACTS_SCHEMA["fields"]]


def test_both_parts_run_and_count_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    part_a = ingest.in_process(2000, profile=False, unique_id=True)
    assert (part_a["rows"], part_a["batches"], part_a["unique_id"]) == (2000, 1, True)
    assert part_a["rows_per_s"] > 0 and part_a["floor_seconds"] > 0
    part_b = ingest.end_to_end(70_000)  # two batches, through serve, worker and the webhook
    assert (part_b["batches"], part_b["webhook_requests"]) == (2, 66 + 5)  # 1,000-row requests
    assert part_b["rows_received"] == 70_000
    assert set(part_b["peak_rss_mb"]) == {"serve", "worker", "redis"}
    assert all(mb > 0 for mb in part_b["peak_rss_mb"].values())
    json.dumps([part_a, part_b])  # what main() writes
