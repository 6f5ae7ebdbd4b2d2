"""finish(): once the last batch of an import lands at a destination, the destination's
finish() runs exactly once before that delivery counts as delivered (S3's manifest, a
PostgreSQL replace); when it fails, the delivery is retried (write and finish again)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from destinations import s3 as s3_module
from destinations.errors import RetryableDeliveryError
from server import attempts, db, deliveries, imports, orgs, uploads
from tests.conftest import CONTACTS_SCHEMA
from tests.destinations.conftest import pg_target  # noqa: F401 - a fixture used here
from tests.destinations.stores import Target, s3_client

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, RuntimeFactory

pytestmark = pytest.mark.parametrize("store", ["sqlite"])

CSV = (
    "Full name,Email\nAda Lovelace,ada@example.com\nGrace Hopper,grace@example.com\n"
    "Alan Turing,alan@example.com\n"
)
SCHEMA = {**CONTACTS_SCHEMA, "primaryKey": ["email"]}


class Made:
    def __init__(self, rt: Any, org: db.Organisation, import_id: str, ids: list[int]) -> None:
        self.rt, self.org, self.import_id, self.delivery_ids = rt, org, import_id, ids


@pytest.fixture
def make(runtime_factory: RuntimeFactory, batch_factory: BatchFactory) -> Any:
    rt = runtime_factory(allow_private_networks=("127.0.0.0/8",))

    def build(kind: str, config: dict[str, Any]) -> Made:
        org = orgs.create_organisation(rt, "Finish Org", ["https://host.example"])
        template = orgs.create_template(rt, org, SCHEMA)
        orgs.create_destination(rt, org, template, kind, "target", config)
        created = imports.create_import(rt, org, template.id, "contacts.csv")
        for seq, (offset, length) in enumerate([(0, 2), (2, 1)]):
            body = batch_factory(CSV, SCHEMA, offset=offset, length=length)
            token = created.upload_token
            uploads.receive_batch(rt, created.import_id, token, seq, offset + 2, body)
        ids = imports.submit(rt, created.import_id, created.upload_token, 2, 3)
        return Made(rt, org, created.import_id, ids)

    return build


def _s3_config(url: str, bucket: str) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "endpoint_url": url,
        "access_key_id": "loadbay-test",
        "secret_access_key": "moto-secret-" + "x" * 20,
    }


def test_the_manifest_is_written_once_the_last_batch_lands(
    make: Any,
    moto_url: str,
) -> None:
    client = s3_client(moto_url)
    client.create_bucket(Bucket="finish-manifest")
    made = make("s3", _s3_config(moto_url, "finish-manifest"))
    first, second = made.delivery_ids
    assert deliveries.deliver(made.rt, second) == "delivered"  # order does not matter
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="finish-manifest")["Contents"]]
    assert len(keys) == 1 and keys[0].endswith("/00001.parquet")
    assert deliveries.deliver(made.rt, first) == "delivered"
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="finish-manifest")["Contents"])
    prefix = keys[0].rsplit("/", 1)[0]
    assert prefix.startswith(f"{made.org.id}/contacts/")
    assert prefix.endswith(f"/{made.import_id}")
    assert keys == [f"{prefix}/00000.parquet", f"{prefix}/00001.parquet", f"{prefix}/manifest.json"]
    manifest = json.loads(
        client.get_object(Bucket="finish-manifest", Key=f"{prefix}/manifest.json")["Body"].read()
    )
    assert manifest["import_id"] == made.import_id
    assert (manifest["batch_count"], manifest["row_count"]) == (2, 3)
    assert [(p["batch"], p["key"], p["rows"]) for p in manifest["parts"]] == [
        (0, f"{prefix}/00000.parquet", 2),
        (1, f"{prefix}/00001.parquet", 1),
    ]
    for part in manifest["parts"]:
        head = client.head_object(Bucket="finish-manifest", Key=part["key"])
        assert head["ContentLength"] == part["size"]


def test_a_failed_finish_retries_the_last_delivery(
    make: Any,
    moto_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = s3_client(moto_url)
    client.create_bucket(Bucket="finish-retry")
    made = make("s3", _s3_config(moto_url, "finish-retry"))
    first, second = made.delivery_ids
    assert deliveries.deliver(made.rt, first) == "delivered"
    calls: list[str] = []

    def refuse(self: Any, done: Any) -> Any:
        calls.append(done.import_id)
        raise RetryableDeliveryError("the store is busy")

    with monkeypatch.context() as patched:
        patched.setattr(s3_module.S3Destination, "finish", refuse)
        assert deliveries.deliver(made.rt, second).startswith("retry in ")
    assert calls == [made.import_id]
    with made.rt.sessions() as session:
        row = session.get(db.Delivery, second)
        assert row is not None and row.status == "pending"
    listed = [o["Key"] for o in client.list_objects_v2(Bucket="finish-retry")["Contents"]]
    assert not any(key.endswith("manifest.json") for key in listed)
    with made.rt.sessions.begin() as session:
        row = session.get(db.Delivery, second)
        assert row is not None
        row.next_attempt_at = None
    assert deliveries.deliver(made.rt, second) == "delivered"
    listed = [o["Key"] for o in client.list_objects_v2(Bucket="finish-retry")["Contents"]]
    assert sum(key.endswith("manifest.json") for key in listed) == 1
    outcomes = [(a.seq, a.outcome) for a in attempts.attempts_of(made.rt, made.import_id)]
    assert outcomes == [(0, "delivered"), (1, "retry"), (1, "delivered")]


def test_replace_swaps_the_table_when_the_last_batch_lands(
    make: Any,
    pg_target: Target,  # noqa: F811 - the fixture
) -> None:
    with pg_target.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS public.finish_contacts")
        conn.execute(
            "CREATE TABLE public.finish_contacts (full_name text, email text, phone text, "
            "country text, signup_date date, amount double precision)"
        )
        conn.execute(
            "INSERT INTO public.finish_contacts (full_name, email) "
            "VALUES ('Old Row', 'old@example.com')"
        )
        config = {
            "dsn": pg_target.dsn(),
            "table": "finish_contacts",
            "mode": "replace",
            "sslmode": "disable",
        }
        made = make("postgresql", config)
        first, second = made.delivery_ids
        assert deliveries.deliver(made.rt, first) == "delivered"
        rows = conn.execute("SELECT email FROM public.finish_contacts").fetchall()
        assert rows == [("old@example.com",)]  # staged, not yet visible
        assert deliveries.deliver(made.rt, second) == "delivered"
        rows = conn.execute("SELECT email FROM public.finish_contacts ORDER BY email").fetchall()
        assert rows == [("ada@example.com",), ("alan@example.com",), ("grace@example.com",)]
        staged = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'loadbay_stage_%'"
        ).fetchone()
        assert staged == (0,)


def test_a_plugin_without_finish_or_write_result_still_delivers(
    make: Any,
    moto_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3_client(moto_url).create_bucket(Bucket="finish-legacy")
    made = make("s3", _s3_config(moto_url, "finish-legacy"))
    written: list[int] = []

    class Legacy:  # written before write() returned a WriteResult and finish() existed
        kind = "legacy"

        def write(self, batch: Any) -> None:
            written.append(batch.seq)

    monkeypatch.setattr(deliveries.destinations, "create", lambda *args: Legacy())
    assert [deliveries.deliver(made.rt, d) for d in made.delivery_ids] == ["delivered"] * 2
    assert written == [0, 1]
    outcomes = [(a.outcome, a.status_code) for a in attempts.attempts_of(made.rt, made.import_id)]
    assert outcomes == [("delivered", None), ("delivered", None)]
