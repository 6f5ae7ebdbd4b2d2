"""`loadbay keys rotate-master`: organisation keys re-wrapped under a new master key in one
transaction; data keys, sealed settings and blobs untouched; safe to interrupt and re-run."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from server import crypto, db, exports, imports, uploads
from server import destinations as server_destinations
from server.cli import app
from server.errors import Conflict, Invalid
from server.rotation import rotate_master
from server.runtime import Runtime
from server.vault import Vault

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, OrgSetup, Receiver, RuntimeFactory

CSV = "Full name,Email\nAda Lovelace,ada@example.com\nGrace Hopper,grace@example.com\n"


def environment(rt: Runtime) -> dict[str, str]:
    """The environment a `loadbay` command needs to open `rt`'s installation."""
    s = rt.settings
    return {
        "LOADBAY_DATA_DIR": str(s.data_dir),
        "DATABASE_URL": s.database_url,
        "LOADBAY_BLOB_DIR": str(s.blob_dir),
        "LOADBAY_MASTER_KEY_FILE": str(s.master_key_file),
        "REDIS_URL": s.redis_url or "",
    }


def stored_import(rt: Runtime, setup: OrgSetup, body: bytes, batches: int = 2) -> str:
    """An import of `batches` stored batches (each the rows of `body`)."""
    created = imports.create_import(rt, setup.org, setup.template.id, "contacts.csv")
    rows = 0
    for seq in range(batches):
        rows += uploads.receive_batch(
            rt, created.import_id, created.upload_token, seq, 2 + rows, body
        )
    imports.submit(rt, created.import_id, created.upload_token, batches, rows)
    return created.import_id


def csv_of(rt: Runtime, import_id: str) -> str:
    out = io.BytesIO()
    exports.export_import(rt, import_id, "csv", out)
    return out.getvalue().decode()


def blob_files(rt: Runtime) -> dict[Path, tuple[bytes, int]]:
    return {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(rt.settings.blob_dir.rglob("*"))
        if p.is_file()
    }


def _wrapped(rt: Runtime) -> dict[str, Any]:
    with rt.sessions() as session:
        return {
            "orgs": {o.id: o.wrapped_key for o in session.query(db.Organisation)},
            "imports": {i.id: i.wrapped_data_key for i in session.query(db.Import)},
            "destinations": {d.id: d.sealed_config for d in session.query(db.Destination)},
        }


def test_rotation_rewraps_org_keys_only(
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    rt = runtime_factory()
    a = demo_org(rt, webhook_urls=[receiver.url])
    b = demo_org(rt)
    body = batch_factory(CSV)
    ids = [stored_import(rt, a, body), stored_import(rt, b, body)]
    before_rows = {i: csv_of(rt, i) for i in ids}
    before_blobs = blob_files(rt)
    before = _wrapped(rt)
    mapping_key = rt.vault.mapping_key(a.org.id, a.org.wrapped_key, a.template.id)
    assert len(before_blobs) == 4

    new_file = tmp_path / "elsewhere" / "master.key.new"
    done = CliRunner().invoke(
        app, ["keys", "rotate-master", "--new-key-file", str(new_file)], env=environment(rt)
    )
    assert done.exit_code == 0, done.output
    assert "re-wrapped 2 organisation key(s)" in done.stdout
    assert new_file.stat().st_mode & 0o777 == 0o600

    after = _wrapped(rt)
    assert after["imports"] == before["imports"]  # data keys untouched
    assert after["destinations"] == before["destinations"]  # sealed settings untouched
    assert all(after["orgs"][o] != before["orgs"][o] for o in before["orgs"])
    assert blob_files(rt) == before_blobs  # every blob's bytes and mtime unchanged

    rotated = runtime_factory(master_key_file=new_file)
    assert {i: csv_of(rotated, i) for i in ids} == before_rows
    assert "Ada Lovelace" in before_rows[ids[0]]
    org_a = _org(rotated, a.org.id)
    view = server_destinations.get_destination(rotated, org_a, a.destination.id)
    assert view.config["url"] == receiver.url
    assert rotated.vault.mapping_key(org_a.id, org_a.wrapped_key, a.template.id) == mapping_key

    # The old master key opens nothing any more.
    for org_id, wrapped in after["orgs"].items():
        assert not rt.vault.opens(org_id, wrapped)
    with pytest.raises(crypto.DecryptionError):
        csv_of(rt, ids[0])


def _org(rt: Runtime, org_id: str) -> db.Organisation:
    with rt.sessions() as session:
        org = session.get(db.Organisation, org_id)
    assert org is not None
    return org


def test_an_interrupted_rotation_changes_nothing_and_a_rerun_finishes(
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = runtime_factory()
    for _ in range(3):
        demo_org(rt)
    before = _wrapped(rt)["orgs"]
    new_file = tmp_path / "new.key"
    rewrap = Vault.rewrap_org_key
    calls: list[str] = []

    def dies_on_the_second(self: Vault, org_id: str, *args: Any) -> bytes:
        calls.append(org_id)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the operator's Ctrl-C, mid-transaction
        return rewrap(self, org_id, *args)

    monkeypatch.setattr(Vault, "rewrap_org_key", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        rotate_master(rt, new_file)
    monkeypatch.undo()
    assert _wrapped(rt)["orgs"] == before  # the transaction rolled back: all under the old key
    assert all(rt.vault.opens(o, w) for o, w in before.items())
    assert new_file.exists()  # the new key was kept (on disk before anything used it)

    done = rotate_master(rt, new_file)
    assert (done.rewrapped, done.already) == (3, 0)
    # Run again (e.g. not sure the first finished): nothing left to do, nothing broken.
    again = rotate_master(rt, new_file)
    assert (again.rewrapped, again.already) == (0, 3)
    rotated = runtime_factory(master_key_file=new_file)
    assert all(rotated.vault.opens(o, w) for o, w in _wrapped(rt)["orgs"].items())


def test_rotation_refuses_the_current_key_and_a_foreign_database(
    runtime_factory: RuntimeFactory, demo_org: DemoOrgFactory, tmp_path: Path
) -> None:
    rt = runtime_factory()
    demo_org(rt)
    with pytest.raises(Invalid, match="holds the current master key"):
        rotate_master(rt, rt.settings.master_key_file)
    before = _wrapped(rt)["orgs"]
    stranger = runtime_factory(master_key_file=tmp_path / "stranger.key")
    with pytest.raises(Conflict, match="opens under neither"):
        rotate_master(stranger, tmp_path / "new.key")
    assert _wrapped(rt)["orgs"] == before
    readable = tmp_path / "readable.key"
    readable.write_bytes(bytes(32))
    readable.chmod(0o644)
    done = CliRunner().invoke(
        app, ["keys", "rotate-master", "--new-key-file", str(readable)], env=environment(rt)
    )
    assert done.exit_code == 2
    assert "may be read by other users" in done.stderr
