"""The invalid-row policy on the server: the batch is re-checked under the template's
policy (else the organisation's default), left-out rows are counted into the import's
status and the delivery, and with-errors rows reach the webhook with their errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from sqlalchemy import select

from server import batches, db, imports, jobs, orgs, uploads
from server.errors import Invalid
from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA

if TYPE_CHECKING:
    from tests.conftest import DemoOrgFactory, OrgSetup, Receiver, RuntimeFactory


def _ipc(columns: dict[str, list[Any]]) -> bytes:
    table = pa.table(
        {k: pa.array(v, pa.int64() if k == "__row" else pa.string()) for k, v in columns.items()}
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


# rows 2 and 9 pass; row 5 has no name, row 7 an unknown country and a non-date
BATCH = _ipc(
    {
        "__row": [2, 5, 7, 9],
        "full_name": ["Ada", None, "Alan", "Grace"],
        "email": ["ada@example.com", "x@example.com", "alan@example.com", "g@example.com"],
        "country": ["GB", "FR", "Atlantis", "US"],
        "signup_date": ["2024-01-15", None, "2024-02-30", None],
    }
)


def _schema(policy: str | None) -> dict[str, Any]:
    ext = dict(CONTACTS_SCHEMA.get("x-loadbay", {}))
    if policy is not None:
        ext["invalidRowPolicy"] = policy
    return {**CONTACTS_SCHEMA, "x-loadbay": ext}


@pytest.fixture
def rt(
    runtime_factory: RuntimeFactory, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Runtime:
    made = runtime_factory(allow_private_networks=("127.0.0.0/8",))
    monkeypatch.setattr(jobs, "_runtime", lambda: made)
    return made


def _org(
    rt: Runtime, demo_org: DemoOrgFactory, receiver: Receiver, policy: str | None, default: str
) -> OrgSetup:
    setup = demo_org(rt, schema=_schema(policy), webhook_urls=[receiver.url])
    orgs.update_settings(rt, setup.org.id, invalid_row_policy=default)
    return setup


def _stored(rt: Runtime, import_id: str) -> tuple[pa.Table, db.Batch]:
    with rt.sessions() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None
        row = session.scalar(select(db.Batch).where(db.Batch.import_id == import_id))
        assert row is not None
        return batches.load_batch(rt, session, imp, 0), row


@pytest.mark.parametrize(("policy", "default"), [("reject", "valid-only"), (None, "reject")])
def test_reject_refuses_the_batch(
    rt: Runtime, demo_org: DemoOrgFactory, receiver: Receiver, policy: str | None, default: str
) -> None:
    setup = _org(rt, demo_org, receiver, policy, default)
    created = imports.create_import(rt, setup.org, setup.template.id, "c.csv")
    with pytest.raises(Invalid, match=r"3 cell\(s\) do not pass"):
        uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, BATCH)


@pytest.mark.parametrize(("policy", "default"), [("valid-only", "reject"), (None, "valid-only")])
def test_valid_only_stores_the_valid_rows_and_counts_the_rest(
    rt: Runtime, demo_org: DemoOrgFactory, receiver: Receiver, policy: str | None, default: str
) -> None:
    setup = _org(rt, demo_org, receiver, policy, default)
    created = imports.create_import(rt, setup.org, setup.template.id, "c.csv")
    # the browser left out 3 rows itself; the server's re-check leaves out rows 5 and 7
    rows = uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, BATCH, 3)
    assert rows == 2
    table, row = _stored(rt, created.import_id)
    assert table.column("full_name").to_pylist() == ["Ada", "Grace"]
    assert (row.row_count, row.left_out) == (2, 5)
    [delivery_id] = imports.submit(rt, created.import_id, created.upload_token, 1, 2)
    state = imports.status(rt, created.import_id, created.upload_token).to_dict()
    assert (state["rows"], state["left_out"]) == (2, 5)
    assert jobs.deliver(delivery_id) == "delivered"
    [request] = receiver.requests
    data = json.loads(request.body)["data"]
    assert (data["row_count"], data["left_out"]) == (2, 5)
    assert [r["email"] for r in data["rows"]] == ["ada@example.com", "g@example.com"]
    assert all("_errors" not in r for r in data["rows"])


def test_with_errors_delivers_every_row_with_its_errors(
    rt: Runtime, demo_org: DemoOrgFactory, receiver: Receiver
) -> None:
    setup = _org(rt, demo_org, receiver, "with-errors", "reject")
    created = imports.create_import(rt, setup.org, setup.template.id, "c.csv")
    assert uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, BATCH) == 4
    [delivery_id] = imports.submit(rt, created.import_id, created.upload_token, 1, 4)
    assert jobs.deliver(delivery_id) == "delivered"
    [request] = receiver.requests
    data = json.loads(request.body)["data"]
    assert (data["row_count"], data["left_out"]) == (4, 0)
    rows = data["rows"]
    assert [r["full_name"] for r in rows] == ["Ada", None, "Alan", "Grace"]
    assert rows[2]["signup_date"] is None  # a cell that fails typing arrives as null
    assert rows[2]["country"] == "Atlantis"  # one that fails a constraint as it was
    assert [r["_errors"] for r in rows] == [
        [],
        [
            {
                "field": "full_name",
                "code": "constraint-error",
                "message": "Full name is required, but this cell is empty.",
            }
        ],
        [
            {
                "field": "country",
                "code": "constraint-error",
                "message": '"Atlantis" is not one of the allowed values: DE, FR, GB, IT, NL, US.',
            },
            {
                "field": "signup_date",
                "code": "type-error",
                "message": '"2024-02-30" is not a date (use YYYY-MM-DD).',
            },
        ],
        [],
    ]
