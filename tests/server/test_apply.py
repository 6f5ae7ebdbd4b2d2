"""`loadbay apply FILE.yaml [--dry-run]` (server/provisioning.py): declarative, idempotent
provisioning of organisations, templates and destinations, secrets from the environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from server import db, provisioning
from server.cli import app
from server.errors import Invalid
from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA

if TYPE_CHECKING:
    from tests.conftest import Receiver, RuntimeFactory

pytestmark = pytest.mark.parametrize("store", ["sqlite"])
SECRET = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="


@pytest.fixture
def rt(runtime_factory: RuntimeFactory) -> Runtime:
    return runtime_factory(allow_private_networks=("127.0.0.0/8",))


def _file(tmp_path: Path, receiver: Receiver, **changes: Any) -> Path:
    (tmp_path / "contacts.json").write_text(json.dumps(changes.get("schema", CONTACTS_SCHEMA)))
    org = {
        "name": "Acme",
        "allowed_origins": changes.get("origins", ["https://app.acme.example"]),
        "default_retention_days": 14,
        "invalid_row_policy": "valid-only",
        "templates": [{"schema_file": "contacts.json"}],
        "destinations": [
            {
                "name": "crm",
                "template": CONTACTS_SCHEMA["name"],
                "kind": "webhook",
                "config": {"url": changes.get("url", receiver.url), "secret": {"env": "HOOK_KEY"}},
            }
        ],
    }
    path = tmp_path / "loadbay.yaml"
    path.write_text(yaml.safe_dump({"organisations": [org]}))
    return path


def _counts(rt: Runtime) -> tuple[int, int, int]:
    with rt.sessions() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in (db.Organisation, db.Template, db.Destination)
        )


def test_dry_run_says_what_would_be_created_and_stores_nothing(
    rt: Runtime, receiver: Receiver, tmp_path: Path
) -> None:
    wanted = provisioning.load(_file(tmp_path, receiver), env={"HOOK_KEY": SECRET})
    name = CONTACTS_SCHEMA["name"]
    assert [c.line() for c in provisioning.plan(rt, wanted)] == [
        "create    organisation Acme",
        f"create    template Acme/{name}",
        f"create    destination Acme/{name}/crm",
    ]
    assert _counts(rt) == (0, 0, 0)


def test_apply_creates_everything_and_a_second_run_changes_nothing(
    rt: Runtime, receiver: Receiver, tmp_path: Path
) -> None:
    wanted = provisioning.load(_file(tmp_path, receiver), env={"HOOK_KEY": SECRET})
    assert [c.action for c in provisioning.apply(rt, wanted)] == ["create"] * 3
    with rt.sessions() as session:
        org = session.scalars(select(db.Organisation)).one()
        dest = session.scalars(select(db.Destination)).one()
    assert (org.name, org.allowed_origins) == ("Acme", ["https://app.acme.example"])
    assert (org.retention_days, org.invalid_row_policy) == (14, "valid-only")
    config = rt.vault.open_config(org.id, org.wrapped_key, dest.id, dest.sealed_config)
    assert config == {"url": receiver.url, "secret": SECRET}  # the secret came from the env
    again = provisioning.apply(
        rt, provisioning.load(tmp_path / "loadbay.yaml", {"HOOK_KEY": SECRET})
    )
    assert [c.action for c in again] == ["unchanged"] * 3
    assert _counts(rt) == (1, 1, 1)


def test_a_changed_file_updates_in_place_naming_settings_not_values(
    rt: Runtime, receiver: Receiver, tmp_path: Path
) -> None:
    provisioning.apply(rt, provisioning.load(_file(tmp_path, receiver), env={"HOOK_KEY": SECRET}))
    schema = {**CONTACTS_SCHEMA, "description": "Contacts, second edition"}
    rotated = SECRET.replace("QUFB", "QkJC", 1)
    path = _file(
        tmp_path,
        receiver,
        schema=schema,
        origins=["https://app.acme.example", "https://beta.acme.example"],
        url=receiver.url + "?v=2",
    )
    changes = provisioning.apply(rt, provisioning.load(path, env={"HOOK_KEY": rotated}))
    name = CONTACTS_SCHEMA["name"]
    assert [c.line() for c in changes] == [
        "update    organisation Acme (allowed_origins)",
        f"update    template Acme/{name} (version 2)",
        f"update    destination Acme/{name}/crm (secret, url)",
    ]
    assert all(rotated not in c.line() for c in changes)
    with rt.sessions() as session:
        template = session.scalars(select(db.Template)).one()
        versions = session.scalar(select(func.count()).select_from(db.TemplateVersion))
    assert (template.version, template.schema, versions) == (2, schema, 2)
    assert _counts(rt) == (1, 1, 1)


def test_a_missing_variable_or_a_bad_file_is_refused_before_anything_is_stored(
    rt: Runtime, receiver: Receiver, tmp_path: Path
) -> None:
    path = _file(tmp_path, receiver)
    with pytest.raises(Invalid, match="the environment variable HOOK_KEY is not set"):
        provisioning.load(path, env={})
    (tmp_path / "bad.yaml").write_text("organisations:\n  - nom: Acme\n")
    with pytest.raises(Invalid, match=r"organisations\.0\.name: Field required"):
        provisioning.load(tmp_path / "bad.yaml", env={})
    (tmp_path / "broken.yaml").write_text("organisations: [\n")
    with pytest.raises(Invalid, match="is not valid YAML"):
        provisioning.load(tmp_path / "broken.yaml", env={})
    assert _counts(rt) == (0, 0, 0)


def test_the_cli_applies_and_dry_runs(
    rt: Runtime, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADBAY_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    monkeypatch.setenv("LOADBAY_ALLOW_PRIVATE_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("HOOK_KEY", SECRET)
    path = _file(tmp_path, receiver)
    runner = CliRunner()
    dry = runner.invoke(app, ["apply", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[-1] == "would change 3 of 3"
    assert _counts(rt) == (0, 0, 0)
    done = runner.invoke(app, ["apply", str(path)])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[-1] == "changed 3 of 3"
    assert SECRET not in done.output
    assert runner.invoke(app, ["apply", str(path)]).stdout.splitlines()[-1] == "changed 0 of 3"
    monkeypatch.delenv("HOOK_KEY")
    refused = runner.invoke(app, ["apply", str(path)])
    assert refused.exit_code == 2
    assert "the environment variable HOOK_KEY is not set" in refused.output
