"""Secret keys: shown once, stored hashed, revocable, last use recorded; the CLI prints one."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from server import db, keys
from server.cli import app
from server.errors import NotFound, Unauthorized
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import DemoOrgFactory, SettingsFactory

KEY = re.compile(r"lb_sk_[A-Za-z0-9_-]{43}")


def _dump(rt: Runtime) -> str:
    """Every value of every row of every table, as text."""
    with rt.sessions() as session:
        names = [t.name for t in db.Base.metadata.sorted_tables]
        return "\n".join(
            repr(tuple(row))
            for name in names
            for row in session.execute(text(f"SELECT * FROM {name}"))
        )


def test_a_key_is_shown_once_and_stored_as_its_digest(
    runtime: Runtime, demo_org: DemoOrgFactory
) -> None:
    org = demo_org(runtime).org
    created = keys.create_key(runtime, org.id, "  ci  ")
    assert KEY.fullmatch(created.secret)
    assert created.key.name == "ci"
    assert created.key.hint == created.secret[-4:]
    assert created.key.key_hash == keys.digest(created.secret)
    stored = _dump(runtime)
    assert "lb_sk_" not in stored
    assert created.secret.removeprefix("lb_sk_") not in stored
    assert keys.digest(created.secret) in stored
    assert keys.authenticate(runtime, created.secret).id == org.id
    other = keys.create_key(runtime, org.id, "ci")
    assert other.secret != created.secret


def test_unknown_malformed_and_revoked_keys_are_refused(
    runtime: Runtime, demo_org: DemoOrgFactory
) -> None:
    org = demo_org(runtime).org
    created = keys.create_key(runtime, org.id, "ops")
    for wrong in ("", "lb_sk_short", created.secret[:-1] + "A", "pk_" + created.secret[6:]):
        if wrong == created.secret:
            continue
        with pytest.raises(Unauthorized):
            keys.authenticate(runtime, wrong)
    keys.revoke_key(runtime, created.key.id)
    with pytest.raises(Unauthorized):
        keys.authenticate(runtime, created.secret)
    (listed,) = keys.list_keys(runtime, org.id)
    assert listed.revoked_at is not None
    with pytest.raises(NotFound):
        keys.revoke_key(runtime, "key_missing")


def test_last_use_is_recorded_at_most_once_a_minute(
    runtime: Runtime, demo_org: DemoOrgFactory
) -> None:
    org = demo_org(runtime).org
    created = keys.create_key(runtime, org.id, "ops")
    assert created.key.last_used_at is None
    keys.authenticate(runtime, created.secret)
    (first,) = keys.list_keys(runtime, org.id)
    assert first.last_used_at is not None
    assert db.utcnow() - first.last_used_at < dt.timedelta(seconds=5)
    keys.authenticate(runtime, created.secret)
    assert keys.list_keys(runtime, org.id)[0].last_used_at == first.last_used_at
    long_ago = db.utcnow() - dt.timedelta(hours=3)
    with runtime.sessions.begin() as session:
        session.get(db.SecretKey, created.key.id).last_used_at = long_ago  # type: ignore[union-attr]
    keys.authenticate(runtime, created.secret)
    assert keys.list_keys(runtime, org.id)[0].last_used_at > long_ago  # type: ignore[operator]


def test_rotating_revokes_the_earlier_keys_of_that_name(
    runtime: Runtime, demo_org: DemoOrgFactory
) -> None:
    org = demo_org(runtime).org
    kept = keys.create_key(runtime, org.id, "other")
    first = keys.rotate_key(runtime, org.id, "loadbay demo")
    second = keys.rotate_key(runtime, org.id, "loadbay demo")
    with pytest.raises(Unauthorized):
        keys.authenticate(runtime, first.secret)
    assert keys.authenticate(runtime, second.secret).id == org.id
    assert keys.authenticate(runtime, kept.secret).id == org.id


@pytest.mark.parametrize("store", ["sqlite"])
def test_cli_creates_lists_and_revokes_keys(
    runtime: Runtime,
    demo_org: DemoOrgFactory,
    settings_factory: SettingsFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org = demo_org(runtime).org
    settings = runtime.settings
    monkeypatch.setenv("LOADBAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "--org", org.id, "--name", "deploy"])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[0]
    assert KEY.fullmatch(secret)
    assert keys.authenticate(runtime, secret).id == org.id
    (key,) = keys.list_keys(runtime, org.id)
    listed = runner.invoke(app, ["keys", "list", "--org", org.id])
    assert listed.exit_code == 0
    assert f"{key.id}\tdeploy\t...{secret[-4:]}\t" in listed.stdout
    assert secret not in listed.stdout
    revoked = runner.invoke(app, ["keys", "revoke", key.id])
    assert revoked.exit_code == 0
    with pytest.raises(Unauthorized):
        keys.authenticate(runtime, secret)
    missing = runner.invoke(app, ["keys", "create", "--org", "org_nope", "--name", "x"])
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
    # The id `keys create --org` takes, and the key the embed code takes, from the CLI.
    listed_orgs = runner.invoke(app, ["org", "list"])
    assert listed_orgs.exit_code == 0, listed_orgs.output
    line = f"{org.id}\t{org.name}\t{org.publishable_key}\t{' '.join(org.allowed_origins)}"
    assert listed_orgs.stdout.splitlines() == [line]
