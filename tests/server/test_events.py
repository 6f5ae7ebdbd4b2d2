"""Events: every deletion of an import's data is recorded (kind, actor, time, import) in
the transaction that deletes it; metadata only."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from server import db, events, imports, retention, uploads
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory

CSV = "Full name,Email\nEvent Probe,probe@example.com\n"


def _stored(rt: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory) -> tuple[str, str]:
    setup = demo_org(rt)
    created = imports.create_import(rt, setup.org, setup.template.id, "probe.csv")
    uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, batch_factory(CSV))
    imports.submit(rt, created.import_id, created.upload_token, 1, 1)
    return setup.org.id, created.import_id


def test_deleting_an_import_records_who_and_when(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    org_id, import_id = _stored(runtime, demo_org, batch_factory)
    before = db.utcnow()
    assert retention.delete_import_data(runtime, import_id, actor="api-key:key_123")
    assert not retention.delete_import_data(runtime, import_id)  # already gone: no new event
    submitted, event = events.list_for(runtime, org_id)
    assert (submitted.kind, submitted.actor) == ("import.submitted", "importer")
    assert submitted.detail == {"rows": 1, "batches": 1}
    assert (event.kind, event.actor, event.import_id, event.org_id) == (
        "import.deleted",
        "api-key:key_123",
        import_id,
        org_id,
    )
    assert before <= event.at <= db.utcnow()
    assert event.detail == {"rows": 1, "batches": 1}
    assert "Event Probe" not in repr(event)


def test_expiry_is_recorded_with_the_retention_actor(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    org_id, import_id = _stored(runtime, demo_org, batch_factory)
    _, kept = _stored(runtime, demo_org, batch_factory)
    with runtime.sessions.begin() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None
        imp.expires_at = db.utcnow() - dt.timedelta(minutes=1)
    assert retention.purge_expired(runtime) == [import_id]
    [event] = events.list_for(runtime, org_id, kind="import.expired")
    assert (event.kind, event.actor, event.import_id) == ("import.expired", "retention", import_id)
    assert events.list_for(runtime, org_id, import_id=kept) == []


def test_the_cli_deletes_as_cli(
    runtime: Runtime,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from server import cli
    from server.runtime import Runtime as RuntimeClass

    org_id, import_id = _stored(runtime, demo_org, batch_factory)
    monkeypatch.setattr(RuntimeClass, "from_settings", staticmethod(lambda settings: runtime))
    result = CliRunner().invoke(cli.app, ["delete-import", import_id])
    assert result.exit_code == 0, result.output
    [event] = events.list_for(runtime, org_id, kind="import.deleted")
    assert (event.kind, event.actor) == ("import.deleted", "cli")


def test_a_deletion_and_its_event_commit_together(
    runtime: Runtime,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the event cannot be written the data is not marked deleted (one transaction)."""
    org_id, import_id = _stored(runtime, demo_org, batch_factory)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("event store down")

    monkeypatch.setattr(events, "record", broken)
    with pytest.raises(RuntimeError):
        retention.delete_import_data(runtime, import_id)
    with runtime.sessions() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None and imp.wrapped_data_key is not None
        assert session.scalar(select(func.count()).select_from(db.Event)) == 1  # submitted


def test_events_list_by_cursor_and_kind(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    org_id, first = _stored(runtime, demo_org, batch_factory)
    with runtime.sessions.begin() as session:
        for kind in ("import.deleted", "import.expired", "import.deleted"):
            events.record(session, org_id=org_id, kind=kind, actor="cli", import_id=first)
    listed = events.list_for(runtime, org_id)[1:]  # after its import.submitted
    assert [e.kind for e in listed] == ["import.deleted", "import.expired", "import.deleted"]
    assert [e.id for e in events.list_for(runtime, org_id, after=listed[0].id, limit=1)] == [
        listed[1].id
    ]
    assert len(events.list_for(runtime, org_id, kind="import.deleted")) == 2
    assert events.list_for(runtime, "org_nobody") == []


def test_an_unknown_reason_is_refused(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="reason must be one of deleted, expired"):
        retention.delete_import_data(runtime, "imp_x", reason="vanished")
