"""Offboarding: `loadbay org export ORG DIR` writes everything an organisation has, secrets
redacted; `loadbay org delete ORG` shreds all of it and leaves a tombstone only."""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from server import (
    db,
    deliveries,
    jobs,
    keys,
    mappings,
    offboarding,
    orgs,
    retention,
    templates,
    users,
)
from server.cli import app
from server.errors import Gone, Invalid, NotFound, Unauthorized
from server.models import accounts
from server.permissions import Role
from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA
from tests.server.test_blobs_s3 import s3_env  # noqa: F401 - a fixture
from tests.server.test_rotation import csv_of, environment, stored_import

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, OrgSetup, Receiver, RuntimeFactory

CSV = "Full name,Email\nAda Lovelace,ada@example.com\nGrace Hopper,grace@example.com\n"
HEADERS = ["Name", "E-mail"]
MAPPING = {"full_name": "Name", "email": "E-mail"}


class Tenant:
    """An organisation with something in every table: two template versions, a webhook
    with a secret, a delivered import of two batches, a deleted import, a mapping
    memory, a secret key and an idempotency key."""

    def __init__(
        self, rt: Runtime, setup: OrgSetup, body: bytes, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.setup = setup
        schema = copy.deepcopy(CONTACTS_SCHEMA)
        schema["description"] = "second version"
        templates.replace_template(rt, setup.org.id, setup.template.id, schema)
        self.kept = stored_import(rt, setup, body)
        self.deleted = stored_import(rt, setup, body, batches=1)
        retention.delete_import_data(rt, self.deleted, actor="cli")
        monkeypatch.setattr(jobs, "_runtime", lambda: rt)
        with rt.sessions() as session:
            ids = session.scalars(
                select(db.Delivery.id).where(db.Delivery.import_id == self.kept)
            ).all()
        assert [deliveries.deliver(rt, i) for i in ids] == ["delivered", "delivered"]
        mappings.remember(rt, setup.template.id, HEADERS, MAPPING, "203.0.113.7")
        self.secret = keys.create_key(rt, setup.org.id, "tests").secret
        with rt.sessions.begin() as session:
            session.add(
                db.IdempotencyKey(org_id=setup.org.id, key_hash="a" * 64, request_hash="b" * 64)
            )


@pytest.fixture
def tenants(
    runtime: Runtime,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Tenant, Tenant]:
    body = batch_factory(CSV)
    return (
        Tenant(runtime, demo_org(runtime, webhook_urls=[receiver.url]), body, monkeypatch),
        Tenant(runtime, demo_org(runtime, webhook_urls=[receiver.url]), body, monkeypatch),
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_writes_everything_with_secrets_redacted(
    runtime: Runtime, tenants: tuple[Tenant, Tenant], tmp_path: Path
) -> None:
    a, b = tenants
    out = tmp_path / "export" / "org-a"
    done = CliRunner().invoke(
        app, ["org", "export", a.setup.org.id, str(out)], env=environment(runtime)
    )
    assert done.exit_code == 0, done.output
    assert f"exported {a.setup.org.id}: 1 import(s), 4 row(s), 4 file(s)" in done.stdout
    assert out.stat().st_mode & 0o777 == 0o700
    assert not list(out.parent.glob(".org-a.partial-*"))

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == offboarding.EXPORT_FORMAT
    assert manifest["organisation"]["id"] == a.setup.org.id
    assert manifest["organisation"]["name"] == "Test Org"
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == {
        f"imports/{a.kept}.csv",
        "templates.json",
        "destinations.json",
        "events.ndjson",
    }
    for name, entry in listed.items():
        assert entry["sha256"] == _sha256(out / name)
        assert entry["bytes"] == (out / name).stat().st_size
        assert (out / name).stat().st_mode & 0o777 == 0o600
    assert {i["id"]: (i["file"], i["status"]) for i in manifest["imports"]} == {
        a.kept: (f"imports/{a.kept}.csv", "delivered"),
        a.deleted: (None, "deleted"),
    }

    rows = list(csv.DictReader(io.StringIO((out / f"imports/{a.kept}.csv").read_text())))
    assert [r["full_name"] for r in rows] == ["Ada Lovelace", "Grace Hopper"] * 2
    assert (out / f"imports/{a.kept}.csv").read_text() == csv_of(runtime, a.kept)

    [template] = json.loads((out / "templates.json").read_text())
    assert template["id"] == a.setup.template.id
    assert [v["version"] for v in template["versions"]] == [1, 2]
    assert template["versions"][1]["schema"]["description"] == "second version"

    [destination] = json.loads((out / "destinations.json").read_text())
    assert destination["id"] == a.setup.destination.id
    assert destination["config"]["secret"] == {"set": True}
    assert a.setup.secret is not None
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert a.setup.secret.encode() not in everything
    assert a.setup.secret.removeprefix("whsec_").encode() not in everything
    assert b.kept.encode() not in everything  # nothing of the other organisation

    kinds = [json.loads(line)["kind"] for line in (out / "events.ndjson").read_text().splitlines()]
    assert kinds == ["import.submitted", "import.submitted", "import.deleted"]
    with runtime.sessions() as session:
        exported = session.scalars(
            select(db.Event.kind).where(db.Event.org_id == a.setup.org.id).order_by(db.Event.id)
        ).all()
    assert exported == [
        "import.submitted",
        "import.submitted",
        "import.deleted",
        offboarding.ORGANISATION_EXPORTED,
    ]


def test_export_refuses_an_existing_directory_and_unknown_organisations(
    runtime: Runtime, tenants: tuple[Tenant, Tenant], tmp_path: Path
) -> None:
    a, _ = tenants
    (tmp_path / "taken").mkdir()
    with pytest.raises(Invalid, match="exists already"):
        offboarding.export_organisation(runtime, a.setup.org.id, tmp_path / "taken")
    with pytest.raises(NotFound):
        offboarding.export_organisation(runtime, "org_nope", tmp_path / "nope")
    with pytest.raises(Invalid, match="export format"):
        offboarding.export_organisation(runtime, a.setup.org.id, tmp_path / "x", "docx")
    assert not [p for p in tmp_path.iterdir() if p.name in ("nope", "x") or ".partial-" in p.name]
    assert list((tmp_path / "taken").iterdir()) == []


def test_a_failed_export_leaves_no_directory(
    runtime: Runtime,
    tenants: tuple[Tenant, Tenant],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _ = tenants

    def refused(*args: Any, **kwargs: Any) -> int:
        raise Gone("the rows went away")

    monkeypatch.setattr(offboarding.exports, "export_import", refused)
    with pytest.raises(Gone):
        offboarding.export_organisation(runtime, a.setup.org.id, tmp_path / "out")
    assert not [p for p in tmp_path.iterdir() if p.name == "out" or ".partial-" in p.name]


def _rows_of(runtime: Runtime, org_id: str, template_id: str) -> dict[str, int]:
    """How many rows of each table still name the organisation (directly or through its
    imports, deliveries or templates)."""
    params = {"org": org_id, "template": template_id}
    imports = "SELECT id FROM imports WHERE org_id = :org"
    queries = {
        "organisations": "SELECT count(*) FROM organisations WHERE id = :org",
        "delivery_attempts": "SELECT count(*) FROM delivery_attempts WHERE delivery_id IN "
        f"(SELECT id FROM deliveries WHERE import_id IN ({imports}))",
        "deliveries": f"SELECT count(*) FROM deliveries WHERE import_id IN ({imports})",
        "batches": f"SELECT count(*) FROM batches WHERE import_id IN ({imports})",
        "unique_values": f"SELECT count(*) FROM unique_values WHERE import_id IN ({imports})",
        "unique_sets": f"SELECT count(*) FROM unique_sets WHERE import_id IN ({imports})",
        "mapping_memories": "SELECT count(*) FROM mapping_memories WHERE template_id = :template",
        "template_versions": "SELECT count(*) FROM template_versions WHERE template_id = :template",
    }
    for table in ("events", "imports", "destinations", "templates", "secret_keys"):
        queries[table] = f"SELECT count(*) FROM {table} WHERE org_id = :org"  # noqa: S608
    queries["idempotency_keys"] = "SELECT count(*) FROM idempotency_keys WHERE org_id = :org"
    for table in ("memberships", "invitations", "org_security", "user_sessions"):
        queries[table] = f"SELECT count(*) FROM {table} WHERE org_id = :org"  # noqa: S608
    # A member of this organisation only goes with it (the users of no other organisation).
    sole = (
        "SELECT user_id FROM memberships WHERE org_id = :org AND user_id NOT IN "
        "(SELECT user_id FROM memberships WHERE org_id <> :org)"
    )
    queries["users"] = f"SELECT count(*) FROM users WHERE id IN ({sole})"  # noqa: S608
    for table in ("recovery_codes", "sign_in_failures"):
        queries[table] = f"SELECT count(*) FROM {table} WHERE user_id IN ({sole})"  # noqa: S608
    with runtime.sessions() as session:
        return {t: int(session.scalar(text(q), params) or 0) for t, q in queries.items()}


def test_delete_shreds_everything_and_keeps_a_tombstone(
    runtime: Runtime, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    org_id = a.setup.org.id
    password = "a long pass phrase for tests"
    alice = users.add_user(
        runtime, org_id, "alice@a.example", "Alice", password, Role.OWNER, actor="t"
    )
    bob = users.add_user(
        runtime, b.setup.org.id, "bob@b.example", "Bob", password, Role.OWNER, actor="t"
    )
    with runtime.sessions.begin() as session:  # bob is a member of both
        session.add(accounts.Membership(org_id=org_id, user_id=bob.id, role="viewer"))
    users.record_failure(runtime, alice.id, "127.0.0.1", db.utcnow(), "password")
    before = _rows_of(runtime, org_id, a.setup.template.id)
    other = _rows_of(runtime, b.setup.org.id, b.setup.template.id)
    assert set(before) == set(offboarding.SHREDDED)
    assert (before["users"], before["memberships"], before["sign_in_failures"]) == (1, 2, 1)
    # Everything is there to be shredded (unique_sets only for templates with a unique rule,
    # unique_values only for imports begun before them; no invitation, session, security
    # rule or recovery code was made here).
    empty = {"unique_values", "unique_sets", "invitations", "org_security", "user_sessions"}
    empty.add("recovery_codes")
    assert {t for t, n in before.items() if n == 0} == empty
    blobs = runtime.settings.blob_dir
    assert list((blobs / org_id).rglob("*.sealed"))

    done = CliRunner().invoke(app, ["org", "delete", org_id, "--yes"], env=environment(runtime))
    assert done.exit_code == 0, done.output
    assert "its tombstone remains" in done.stdout

    assert set(_rows_of(runtime, org_id, a.setup.template.id).values()) == {0}
    with runtime.sessions() as session:
        assert session.get(accounts.User, alice.id) is None  # of this organisation only
        assert session.get(accounts.User, bob.id) is not None  # still in the other one
        assert session.get(accounts.Membership, (b.setup.org.id, bob.id)) is not None
    assert not (blobs / org_id).exists()
    with runtime.sessions() as session:
        tombstone = session.get(db.OrganisationTombstone, org_id)
        assert tombstone is not None
        assert tombstone.name_hash == hashlib.sha256(b"Test Org").hexdigest()
        assert tombstone.actor == "cli"
        assert tombstone.detail == {
            "imports": 2,
            "templates": 1,
            "destinations": 1,
            "secret_keys": 1,
            "events": 3,  # two import.submitted, one import.deleted
        }
        assert session.scalar(select(func.count()).select_from(db.OrganisationTombstone)) == 1
    # Its keys no longer open anything.
    with pytest.raises(Unauthorized):
        keys.authenticate(runtime, a.secret)
    with pytest.raises(NotFound):
        orgs.organisation_by_key(runtime, a.setup.org.publishable_key)
    # Asked again, the answer says when and by whom.
    again = CliRunner().invoke(app, ["org", "delete", org_id, "--yes"], env=environment(runtime))
    assert again.exit_code == 2
    assert f"Organisation {org_id} was deleted on" in again.stderr
    assert "by cli" in again.stderr

    # The other organisation is whole.
    assert {
        t: n for t, n in _rows_of(runtime, b.setup.org.id, b.setup.template.id).items()
    } == other | {"users": 1}  # bob now belongs to it alone
    assert "Grace Hopper" in csv_of(runtime, b.kept)
    assert keys.authenticate(runtime, b.secret).id == b.setup.org.id
    assert list((blobs / b.setup.org.id).rglob("*.sealed"))


def test_delete_asks_before_it_shreds(runtime: Runtime, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    done = CliRunner().invoke(
        app, ["org", "delete", a.setup.org.id], input="n\n", env=environment(runtime)
    )
    assert done.exit_code == 1
    with runtime.sessions() as session:
        assert session.get(db.Organisation, a.setup.org.id) is not None


def test_every_table_is_shredded_or_is_the_tombstones() -> None:
    """A new table must say what offboarding does with it (add it to SHREDDED)."""
    kept = {"organisation_tombstones", "audit_entries", "audit_head"}  # see _shredding
    assert set(db.Base.metadata.tables) == set(offboarding.SHREDDED) | kept


def test_delete_empties_the_s3_prefix_of_the_organisation_only(
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    s3_env: str,  # noqa: F811 - the fixture imported above
) -> None:
    rt = runtime_factory(blob_s3_bucket=s3_env, blob_s3_prefix="offboarding")
    body = batch_factory(CSV)
    a, b = demo_org(rt), demo_org(rt)
    stored_import(rt, a, body)
    kept = stored_import(rt, b, body)

    def objects(org_id: str) -> list[str]:
        listing = boto3.client("s3").list_objects_v2(Bucket=s3_env, Prefix=f"offboarding/{org_id}/")
        return [item["Key"] for item in listing.get("Contents", [])]

    assert len(objects(a.org.id)) == 2 and len(objects(b.org.id)) == 2
    offboarding.delete_organisation(rt, a.org.id, actor="tests")
    assert objects(a.org.id) == []
    assert len(objects(b.org.id)) == 2
    assert "Grace Hopper" in csv_of(rt, kept)
