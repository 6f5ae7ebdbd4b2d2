"""Stored rows are deleted when an import expires, or at once on request (crypto-shredding)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from server import batches, db, imports, retention, uploads
from server.errors import NotFound
from server.runtime import Runtime

if TYPE_CHECKING:
    from conftest import BatchFactory, DemoOrgFactory

CSV = "Full name,Email\nRetention Probe,probe@example.com\n"


def _stored_import(
    rt: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> tuple[str, str]:
    setup = demo_org(rt, webhook_urls=["https://127.0.0.1:9/in"])
    created = imports.create_import(rt, setup.org, setup.template.id, "probe.csv")
    uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, batch_factory(CSV))
    imports.submit(rt, created.import_id, created.upload_token, 1, 1)
    return created.import_id, created.upload_token


def _blob_files(rt: Runtime) -> list[Path]:
    return [p for p in rt.settings.blob_dir.rglob("*") if p.is_file()]


def test_purge_shreds_only_expired_imports(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    old_id, _ = _stored_import(runtime, demo_org, batch_factory)
    new_id, _ = _stored_import(runtime, demo_org, batch_factory)
    assert len(_blob_files(runtime)) == 2
    with runtime.sessions.begin() as session:
        old = session.get(db.Import, old_id)
        assert old is not None
        created_at = old.created_at
        assert old.expires_at - created_at == dt.timedelta(days=runtime.settings.retention_days)
        old.expires_at = db.utcnow() - dt.timedelta(seconds=1)

    assert retention.purge_expired(runtime) == [old_id]
    assert retention.purge_expired(runtime) == []  # idempotent

    remaining = _blob_files(runtime)
    assert len(remaining) == 1 and new_id in str(remaining[0])
    with runtime.sessions() as session:
        old = session.get(db.Import, old_id)
        assert old is not None
        assert old.status == "expired"
        assert old.wrapped_data_key is None  # the data key is gone: crypto-shredded
        stored = session.scalar(
            select(func.count()).select_from(db.Batch).where(db.Batch.import_id == old_id)
        )
        assert stored == 0
        delivery = session.scalars(select(db.Delivery).where(db.Delivery.import_id == old_id)).one()
        assert delivery.status == "failed"
        assert delivery.last_error == "import data expired before delivery"
        assert old.file_name == "probe.csv" and old.row_count == 1  # metadata stays
        with pytest.raises(NotFound):
            batches.load_batch(runtime, session, old, 0)


def test_delete_on_request(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    import_id, token = _stored_import(runtime, demo_org, batch_factory)
    assert retention.delete_import_data(runtime, import_id) is True
    assert retention.delete_import_data(runtime, import_id) is False
    assert _blob_files(runtime) == []
    assert imports.status(runtime, import_id, token).status == "deleted"
