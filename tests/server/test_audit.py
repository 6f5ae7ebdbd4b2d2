"""The audit log: entries chained by SHA-256 over canonical JSON, appended in the
transaction of what they record, on SQLite and PostgreSQL; `loadbay audit verify` names an
entry that was changed, deleted or moved in the database; import deletions (the events
table) are recorded here too; exports neutralise formulas."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import delete, text, update
from typer.testing import CliRunner

from server import audit, events
from server.cli import app
from server.models.accounts import AuditEntry, AuditHead
from server.runtime import Runtime
from tests.server.users_support import org_with_owner


def _fill(rt: Runtime, org_id: str, count: int) -> None:
    for i in range(count):
        audit.write(
            rt, action="test.step", actor="cli", org_id=org_id, target=f"t{i}", detail={"i": i}
        )


def test_entries_chain_and_verify(runtime: Runtime) -> None:
    acme = org_with_owner(runtime)
    _fill(runtime, acme.org.id, 5)
    verdict = audit.verify(runtime)
    assert verdict.intact and verdict.checked == 6  # member.added + 5
    found = audit.entries(runtime, acme.org.id)
    assert [e.seq for e in found] == [6, 5, 4, 3, 2, 1]
    with runtime.sessions() as session:
        rows = session.query(AuditEntry).order_by(AuditEntry.seq).all()
    assert rows[0].prev_hash == audit.GENESIS
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.hash
    assert rows[2].hash == audit.entry_hash(audit._entry(rows[2]), rows[1].hash)


def test_concurrent_writers_keep_one_chain(runtime: Runtime) -> None:
    acme = org_with_owner(runtime)
    threads = [threading.Thread(target=_fill, args=(runtime, acme.org.id, 10)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = audit.verify(runtime)
    assert verdict.problems == () and verdict.checked == 41


def test_writers_racing_to_remake_a_missing_head_keep_one_chain(runtime: Runtime) -> None:
    """A database emptied by hand has no head row: the first writers make it once."""
    acme = org_with_owner(runtime)
    with runtime.sessions.begin() as session:
        session.execute(delete(AuditHead))
    barrier = threading.Barrier(4)

    def first(n: int) -> None:
        barrier.wait()
        _fill(runtime, acme.org.id, n)

    threads = [threading.Thread(target=first, args=(5,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = audit.verify(runtime)
    assert verdict.problems == () and verdict.checked == 21


def _cli(runtime: Runtime) -> tuple[int, str]:
    env = {
        "DATABASE_URL": runtime.settings.database_url,
        "LOADBAY_DATA_DIR": str(runtime.settings.data_dir),
        "LOADBAY_MASTER_KEY_FILE": str(runtime.settings.master_key_file),
    }
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        ("edit", "Entry 3 was changed: its content does not match its hash."),
        ("delete", "Entry 3 is missing (deleted): entry 4 follows entry 2."),
        ("delete-last", "Entries after 5 were deleted: the log's head says entry 6 was the last."),
        ("swap", "Entry 3 was changed"),
    ],
)
def test_cli_verify_names_the_tampered_entry(runtime: Runtime, tamper: str, named: str) -> None:
    acme = org_with_owner(runtime)
    _fill(runtime, acme.org.id, 5)
    assert _cli(runtime) == (0, "The audit log is intact: 6 entries, each chained to the last.\n")
    with runtime.sessions.begin() as session:
        if tamper == "edit":  # what an attacker would do with SQL: a changed actor
            session.execute(text("UPDATE audit_entries SET actor = 'someone-else' WHERE seq = 3"))
        elif tamper == "delete":
            session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
        elif tamper == "delete-last":
            session.execute(delete(AuditEntry).where(AuditEntry.seq == 6))
        else:  # swap the contents of entries 3 and 4, numbers and hashes kept
            session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(target="x"))
            session.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(target="t1"))
            session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(target="t2"))
            session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(detail={"i": 2}))
            session.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(detail={"i": 1}))
    code, output = _cli(runtime)
    assert code == 1
    assert named in output
    assert "The audit log is NOT intact" in output


def test_events_are_recorded_in_the_audit_log(runtime: Runtime) -> None:
    acme = org_with_owner(runtime)
    with runtime.sessions.begin() as session:
        events.record(
            session,
            org_id=acme.org.id,
            kind=events.IMPORT_DELETED,
            actor="cli",
            detail={"batches": 3},
        )
    newest = audit.entries(runtime, acme.org.id)[0]
    assert (newest.action, newest.actor, newest.detail) == ("import.deleted", "cli", {"batches": 3})
    assert audit.verify(runtime).intact


def test_exports_csv_without_formulas_and_json(runtime: Runtime) -> None:
    acme = org_with_owner(runtime)
    audit.write(runtime, action="test.step", actor="cli", org_id=acme.org.id, target="=HYPERLINK()")
    found = audit.entries(runtime, acme.org.id)
    csv_text = audit.export(found, "csv").decode()
    assert csv_text.splitlines()[0] == "seq,at,org_id,actor,action,target,address,detail"
    assert ",'=HYPERLINK()," in csv_text
    body = json.loads(audit.export(found, "json"))
    assert [e["action"] for e in body] == ["test.step", "member.added"]
    assert body[0]["target"] == "=HYPERLINK()"


def test_key_and_setting_changes_are_audited(runtime: Runtime) -> None:
    from server import keys, orgs

    acme = org_with_owner(runtime)
    created = keys.create_key(runtime, acme.org.id, "deploy")
    keys.revoke_key(runtime, created.key.id)
    actor = f"api-key:{created.key.id}"
    orgs.update_settings(runtime, acme.org.id, default_retention_days=7, actor=actor)
    found = audit.entries(runtime, acme.org.id)
    assert [(e.action, e.actor, e.target) for e in found[:3]] == [
        ("settings.updated", actor, None),
        ("key.revoked", "cli", created.key.id),
        ("key.created", "cli", created.key.id),
    ]
    assert found[0].detail == {"default_retention_days": 7}
    assert created.secret not in json.dumps([e.as_json() for e in found])
