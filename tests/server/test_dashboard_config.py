"""The configuration screens over HTTP: templates (editor, classification, retention and
no-store, Table Schema export and import, versions, delete and restore), destinations (a
form from the kind's settings, secrets write-only, test connection, max_concurrency),
keys and organisation settings; CSRF and Origin on every one of their POSTs; every change
an audit entry naming the signed-in user, or the API key, never a value."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from destinations import DestinationContext
from destinations.webhook import new_secret
from server import audit, db, keys, orgs, permissions, provisioning, templates
from server import destinations as dests
from server.app import create_app
from server.errors import NotFound
from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA, Receiver
from tests.server.users_support import BASE, Dashboard, OrgWithOwner, org_with_owner

ADDRESS = ("203.0.113.7", 50000)


@pytest.fixture
def store() -> str:
    return "sqlite"


@pytest.fixture
def acme(runtime: Runtime) -> OrgWithOwner:
    return org_with_owner(runtime)


@pytest.fixture
def owner(runtime: Runtime, acme: OrgWithOwner) -> Iterator[Dashboard]:
    with TestClient(create_app(runtime), base_url=BASE, client=ADDRESS) as client:
        browser = Dashboard(client)
        browser.sign_in(acme.email)
        yield browser


def _actions(rt: Runtime, org_id: str) -> list[tuple[str, str, str | None]]:
    return [(e.action, e.actor, e.target) for e in audit.entries(rt, org_id)]


def _new_template(owner: Dashboard) -> str:
    owner.get("/dashboard/templates")
    response = owner.post(
        "/dashboard/templates",
        {"name": "people", "title": "People", "field_name": "email", "field_type": "string"},
    )
    assert response.status_code == 303, response.text
    found = re.fullmatch(
        r"/dashboard/templates/(tpl_\w+)\?done=created", response.headers["location"]
    )
    assert found
    return found.group(1)


def _people_settings(title: str = "People") -> dict[str, str]:
    """The template-wide settings form of the editor test's template."""
    return {
        "name": "people",
        "title": title,
        "retention_days": "7",
        "invalid_row_policy": "valid-only",
        "primary_key": "email",
    }


def test_editor_edits_gather_in_a_draft_and_one_save_makes_one_version(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner
) -> None:
    template_id = _new_template(owner)
    page = owner.get(f"/dashboard/templates/{template_id}")
    assert "Template people" in page.text and "(version 1)" in page.text
    owner.get(f"/dashboard/templates/{template_id}/field?n=0")
    saved = owner.post(
        f"/dashboard/templates/{template_id}/field",
        {
            "n": "0",
            "name": "email",
            "type": "string",
            "format": "email",
            "required": "on",
            "unique": "on",
            "synonyms": "E-mail\nmail address",
            "classification": "personal",
            "trim": "on",
            "case": "lower",
            "max_length": "200",
        },
    )
    assert saved.status_code == 303, saved.text
    owner.get(f"/dashboard/templates/{template_id}/field")
    added = owner.post(
        f"/dashboard/templates/{template_id}/field",
        {"n": "", "name": "age", "type": "integer", "minimum": "0", "maximum": "130"},
    )
    assert added.status_code == 303, added.text
    owner.get(f"/dashboard/templates/{template_id}")
    settings = owner.post(
        f"/dashboard/templates/{template_id}",
        _people_settings(),
    )
    assert settings.status_code == 303, settings.text
    row = templates.get_template(runtime, acme.org.id, template_id)
    assert row.version == 1 and row.draft is not None  # three edits, no version yet
    assert [f["name"] for f in row.schema["fields"]] == ["email"]
    page = owner.get(f"/dashboard/templates/{template_id}")
    assert "(version 1, with unsaved changes)" in page.text and "age" in page.text
    saved = owner.post(f"/dashboard/templates/{template_id}/save")
    assert saved.headers["location"] == f"/dashboard/templates/{template_id}?done=saved"
    row = templates.get_template(runtime, acme.org.id, template_id)
    assert row.version == 2 and row.draft is None
    assert row.schema["fields"] == [
        {
            "name": "email",
            "type": "string",
            "format": "email",
            "constraints": {"required": True, "unique": True, "maxLength": 200},
            "x-loadbay": {
                "synonyms": ["E-mail", "mail address"],
                "classification": "personal",
                "transforms": ["trim", {"case": "lower"}],
            },
        },
        {"name": "age", "type": "integer", "constraints": {"minimum": 0, "maximum": 130}},
    ]
    assert row.schema["x-loadbay"] == {"retentionDays": 7, "invalidRowPolicy": "valid-only"}
    assert row.schema["primaryKey"] == ["email"]
    # A save with nothing changed makes no version and no audit entry.
    before = audit.entries(runtime, acme.org.id)
    owner.get(f"/dashboard/templates/{template_id}")
    unchanged = owner.post(f"/dashboard/templates/{template_id}/save")
    assert unchanged.headers["location"].endswith("?done=unchanged")
    # Nor does a draft edited back to what is saved.
    owner.post(
        f"/dashboard/templates/{template_id}",
        _people_settings(title="Changed"),
    )
    owner.post(
        f"/dashboard/templates/{template_id}",
        _people_settings(),
    )
    owner.post(f"/dashboard/templates/{template_id}/save")
    assert templates.get_template(runtime, acme.org.id, template_id).version == 2
    assert audit.entries(runtime, acme.org.id) == before
    # A discarded draft leaves the version as it was.
    owner.post(
        f"/dashboard/templates/{template_id}",
        {"name": "people", "no_store": "on", "primary_key": "email"},
    )
    assert owner.post(f"/dashboard/templates/{template_id}/discard").status_code == 303
    row = templates.get_template(runtime, acme.org.id, template_id)
    assert row.draft is None and row.schema["x-loadbay"]["retentionDays"] == 7
    owner.get(f"/dashboard/templates/{template_id}")
    owner.post(
        f"/dashboard/templates/{template_id}",
        {"name": "people", "no_store": "on", "primary_key": "email"},
    )
    owner.post(f"/dashboard/templates/{template_id}/save")
    row = templates.get_template(runtime, acme.org.id, template_id)
    assert row.schema["x-loadbay"] == {"retentionDays": 0}
    page = owner.get(f"/dashboard/templates/{template_id}")
    assert "personal data" in page.text
    assert page.text.count("Export version") == 3
    user = f"user:{acme.owner_id}"
    assert _actions(runtime, acme.org.id)[:3] == [
        ("template.updated", user, template_id),
        ("template.updated", user, template_id),
        ("template.created", user, template_id),
    ]
    assert audit.entries(runtime, acme.org.id)[0].detail == {"version": 3}


def test_a_draft_begun_before_an_api_change_cannot_undo_it(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner
) -> None:
    template_id = _new_template(owner)
    owner.get(f"/dashboard/templates/{template_id}")
    owner.post(f"/dashboard/templates/{template_id}", _people_settings(title="From the editor"))
    assert templates.get_template(runtime, acme.org.id, template_id).draft_base == 1
    # Meanwhile the API (or `loadbay apply`) makes version 2.
    api_schema = {
        "name": "people",
        "fields": [{"name": "email"}, {"name": "phone"}],
    }
    templates.replace_template(runtime, acme.org.id, template_id, api_schema)
    owner.get(f"/dashboard/templates/{template_id}")
    refused = owner.post(f"/dashboard/templates/{template_id}/save")
    assert refused.status_code == 409
    assert "changed since these changes were begun (version 1, now version 2)" in refused.text
    row = templates.get_template(runtime, acme.org.id, template_id)
    assert row.version == 2 and row.schema == api_schema and row.draft is not None
    # Discarded, the editor starts again from version 2 and saves version 3.
    page = owner.get(f"/dashboard/templates/{template_id}")
    assert page.status_code == 200
    owner.post(f"/dashboard/templates/{template_id}/discard")
    owner.get(f"/dashboard/templates/{template_id}")
    owner.post(f"/dashboard/templates/{template_id}", _people_settings(title="Again"))
    assert templates.get_template(runtime, acme.org.id, template_id).draft_base == 2
    assert owner.post(f"/dashboard/templates/{template_id}/save").status_code == 303
    row = templates.get_template(runtime, acme.org.id, template_id)
    assert row.version == 3 and row.schema["title"] == "Again"
    assert [f["name"] for f in row.schema["fields"]] == ["email", "phone"]


def test_a_refused_field_says_why_and_keeps_the_version(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner
) -> None:
    template_id = _new_template(owner)
    owner.get(f"/dashboard/templates/{template_id}/field")
    refused = owner.post(
        f"/dashboard/templates/{template_id}/field",
        {"n": "", "name": "born", "type": "date", "minimum": "yesterday"},
    )
    assert refused.status_code == 422
    assert "not a valid date" in refused.text and 'value="yesterday"' in refused.text
    bad_length = owner.post(
        f"/dashboard/templates/{template_id}/field",
        {"n": "", "name": "code", "type": "string", "max_length": "ten"},
    )
    assert bad_length.status_code == 422 and "whole number" in bad_length.text
    assert templates.get_template(runtime, acme.org.id, template_id).version == 1
    owner.get(f"/dashboard/templates/{template_id}")
    last = owner.post(f"/dashboard/templates/{template_id}/field/remove", {"n": "0"})
    assert last.status_code == 422 and "non-empty" in last.text


def test_export_import_delete_and_restore(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner
) -> None:
    owner.get("/dashboard/templates")
    imported = owner.post("/dashboard/templates/import", {"schema": json.dumps(CONTACTS_SCHEMA)})
    assert imported.status_code == 303, imported.text
    template_id = imported.headers["location"].split("/")[3].split("?")[0]
    exported = owner.get(f"/dashboard/templates/{template_id}/schema.json")
    assert exported.status_code == 200
    assert exported.headers["content-disposition"].endswith('-v1.schema.json"')
    assert json.loads(exported.text) == CONTACTS_SCHEMA
    owner.get(f"/dashboard/templates/{template_id}")
    changed = {**CONTACTS_SCHEMA, "title": "Changed"}
    assert (
        owner.post(
            f"/dashboard/templates/{template_id}/json", {"schema": json.dumps(changed)}
        ).status_code
        == 303
    )
    assert owner.post(f"/dashboard/templates/{template_id}/save").status_code == 303
    assert templates.get_template(runtime, acme.org.id, template_id).version == 2
    first = owner.get(f"/dashboard/templates/{template_id}/schema.json?version=1")
    assert json.loads(first.text) == CONTACTS_SCHEMA
    assert (
        owner.post(f"/dashboard/templates/{template_id}/json", {"schema": "{"}).status_code == 422
    )
    owner.get(f"/dashboard/templates/{template_id}")
    assert owner.post(f"/dashboard/templates/{template_id}/delete").status_code == 303
    assert template_id not in owner.get("/dashboard/templates").text
    assert template_id in owner.get("/dashboard/templates?deleted=1").text
    page = owner.get(f"/dashboard/templates/{template_id}")
    assert "Restore template" in page.text and "Apply the settings" not in page.text
    assert owner.post(f"/dashboard/templates/{template_id}/restore").status_code == 303
    assert templates.get_template(runtime, acme.org.id, template_id).deleted_at is None
    actions = [a for a, _, _ in _actions(runtime, acme.org.id)[:4]]
    assert actions == [
        "template.restored",
        "template.deleted",
        "template.updated",
        "template.created",
    ]


def test_destination_form_from_the_kind_secrets_write_only_and_test(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner, receiver: Receiver
) -> None:
    template_id = _new_template(owner)
    form = owner.get("/dashboard/destinations/new?kind=webhook")
    for name in ("cfg.url", "cfg.secret", "cfg.secrets", "cfg.rows_per_request"):
        assert f'name="{name}"' in form.text
    assert 'type="password"' in form.text and "not set" in form.text
    secret = new_secret()
    created = owner.post(
        "/dashboard/destinations",
        {
            "kind": "webhook",
            "name": "hook",
            "template_id": template_id,
            "max_concurrency": "2",
            "cfg.url": receiver.url,
            "cfg.secret": secret,
            "cfg.rows_per_request": "500",
        },
    )
    assert created.status_code == 303, created.text
    destination_id = created.headers["location"].split("/")[3].split("?")[0]
    page = owner.get(f"/dashboard/destinations/{destination_id}")
    assert secret not in page.text and "secret, set" in page.text
    assert 'value="500"' in page.text and 'value="2"' in page.text
    tested = owner.post(f"/dashboard/destinations/{destination_id}/test")
    assert "Connection test passed" in tested.text
    assert receiver.requests == []  # check() sends nothing
    saved = owner.post(
        f"/dashboard/destinations/{destination_id}",
        {
            "name": "hook",
            "enabled": "on",
            "max_concurrency": "8",
            "cfg.url": receiver.url,
            "cfg.rows_per_request": "",
        },
    )
    assert saved.status_code == 303, saved.text
    org = dests.get_destination(runtime, acme.org, destination_id)
    assert org.row.max_concurrency == 8
    assert org.config["secret"] == {"set": True}  # an empty secret input keeps it
    assert org.config.get("rows_per_request", 1000) == 1000  # an empty setting: its default
    refused = owner.post(
        f"/dashboard/destinations/{destination_id}",
        {"name": "hook", "enabled": "on", "cfg.url": "ftp://nowhere"},
    )
    assert refused.status_code == 422 and "https://" in refused.text
    owner.post(f"/dashboard/destinations/{destination_id}/delete")
    assert "Restore destination" in owner.get(f"/dashboard/destinations/{destination_id}").text
    owner.post(f"/dashboard/destinations/{destination_id}/restore")
    user = f"user:{acme.owner_id}"
    found = [e for e in audit.entries(runtime, acme.org.id) if e.target == destination_id]
    assert [(e.action, e.actor) for e in found] == [
        ("destination.restored", user),
        ("destination.deleted", user),
        ("destination.updated", user),
        ("destination.tested", user),
        ("destination.created", user),
    ]
    assert found[2].detail == {"changed": ["rows_per_request", "max_concurrency"]}
    assert secret not in json.dumps([e.as_json() for e in found])


def test_a_failing_test_connection_says_what_to_change(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner, receiver: Receiver
) -> None:
    template_id = _new_template(owner)
    view = dests.create_destination(
        runtime,
        acme.org,
        template_id,
        "webhook",
        "hook",
        {"url": receiver.url, "secret": new_secret()},
    )
    # The operator closes loopback again: the stored address is now one loadbay refuses.
    object.__setattr__(runtime, "destination_context", DestinationContext())
    owner.get(f"/dashboard/destinations/{view.row.id}")
    tested = owner.post(f"/dashboard/destinations/{view.row.id}/test")
    assert tested.status_code == 200
    assert "Connection test failed" in tested.text
    last = audit.entries(runtime, acme.org.id)[0]
    assert (last.action, last.detail["ok"]) == ("destination.tested", False)


def test_keys_shown_once_rotated_and_revoked(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner
) -> None:
    owner.get("/dashboard/keys")
    created = owner.post("/dashboard/keys", {"name": "backend"})
    secret = re.search(r'id="new-secret">(lb_sk_[\w-]+)<', created.text)
    assert secret, created.text
    assert keys.authenticate(runtime, secret.group(1)).id == acme.org.id
    assert secret.group(1) not in owner.get("/dashboard/keys").text
    key_id = keys.list_keys(runtime, acme.org.id)[0].id
    rotated = owner.post(f"/dashboard/keys/{key_id}/rotate")
    fresh = re.search(r'id="new-secret">(lb_sk_[\w-]+)<', rotated.text)
    assert fresh and fresh.group(1) != secret.group(1)
    assert keys.get_key(runtime, acme.org.id, key_id).revoked_at is not None
    new_id = next(k.id for k in keys.list_keys(runtime, acme.org.id) if k.id != key_id)
    owner.get("/dashboard/keys")
    assert owner.post(f"/dashboard/keys/{new_id}/revoke").status_code == 303
    before = acme.org.publishable_key
    owner.get("/dashboard/keys")
    owner.post("/dashboard/publishable-key/rotate", {"grace": "now"})
    page = owner.get("/dashboard/keys")
    assert before not in page.text and "pk_" in page.text
    user = f"user:{acme.owner_id}"
    assert [(a, u) for a, u, _ in _actions(runtime, acme.org.id)[:5]] == [
        ("publishable-key.rotated", user),
        ("key.revoked", user),
        ("key.revoked", user),
        ("key.created", user),
        ("key.created", user),
    ]


def test_settings_page_saves_through_orgs(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner
) -> None:
    owner.get("/dashboard/settings")
    saved = owner.post(
        "/dashboard/settings",
        {
            "allowed_origins": "https://app.acme.example\nhttps://admin.acme.example/",
            "default_retention_days": "14",
            "invalid_row_policy": "with-errors",
        },
    )
    assert saved.status_code == 303, saved.text
    page = owner.get("/dashboard/settings")
    assert "https://admin.acme.example" in page.text and 'value="14"' in page.text
    bad = owner.post(
        "/dashboard/settings",
        {"allowed_origins": "not an origin", "default_retention_days": "14"},
    )
    assert bad.status_code == 422 and "is not an origin" in bad.text
    last = audit.entries(runtime, acme.org.id)[0]
    assert (last.action, last.actor) == ("settings.updated", f"user:{acme.owner_id}")
    assert last.detail["default_retention_days"] == 14


def test_saving_settings_unchanged_writes_no_audit_entry(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner
) -> None:
    form = {
        "allowed_origins": "https://app.acme.example",
        "default_retention_days": str(runtime.settings.retention_days),
        "invalid_row_policy": "reject",
    }
    before = audit.entries(runtime, acme.org.id)
    owner.get("/dashboard/settings")
    assert owner.post("/dashboard/settings", form).status_code == 303
    assert audit.entries(runtime, acme.org.id) == before  # the form as shown: no change
    with runtime.sessions() as session:
        org = session.get(db.Organisation, acme.org.id)
        assert org is not None and org.retention_days is None  # still the operator's default
    form["invalid_row_policy"] = "valid-only"
    assert owner.post("/dashboard/settings", form).status_code == 303
    assert owner.post("/dashboard/settings", form).status_code == 303  # the same again
    entries = audit.entries(runtime, acme.org.id)
    assert len(entries) == len(before) + 1
    assert (entries[0].action, entries[0].detail) == (
        "settings.updated",
        {"invalid_row_policy": "valid-only"},
    )
    # The security settings form likewise records only a change.
    owner.get("/dashboard/security")
    page = owner.get("/dashboard/security")
    assert page.status_code == 200
    owner.post("/dashboard/security", {"email_domains": "", "ip_allowlist": ""})
    assert [e.action for e in audit.entries(runtime, acme.org.id)] == [e.action for e in entries]


def _open_importer(client: TestClient, key: str, template_id: str) -> int:
    body = {"publishableKey": key, "templateId": template_id, "fileName": "a.csv"}
    return client.post("/api/v1/imports", json=body, headers={"origin": BASE}).status_code


def test_a_rotated_publishable_key_works_through_its_grace_period(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner
) -> None:
    template = templates.create_template(runtime, acme.org.id, CONTACTS_SCHEMA)
    first = acme.org.publishable_key
    page = owner.get("/dashboard/keys")
    assert '<option value="24h" selected>' in page.text  # the default grace period
    assert owner.post("/dashboard/publishable-key/rotate", {"grace": "1h"}).status_code == 303
    second = orgs.settings_of(runtime, acme.org.id).organisation.publishable_key
    page = owner.get("/dashboard/keys")
    shown = re.search(
        r'id="previous-key">.*?<code>(pk_[\w-]+)</code>.*? until ([\d: -]+) UTC', page.text
    )
    assert shown and shown.group(1) == first
    expires = orgs.settings_of(runtime, acme.org.id).organisation.previous_key_expires_at
    assert expires is not None and shown.group(2) == expires.strftime("%Y-%m-%d %H:%M")
    assert dt.timedelta(minutes=59) < expires - db.utcnow() <= dt.timedelta(hours=1)
    # Both keys open the importer now; the old one no longer once its hour is over.
    assert _open_importer(owner.client, first, template.id) == 201
    assert _open_importer(owner.client, second, template.id) == 201
    assert orgs.organisation_by_key(runtime, first).id == acme.org.id
    with pytest.raises(NotFound, match="grace period is over"):
        orgs.organisation_by_key(runtime, first, expires + dt.timedelta(seconds=1))
    # Revoked early, it opens nothing from then on.
    assert owner.post("/dashboard/publishable-key/previous/revoke").status_code == 303
    assert _open_importer(owner.client, first, template.id) == 404
    assert _open_importer(owner.client, second, template.id) == 201
    assert 'id="previous-key"' not in owner.get("/dashboard/keys").text
    again = owner.post("/dashboard/publishable-key/previous/revoke")
    assert again.status_code == 404
    # "now": the key before stops at once.
    assert owner.post("/dashboard/publishable-key/rotate", {"grace": "now"}).status_code == 303
    assert _open_importer(owner.client, second, template.id) == 404
    refused = owner.post("/dashboard/publishable-key/rotate", {"grace": "forever"})
    assert refused.status_code == 422 and "one of now, 1h, 24h, 7d" in refused.text
    found = [
        (e.action, e.actor, e.detail)
        for e in audit.entries(runtime, acme.org.id)
        if e.action.startswith("publishable-key.")
    ]
    user = f"user:{acme.owner_id}"
    assert found == [
        ("publishable-key.rotated", user, {"grace": "now", "previous_expires_at": None}),
        ("publishable-key.previous-revoked", user, {}),
        (
            "publishable-key.rotated",
            user,
            {"grace": "1h", "previous_expires_at": expires.isoformat()},
        ),
    ]


CONFIG_PAGES = (
    "/dashboard/templates",
    "/dashboard/destinations",
    "/dashboard/keys",
    "/dashboard/publishable-key",
    "/dashboard/settings",
)
NEW_POSTS = sorted(
    path
    for (method, path) in permissions.DASHBOARD
    if method == "POST" and path.startswith(CONFIG_PAGES)
)


def test_every_config_post_is_listed() -> None:
    # templates 10 (with save and discard), destinations 5, keys 3, publishable key 2
    # (rotate, revoke the earlier one), settings
    assert len(NEW_POSTS) == 21


@pytest.mark.parametrize("path", NEW_POSTS)
def test_config_posts_need_the_csrf_token_and_origin(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner, path: str
) -> None:
    template = templates.create_template(runtime, acme.org.id, CONTACTS_SCHEMA)
    url = path.replace("{id}", template.id)
    form = {"name": "x", "schema": json.dumps(CONTACTS_SCHEMA), "n": "0", "kind": "webhook"}
    owner.get("/dashboard/templates")
    before = len(audit.entries(runtime, acme.org.id))
    no_token = owner.post(url, form, csrf=False)
    assert no_token.status_code == 403 and "CSRF token" in no_token.text
    wrong = owner.post(url, {**form, "csrf": "forged"}, csrf=False)
    assert wrong.status_code == 403
    other_site = owner.post(url, form, origin="https://evil.example")
    assert other_site.status_code == 403 and "from the loadbay dashboard" in other_site.text
    assert len(audit.entries(runtime, acme.org.id)) == before


def test_the_api_records_its_key_and_takes_max_concurrency(
    runtime: Runtime, acme: OrgWithOwner, receiver: Receiver
) -> None:
    created = keys.create_key(runtime, acme.org.id, "deploy")
    auth = {"authorization": f"Bearer {created.secret}"}
    with TestClient(create_app(runtime), base_url=BASE, client=ADDRESS) as client:
        made = client.post("/api/v1/templates", json={"schema": CONTACTS_SCHEMA}, headers=auth)
        assert made.status_code == 201, made.text
        body = {
            "kind": "webhook",
            "name": "hook",
            "template_id": made.json()["id"],
            "config": {"url": receiver.url, "secret": new_secret()},
            "max_concurrency": 3,
        }
        dest = client.post("/api/v1/destinations", json=body, headers=auth)
        assert dest.status_code == 201, dest.text
        assert dest.json()["max_concurrency"] == 3
        url = f"/api/v1/destinations/{dest.json()['id']}"
        patched = client.patch(url, json={"max_concurrency": 6}, headers=auth)
        assert patched.json()["max_concurrency"] == 6
        too_many = client.patch(url, json={"max_concurrency": 65}, headers=auth)
        assert too_many.status_code == 422
        client.patch("/api/v1/organisation", json={"default_retention_days": 9}, headers=auth)
    actor = f"api-key:{created.key.id}"
    assert [(a, u) for a, u, _ in _actions(runtime, acme.org.id)[:4]] == [
        ("settings.updated", actor),
        ("destination.updated", actor),
        ("destination.created", actor),
        ("template.created", actor),
    ]
    assert audit.entries(runtime, acme.org.id)[0].address == ADDRESS[0]


def test_apply_sets_max_concurrency(runtime: Runtime, tmp_path: Path, receiver: Receiver) -> None:
    secret = new_secret()
    text = f"""
organisations:
  - name: Applied
    templates: [{{schema: {json.dumps(CONTACTS_SCHEMA)}}}]
    destinations:
      - name: hook
        template: {CONTACTS_SCHEMA["name"]}
        kind: webhook
        max_concurrency: MAXC
        config: {{url: "{receiver.url}", secret: "{secret}"}}
"""
    path = tmp_path / "apply.yaml"
    path.write_text(text.replace("MAXC", "2"))
    provisioning.apply(runtime, provisioning.load(path))
    path.write_text(text.replace("MAXC", "5"))
    changes = provisioning.plan(runtime, provisioning.load(path))
    assert changes[-1].detail == "max_concurrency"
    provisioning.apply(runtime, provisioning.load(path))
    assert provisioning.plan(runtime, provisioning.load(path))[-1].action == "unchanged"
    from sqlalchemy import select

    from server import db

    with runtime.sessions() as session:
        row = session.scalars(select(db.Destination)).one()
    assert row.max_concurrency == 5


def test_restore_is_refused_after_thirty_days(
    owner: Dashboard, runtime: Runtime, acme: OrgWithOwner, receiver: Receiver
) -> None:
    import datetime as dt

    from server import db

    template = templates.create_template(runtime, acme.org.id, CONTACTS_SCHEMA)
    view = dests.create_destination(
        runtime,
        acme.org,
        template.id,
        "webhook",
        "hook",
        {"url": receiver.url, "secret": new_secret()},
    )
    long_ago = db.utcnow() - dt.timedelta(days=31)
    with runtime.sessions.begin() as session:
        session.get(db.Template, template.id).deleted_at = long_ago  # type: ignore[union-attr]
        session.get(db.Destination, view.row.id).deleted_at = long_ago  # type: ignore[union-attr]
    owner.get("/dashboard/templates")
    late = owner.post(f"/dashboard/templates/{template.id}/restore")
    assert late.status_code == 409 and "more than 30 days ago" in late.text
    late = owner.post(f"/dashboard/destinations/{view.row.id}/restore")
    assert late.status_code == 409 and "more than 30 days ago" in late.text


def test_a_viewer_reads_the_configuration_without_forms(
    runtime: Runtime, acme: OrgWithOwner, receiver: Receiver
) -> None:
    from server import users
    from server.permissions import Role
    from tests.server.users_support import PASSWORD

    users.add_user(runtime, acme.org.id, "v@acme.example", "V", PASSWORD, Role.VIEWER, actor="cli")
    template = templates.create_template(runtime, acme.org.id, CONTACTS_SCHEMA)
    secret = new_secret()
    view = dests.create_destination(
        runtime, acme.org, template.id, "webhook", "hook", {"url": receiver.url, "secret": secret}
    )
    with TestClient(create_app(runtime), base_url=BASE, client=ADDRESS) as client:
        viewer = Dashboard(client)
        viewer.sign_in("v@acme.example")
        page = viewer.get(f"/dashboard/templates/{template.id}")
        assert page.status_code == 200 and "Export Table Schema JSON" in page.text
        assert "Apply the settings" not in page.text and "Delete template" not in page.text
        page = viewer.get(f"/dashboard/destinations/{view.row.id}")
        assert page.status_code == 200 and "Test connection" not in page.text
        assert secret not in page.text and "<dd>set</dd>" in page.text
        settings = viewer.get("/dashboard/settings")
        assert (
            "https://app.acme.example" in settings.text
            and "<form" not in settings.text.split("<main")[1]
        )
        assert viewer.get("/dashboard/keys").status_code == 403
        assert viewer.post(f"/dashboard/templates/{template.id}/delete").status_code == 403
    assert templates.get_template(runtime, acme.org.id, template.id).deleted_at is None
