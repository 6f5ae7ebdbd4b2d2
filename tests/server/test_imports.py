"""An import on the server: batches re-validated, typed, sealed; submit; status; retention.

Runs on both metadata stores. Crafted batches are built with pyarrow directly: the
browser is not a trust boundary, so the server must refuse whatever it could send.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from sqlalchemy import select, update

from server import batches, db, imports, uploads
from server.crypto import DecryptionError
from server.errors import Conflict, Invalid, NotFound, TooLarge, Unauthorized
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, OrgSetup, RuntimeFactory

ORDERS: dict[str, Any] = {
    "name": "orders",
    "fields": [
        {"name": "customer", "type": "string", "constraints": {"required": True}},
        {"name": "quantity", "type": "integer"},
        {"name": "price", "type": "number"},
        {"name": "ordered_on", "type": "date"},
        {"name": "paid", "type": "boolean"},
        {"name": "status", "type": "string", "constraints": {"enum": ["new", "shipped"]}},
    ],
}
CSV = """customer,quantity,price,ordered_on,paid,status,internal_note
Zyxwab Quorth,42,19.75,2024-02-29,true,new,UNMAPPED-Pelargonium
Mirela Okonkwo-Vass,-7,0.5,1999-12-31,0,shipped,UNMAPPED-Xanthippe
Brunhild Eskaton,,,,,,
"""
TYPED_ROWS = [
    {
        "customer": "Zyxwab Quorth",
        "quantity": 42,
        "price": 19.75,
        "ordered_on": dt.date(2024, 2, 29),
        "paid": True,
        "status": "new",
    },
    {
        "customer": "Mirela Okonkwo-Vass",
        "quantity": -7,
        "price": 0.5,
        "ordered_on": dt.date(1999, 12, 31),
        "paid": False,
        "status": "shipped",
    },
    {
        "customer": "Brunhild Eskaton",
        "quantity": None,
        "price": None,
        "ordered_on": None,
        "paid": None,
        "status": None,
    },
]
# Cell values (mapped and unmapped) and column names that must never be readable at rest.
DISTINCTIVE = [
    b"Zyxwab Quorth",
    b"Mirela Okonkwo-Vass",
    b"Brunhild Eskaton",
    b"UNMAPPED-Pelargonium",
    b"UNMAPPED-Xanthippe",
    b"shipped",
    b"customer",
    b"internal_note",
]


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _strings(**columns: list[str | None]) -> pa.Table:
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


@pytest.fixture
def setup(runtime: Runtime, demo_org: DemoOrgFactory) -> OrgSetup:
    return demo_org(runtime, schema=ORDERS)


@pytest.fixture
def created(runtime: Runtime, setup: OrgSetup) -> imports.CreatedImport:
    return imports.create_import(runtime, setup.org, setup.template.id, "orders.csv")


@pytest.fixture
def body(batch_factory: BatchFactory) -> bytes:
    return batch_factory(CSV, ORDERS)


def _batches(rt: Runtime, import_id: str) -> list[db.Batch]:
    with rt.sessions() as session:
        return list(session.scalars(select(db.Batch).where(db.Batch.import_id == import_id)))


def _load(rt: Runtime, import_id: str, seq: int) -> pa.Table:
    with rt.sessions() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None
        return batches.load_batch(rt, session, imp, seq)


# --- create -------------------------------------------------------------------------------------


def test_create_import_records_a_hashed_token_and_a_wrapped_key(
    runtime: Runtime, setup: OrgSetup, created: imports.CreatedImport
) -> None:
    assert created.import_id.startswith("imp_")
    assert len(created.upload_token) >= 43
    with runtime.sessions() as session:
        imp = session.get(db.Import, created.import_id)
        assert imp is not None
        assert (imp.org_id, imp.template_id, imp.status) == (
            setup.org.id,
            setup.template.id,
            "uploading",
        )
        assert imp.file_name == "orders.csv"
        assert created.upload_token not in imp.token_hash
        assert len(imp.token_hash) == 64
        assert imp.wrapped_data_key is not None and len(imp.wrapped_data_key) == 4 + 12 + 32 + 16


def test_expiry_is_creation_plus_retention(
    runtime_factory: RuntimeFactory, demo_org: DemoOrgFactory
) -> None:
    rt = runtime_factory(retention_days=7)
    setup = demo_org(rt, schema=ORDERS)
    created = imports.create_import(rt, setup.org, setup.template.id, "x.csv")
    with rt.sessions() as session:
        imp = session.get(db.Import, created.import_id)
        assert imp is not None
        assert imp.expires_at.utcoffset() == dt.timedelta(0)
        assert abs((imp.expires_at - imp.created_at) - dt.timedelta(days=7)) < dt.timedelta(
            seconds=1
        )
        assert abs(imp.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=30)


def test_create_import_refuses_another_organisations_template(
    runtime: Runtime, setup: OrgSetup, demo_org: DemoOrgFactory
) -> None:
    other = demo_org(runtime, schema=ORDERS)
    with pytest.raises(NotFound, match=f"Template {other.template.id} does not exist"):
        imports.create_import(runtime, setup.org, other.template.id, "x.csv")


# --- receive ------------------------------------------------------------------------------------


def test_batch_is_stored_sealed_and_decrypts_to_the_typed_rows(
    runtime: Runtime, created: imports.CreatedImport, body: bytes
) -> None:
    rows = uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    assert rows == 3
    [batch] = _batches(runtime, created.import_id)
    assert (batch.seq, batch.first_row, batch.row_count) == (0, 2, 3)
    blob = (runtime.settings.blob_dir / batch.blob_key).read_bytes()
    assert blob.startswith(b"LBY1")
    for value in DISTINCTIVE:
        assert value not in blob, value
        assert value.decode().encode("utf-16-le") not in blob, value

    table = _load(runtime, created.import_id, 0)
    assert table.column_names == [f["name"] for f in ORDERS["fields"]]
    assert [str(t) for t in table.schema.types] == [
        "string",
        "int64",
        "double",
        "date32[day]",
        "bool",
        "string",
    ]
    assert table.to_pylist() == TYPED_ROWS
    first = table.to_pylist()[0]
    assert [type(first[k]) for k in ("quantity", "price", "ordered_on", "paid")] == [
        int,
        float,
        dt.date,
        bool,
    ]


def test_unmapped_columns_never_reach_the_server(
    runtime: Runtime, created: imports.CreatedImport, body: bytes
) -> None:
    assert b"UNMAPPED" not in body  # the browser drops them before sending
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    assert "internal_note" not in _load(runtime, created.import_id, 0).column_names


@pytest.mark.parametrize("store", ["sqlite"])
def test_metadata_database_holds_no_cell_values(
    runtime: Runtime, created: imports.CreatedImport, body: bytes
) -> None:
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    database = (runtime.settings.data_dir / "loadbay.db").read_bytes()
    for value in DISTINCTIVE[:5]:
        assert value not in database, value


def test_a_blob_moved_to_another_batch_does_not_decrypt(
    runtime: Runtime, created: imports.CreatedImport, batch_factory: BatchFactory
) -> None:
    token = created.upload_token
    for seq, (offset, first_row) in enumerate([(0, 2), (1, 3)]):
        part = batch_factory(CSV, ORDERS, offset=offset, length=1)
        uploads.receive_batch(runtime, created.import_id, token, seq, first_row, part)
    zero, one = sorted(_batches(runtime, created.import_id), key=lambda b: b.seq)
    blobs = runtime.settings.blob_dir
    (blobs / one.blob_key).write_bytes((blobs / zero.blob_key).read_bytes())
    with pytest.raises(DecryptionError):
        _load(runtime, created.import_id, 1)
    assert _load(runtime, created.import_id, 0).to_pylist() == TYPED_ROWS[:1]


def test_the_same_batch_twice_is_stored_once(
    runtime: Runtime, created: imports.CreatedImport, body: bytes
) -> None:
    first = uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    again = uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    assert first == again == 3
    assert len(_batches(runtime, created.import_id)) == 1
    assert _load(runtime, created.import_id, 0).to_pylist() == TYPED_ROWS


def test_different_content_for_a_received_seq_is_a_conflict(
    runtime: Runtime, created: imports.CreatedImport, body: bytes, batch_factory: BatchFactory
) -> None:
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    other = batch_factory(CSV, ORDERS, offset=0, length=1)
    with pytest.raises(Conflict, match="Batch 0 was already received with different content"):
        uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, other)
    [batch] = _batches(runtime, created.import_id)
    assert batch.row_count == 3
    assert _load(runtime, created.import_id, 0).to_pylist() == TYPED_ROWS


INVALID_CELLS = [
    pytest.param(
        _strings(customer=["Ann", None], quantity=["1", "2"]),
        [{"row": 11, "field": "customer", "code": "constraint-error", "constraint": "required"}],
        id="required-null",
    ),
    pytest.param(
        _strings(customer=["Ann", ""]),
        [{"row": 11, "field": "customer", "code": "constraint-error", "constraint": "required"}],
        id="required-empty-string",
    ),
    pytest.param(
        _strings(customer=["Ann", "Bo"], ordered_on=["2024-02-30", "2024-01-01"]),
        [{"row": 10, "field": "ordered_on", "code": "type-error"}],
        id="bad-date",
    ),
    pytest.param(
        _strings(customer=["Ann", "Bo"], quantity=["1.5", "x"], paid=["yes", "true"]),
        [
            {"row": 10, "field": "quantity", "code": "type-error"},
            {"row": 10, "field": "paid", "code": "type-error"},
            {"row": 11, "field": "quantity", "code": "type-error"},
        ],
        id="integer-and-boolean",
    ),
    pytest.param(
        _strings(customer=["Ann", "Bo"], status=["new", "lost"]),
        [{"row": 11, "field": "status", "code": "constraint-error", "constraint": "enum"}],
        id="enum",
    ),
]


@pytest.mark.parametrize(("table", "expected"), INVALID_CELLS)
def test_cells_failing_the_template_are_refused_with_details(
    runtime: Runtime,
    created: imports.CreatedImport,
    table: pa.Table,
    expected: list[dict[str, Any]],
) -> None:
    with pytest.raises(Invalid) as caught:
        uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 10, _ipc(table))
    details = caught.value.details
    assert caught.value.message == f"{len(expected)} cell(s) do not pass the template's rules."
    assert [{k: d[k] for k in e} for d, e in zip(details, expected, strict=True)] == expected
    assert all(d["message"] for d in details)
    assert _batches(runtime, created.import_id) == []
    assert list(runtime.settings.blob_dir.rglob("*.sealed")) == []


def test_empty_strings_count_as_empty_cells_like_the_browser_reader(
    runtime: Runtime, created: imports.CreatedImport
) -> None:
    """missingValues [""]: an empty optional cell is null, not a type error, as in a CSV."""
    table = _strings(customer=["Ann"], quantity=[""], ordered_on=[""], paid=[""], status=[""])
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, _ipc(table))
    assert _load(runtime, created.import_id, 0).to_pylist() == [
        {
            "customer": "Ann",
            "quantity": None,
            "price": None,
            "ordered_on": None,
            "paid": None,
            "status": None,
        }
    ]


MALFORMED = [
    pytest.param(b"garbage, not arrow", "not an Arrow IPC stream", id="garbage"),
    pytest.param(b"", "not an Arrow IPC stream", id="empty-body"),
    pytest.param(
        _ipc(pa.table({"customer": ["Ann"], "quantity": pa.array([1], pa.int64())})),
        'Column "quantity" must hold text, not int64',
        id="int-column",
    ),
    pytest.param(
        _ipc(pa.table({"customer": pa.array(["Ann"]).dictionary_encode()})),
        'Column "customer" must hold text',
        id="dictionary-column",
    ),
    pytest.param(
        _ipc(_strings(customer=["Ann"], internal_note=["x"])),
        "Columns internal_note are not fields of the template",
        id="unknown-column",
    ),
    pytest.param(
        _ipc(_strings(quantity=["1"])),
        "Required field(s) customer are not mapped",
        id="required-column-missing",
    ),
]


@pytest.mark.parametrize(("payload", "message"), MALFORMED)
def test_malformed_batches_are_refused(
    runtime: Runtime, created: imports.CreatedImport, payload: bytes, message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, payload)
    assert message in caught.value.message
    assert _batches(runtime, created.import_id) == []


def test_large_string_columns_are_accepted(
    runtime: Runtime, created: imports.CreatedImport
) -> None:
    table = pa.table({"customer": pa.array(["Ann"], pa.large_string())})
    assert (
        uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, _ipc(table))
        == 1
    )
    assert _load(runtime, created.import_id, 0).column("customer").to_pylist() == ["Ann"]


@pytest.mark.parametrize(
    ("import_id", "token"),
    [("known", "wrong-token"), ("imp_doesnotexist", "any"), ("known", "")],
    ids=["wrong-token", "unknown-import", "empty-token"],
)
def test_bad_credentials_are_unauthorised(
    runtime: Runtime, created: imports.CreatedImport, body: bytes, import_id: str, token: str
) -> None:
    target = created.import_id if import_id == "known" else import_id
    with pytest.raises(Unauthorized, match="This upload link is not valid"):
        uploads.receive_batch(runtime, target, token, 0, 2, body)
    with pytest.raises(Unauthorized):
        imports.submit(runtime, target, token, 0, 0)
    with pytest.raises(Unauthorized):
        imports.status(runtime, target, token)
    assert _batches(runtime, created.import_id) == []


def test_a_token_is_only_valid_for_its_own_import(
    runtime: Runtime, setup: OrgSetup, created: imports.CreatedImport, body: bytes
) -> None:
    other = imports.create_import(runtime, setup.org, setup.template.id, "other.csv")
    with pytest.raises(Unauthorized):
        uploads.receive_batch(runtime, other.import_id, created.upload_token, 0, 2, body)


def test_oversized_batches_are_refused_before_reading(
    runtime_factory: RuntimeFactory, demo_org: DemoOrgFactory, body: bytes
) -> None:
    rt = runtime_factory(max_batch_bytes=len(body) - 1)
    setup = demo_org(rt, schema=ORDERS)
    created = imports.create_import(rt, setup.org, setup.template.id, "x.csv")
    with pytest.raises(TooLarge, match=f"at most {len(body) - 1} bytes"):
        uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body)
    with pytest.raises(TooLarge):  # checked even before the token
        uploads.receive_batch(rt, created.import_id, "wrong", 0, 2, body)
    assert _batches(rt, created.import_id) == []


def test_a_batch_of_exactly_the_limit_is_accepted(
    runtime_factory: RuntimeFactory, demo_org: DemoOrgFactory, body: bytes
) -> None:
    rt = runtime_factory(max_batch_bytes=len(body))
    setup = demo_org(rt, schema=ORDERS)
    created = imports.create_import(rt, setup.org, setup.template.id, "x.csv")
    assert uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body) == 3


# --- submit and status --------------------------------------------------------------------------


def _two_batches(rt: Runtime, created: imports.CreatedImport, batch_factory: BatchFactory) -> None:
    token = created.upload_token
    uploads.receive_batch(
        rt, created.import_id, token, 0, 2, batch_factory(CSV, ORDERS, offset=0, length=2)
    )
    uploads.receive_batch(
        rt, created.import_id, token, 1, 4, batch_factory(CSV, ORDERS, offset=2, length=1)
    )


def test_submit_refuses_missing_batches(
    runtime: Runtime, created: imports.CreatedImport, body: bytes
) -> None:
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    with pytest.raises(Invalid, match=r"2 batch\(es\) have not arrived \(numbers 1, 2\)"):
        imports.submit(runtime, created.import_id, created.upload_token, 3, 3)
    assert imports.status(runtime, created.import_id, created.upload_token).status == "uploading"


@pytest.mark.parametrize("claimed", [0, 2, 4])
def test_submit_refuses_a_wrong_row_count(
    runtime: Runtime, created: imports.CreatedImport, body: bytes, claimed: int
) -> None:
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    with pytest.raises(Invalid, match=f"The server received 3 rows, not {claimed}"):
        imports.submit(runtime, created.import_id, created.upload_token, 1, claimed)


def test_submit_refuses_more_batches_than_announced(
    runtime: Runtime, created: imports.CreatedImport, batch_factory: BatchFactory
) -> None:
    _two_batches(runtime, created, batch_factory)
    with pytest.raises(Invalid):
        imports.submit(runtime, created.import_id, created.upload_token, 1, 2)


def test_submit_creates_one_delivery_per_batch_and_destination(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    setup = demo_org(
        runtime, schema=ORDERS, webhook_urls=["https://127.0.0.1:9/a", "https://127.0.0.1:9/b"]
    )
    created = imports.create_import(runtime, setup.org, setup.template.id, "x.csv")
    _two_batches(runtime, created, batch_factory)

    ids = imports.submit(runtime, created.import_id, created.upload_token, 2, 3)

    assert len(ids) == len(set(ids)) == 4
    with runtime.sessions() as session:
        deliveries = session.scalars(
            select(db.Delivery).where(db.Delivery.import_id == created.import_id)
        ).all()
        assert sorted(d.id for d in deliveries) == sorted(ids)
        assert sorted((d.seq, d.destination_id) for d in deliveries) == sorted(
            (seq, dest.id) for seq in (0, 1) for dest in setup.destinations
        )
        assert {(d.status, d.attempts) for d in deliveries} == {("pending", 0)}
        imp = session.get(db.Import, created.import_id)
        assert imp is not None
        assert (imp.status, imp.row_count, imp.batch_count) == ("delivering", 3, 2)

    again = imports.submit(runtime, created.import_id, created.upload_token, 2, 3)
    assert sorted(again) == sorted(ids)
    state = imports.status(runtime, created.import_id, created.upload_token)
    assert state.to_dict() == {
        "id": created.import_id,
        "status": "delivering",
        "rows": 3,
        "batches": 2,
        "left_out": 0,
        "deliveries": {"pending": 4, "delivered": 0, "failed": 0},
        "final": False,
    }


def test_disabled_destinations_get_no_deliveries(
    runtime: Runtime, demo_org: DemoOrgFactory, body: bytes
) -> None:
    setup = demo_org(
        runtime, schema=ORDERS, webhook_urls=["https://127.0.0.1:9/a", "https://127.0.0.1:9/b"]
    )
    with runtime.sessions.begin() as session:
        session.execute(
            update(db.Destination)
            .where(db.Destination.id == setup.destinations[1].id)
            .values(enabled=False)
        )
    created = imports.create_import(runtime, setup.org, setup.template.id, "x.csv")
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    [delivery_id] = imports.submit(runtime, created.import_id, created.upload_token, 1, 3)
    with runtime.sessions() as session:
        delivery = session.get(db.Delivery, delivery_id)
        assert delivery is not None and delivery.destination_id == setup.destinations[0].id


def test_batches_are_refused_after_submit(
    runtime: Runtime, created: imports.CreatedImport, body: bytes
) -> None:
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    imports.submit(runtime, created.import_id, created.upload_token, 1, 3)
    with pytest.raises(Conflict, match="already submitted"):
        uploads.receive_batch(runtime, created.import_id, created.upload_token, 1, 5, body)


def test_without_destinations_an_import_is_complete_on_submit(
    runtime: Runtime, created: imports.CreatedImport, body: bytes
) -> None:
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    assert imports.submit(runtime, created.import_id, created.upload_token, 1, 3) == []
    state = imports.status(runtime, created.import_id, created.upload_token)
    assert (state.status, state.rows, state.batches) == ("complete", 3, 1)
    assert state.deliveries == {"pending": 0, "delivered": 0, "failed": 0}


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        (["pending", "pending"], "delivering"),
        (["delivered", "pending"], "delivering"),
        (["delivered", "delivered"], "delivered"),
        (["delivered", "failed"], "failed"),
        (["failed", "pending"], "failed"),
    ],
)
def test_status_follows_the_deliveries(
    runtime: Runtime,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    outcomes: list[str],
    expected: str,
) -> None:
    setup = demo_org(runtime, schema=ORDERS, webhook_urls=["https://127.0.0.1:9/a"])
    created = imports.create_import(runtime, setup.org, setup.template.id, "x.csv")
    _two_batches(runtime, created, batch_factory)
    ids = imports.submit(runtime, created.import_id, created.upload_token, 2, 3)
    with runtime.sessions.begin() as session:
        for delivery_id, outcome in zip(sorted(ids), outcomes, strict=True):
            session.execute(
                update(db.Delivery).where(db.Delivery.id == delivery_id).values(status=outcome)
            )
    state = imports.status(runtime, created.import_id, created.upload_token)
    assert state.status == expected
    assert state.deliveries == {s: outcomes.count(s) for s in ("pending", "delivered", "failed")}


def test_load_batch_of_an_unknown_seq_is_not_found(
    runtime: Runtime, created: imports.CreatedImport, body: bytes
) -> None:
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    with pytest.raises(NotFound, match="Batch 1 of import"):
        _load(runtime, created.import_id, 1)


# --- unique values across batches ---------------------------------------------------------------

UNIQUE_ORDERS: dict[str, Any] = {
    "name": "unique-orders",
    "primaryKey": ["customer", "ordered_on"],
    "fields": [
        {"name": "customer", "x-loadbay": {"transforms": ["trim"]}},
        {"name": "ordered_on", "type": "date"},
        {"name": "ref", "type": "integer", "constraints": {"unique": True}},
    ],
}


@pytest.fixture
def unique_import(runtime: Runtime, demo_org: DemoOrgFactory) -> imports.CreatedImport:
    setup = demo_org(runtime, schema=UNIQUE_ORDERS)
    return imports.create_import(runtime, setup.org, setup.template.id, "unique.csv")


def _send(
    rt: Runtime, created: imports.CreatedImport, seq: int, first_row: int, **cols: Any
) -> int:
    body = _ipc(_strings(**cols))
    return uploads.receive_batch(rt, created.import_id, created.upload_token, seq, first_row, body)


def test_unique_and_primary_key_hold_across_batches(
    runtime: Runtime, unique_import: imports.CreatedImport
) -> None:
    first = {
        "customer": ["Ann", "Bo"],
        "ordered_on": ["2024-01-01", "2024-01-01"],
        "ref": ["7", "8"],
    }
    assert _send(runtime, unique_import, 0, 2, **first) == 2
    with pytest.raises(Invalid) as caught:
        _send(
            runtime,
            unique_import,
            1,
            4,
            customer=[" Bo ", "Cy", "Dee"],
            ordered_on=["2024-01-01", "2024-01-02", "2024-01-03"],
            ref=["9", "07", "10"],
        )
    assert [(d["row"], d["field"], d["code"], d["message"]) for d in caught.value.details] == [
        (
            4,
            None,  # a row error, as in Frictionless
            "primary-key",
            'The key (customer, ordered_on) "Bo", "2024-01-01" is already in row 3: '
            "each row's key must be unique.",
        ),
        (5, "ref", "unique-error", '"07" is already in row 2: ref must be unique.'),
    ]
    assert len(_batches(runtime, unique_import.import_id)) == 1
    # A refused batch leaves no values behind: the corrected batch passes.
    fixed = {"customer": ["Cy"], "ordered_on": ["2024-01-02"], "ref": ["11"]}
    assert _send(runtime, unique_import, 1, 4, **fixed) == 1
    with pytest.raises(Invalid):
        _send(runtime, unique_import, 2, 5, customer=["Eve"], ordered_on=["2024-01-09"], ref=["11"])


def test_unique_values_are_stored_as_keyed_digests_and_deleted_with_the_import(
    runtime: Runtime, unique_import: imports.CreatedImport
) -> None:
    from server import retention

    _send(
        runtime, unique_import, 0, 2, customer=["Zyxwab"], ordered_on=["2024-01-01"], ref=["4242"]
    )
    with runtime.sessions() as session:
        stored = list(session.scalars(select(db.UniqueSet)))
        assert list(session.scalars(select(db.UniqueValue))) == []  # no row a value
    # One row for the batch: the ref's digest and the primary key's, sorted, each first
    # met in row 2.
    assert [(s.import_id, s.seq, len(s.digests)) for s in stored] == [
        (unique_import.import_id, 0, 32)
    ]
    (batch,) = stored
    digests = [batch.digests[:16], batch.digests[16:]]
    assert digests == sorted(digests) and digests[0] != digests[1]
    assert batch.first_rows == (2).to_bytes(4, "little") * 2
    for text in (b"Zyxwab", b"4242", (4242).to_bytes(8, "big"), (4242).to_bytes(8, "little")):
        assert text not in batch.digests
    assert retention.delete_import_data(runtime, unique_import.import_id)
    with runtime.sessions() as session:
        assert list(session.scalars(select(db.UniqueSet))) == []


def test_the_same_values_in_another_import_are_not_repeats(
    runtime: Runtime, demo_org: DemoOrgFactory
) -> None:
    setup = demo_org(runtime, schema=UNIQUE_ORDERS)
    for name in ("a.csv", "b.csv"):
        created = imports.create_import(runtime, setup.org, setup.template.id, name)
        assert _send(runtime, created, 0, 2, customer=["Ann"], ordered_on=["2024-01-01"], ref=["1"])
    with runtime.sessions() as session:
        sets = list(session.scalars(select(db.UniqueSet.digests)))
    digests = [d[i : i + 16] for d in sets for i in (0, 16)]
    assert len(digests) == 4 and len(set(digests)) == 4  # keyed per import: nothing links them


def test_many_batches_find_a_repeat_in_any_earlier_one(
    runtime: Runtime, unique_import: imports.CreatedImport
) -> None:
    """A whole-number unique field (one AES block a value) and a text key (BLAKE2b), over
    several batches: a repeat of batch 1's values in batch 3 names batch 1's rows."""
    for seq in range(3):
        refs = [str(seq * 100 + i) for i in range(50)]
        names = [f"n{seq}-{i}" for i in range(50)]
        first = 2 + seq * 50
        assert _send(runtime, unique_import, seq, first, customer=names,
                     ordered_on=["2024-01-01"] * 50, ref=refs) == 50  # fmt: skip
    with pytest.raises(Invalid) as caught:
        _send(runtime, unique_import, 3, 152, customer=["n1-7", "new"],
              ordered_on=["2024-01-01", "2024-01-01"], ref=["999", "105"])  # fmt: skip
    found = [(d["row"], d["field"], d["code"]) for d in caught.value.details]
    assert found == [(152, None, "primary-key"), (153, "ref", "unique-error")]
    messages = [d["message"] for d in caught.value.details]
    assert "row 59" in messages[0] and "row 57" in messages[1]  # 52 + 7 and 52 + 5
    assert _send(runtime, unique_import, 3, 152, customer=["n1-7x"],
                 ordered_on=["2024-01-01"], ref=["999"]) == 1  # fmt: skip


def test_an_import_begun_with_a_row_a_value_keeps_them(
    runtime: Runtime, unique_import: imports.CreatedImport
) -> None:
    """An upload that began before the per-batch arrays (values in unique_values) is
    checked against those rows to its end, and adds to them."""
    from pipeline.template import parse_template
    from server import batches

    with runtime.sessions.begin() as session:
        imp = session.get(db.Import, unique_import.import_id)
        assert imp is not None
        org = session.get(db.Organisation, imp.org_id)
        template = session.get(db.Template, imp.template_id)
        assert org is not None and template is not None
        earlier = uploads.SeenValues(session, imp.id, batches.data_key(runtime, org, imp))
        body = _ipc(_strings(customer=["Ann"], ordered_on=["2024-01-01"], ref=["7"]))
        uploads.checked_typed_batch(body, parse_template(template.schema), 2, earlier)
        earlier.record()
    with pytest.raises(Invalid) as caught:
        _send(runtime, unique_import, 1, 3, customer=["Bo"], ordered_on=["2024-01-01"], ref=["7"])
    assert [(d["row"], d["code"]) for d in caught.value.details] == [(3, "unique-error")]
    assert _send(runtime, unique_import, 1, 3, customer=["Bo"], ordered_on=["2024-01-01"],
                 ref=["8"]) == 1  # fmt: skip
    with runtime.sessions() as session:
        assert list(session.scalars(select(db.UniqueSet))) == []
        assert len(list(session.scalars(select(db.UniqueValue)))) == 4


def test_row_numbers_sent_with_the_batch_are_used_in_errors(
    runtime: Runtime, created: imports.CreatedImport
) -> None:
    """Rows the user deleted leave gaps; the server reports the numbers the user sees."""
    table = _strings(customer=["Ann", None, "Cy"]).append_column(
        "__row", pa.array([2, 5, 9], pa.int64())
    )
    with pytest.raises(Invalid) as caught:
        uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, _ipc(table))
    assert [(e["row"], e["field"]) for e in caught.value.details] == [(5, "customer")]


@pytest.mark.parametrize(
    ("numbers", "message"),
    [
        (pa.array([3, 2], pa.int64()), "must hold increasing row numbers"),
        (pa.array([0, 1], pa.int64()), "must hold increasing row numbers"),
        (pa.array([2, None], pa.int64()), "must hold whole row numbers"),
        (pa.array(["2", "3"], pa.string()), "must hold whole row numbers"),
    ],
)
def test_bad_row_numbers_are_refused(
    runtime: Runtime, created: imports.CreatedImport, numbers: pa.Array, message: str
) -> None:
    table = _strings(customer=["Ann", "Bo"]).append_column("__row", numbers)
    with pytest.raises(Invalid, match=message):
        uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, _ipc(table))
