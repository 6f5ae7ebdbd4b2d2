"""The invalid-row policy in Chromium: the review screen says which applies before
submitting, and what reaches the webhook follows it (reject, valid-only, with-errors)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e

CSV = (
    "Full name,Email,Country\n"
    "Ada,ada@example.com,GB\n"
    ",grace@example.com,US\n"
    "Alan,alan@example.com,Atlantis\n"
)
FIELDS = [
    {"name": "full_name", "title": "Full name", "constraints": {"required": True}},
    {"name": "email", "title": "Email", "format": "email"},
    {"name": "country", "title": "Country", "constraints": {"enum": ["GB", "US"]}},
]


def _template_with_webhook(demo: Demo, schema: dict[str, Any]) -> str:
    """A template of the demo organisation whose rows go to the demo's receiver."""
    from server import db, orgs
    from server.runtime import Runtime
    from server.settings import Settings

    env = {
        **os.environ,
        "LOADBAY_DATA_DIR": str(demo.data_dir),
        "LOADBAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
    }
    env.pop("DATABASE_URL", None)
    rt = Runtime.from_settings(Settings.from_env(env))
    with rt.sessions() as session:
        org = session.get(db.Organisation, demo.state["org_id"])
    assert org is not None
    template = orgs.create_template(rt, org, schema)
    url = f"{demo.importer_origin}/demo/webhook"
    secret = demo.state["webhook_secret"]
    orgs.create_destination(
        rt, org, template, "webhook", "receiver", {"url": url, "secret": secret}
    )
    return template.id


CASES = {
    "reject": (
        "Every row must be valid: fix or delete the rows with problems before you submit.",
        "Fix 2 problems to submit",
    ),
    "valid-only": (
        "Only valid rows are imported: 2 rows with problems will be left out, and 1 sent.",
        "Submit 1 row",
    ),
    "with-errors": (
        "Every row is imported: the 2 rows with problems are sent with their problems attached.",
        "Submit 3 rows",
    ),
}


@pytest.mark.parametrize("policy", list(CASES))
def test_the_policy_is_shown_before_submitting_and_applied(
    browser: Browser, demo: Demo, tmp_path: Path, policy: str
) -> None:
    name = f"people-{policy}"
    schema = {"name": name, "fields": FIELDS, "x-loadbay": {"invalidRowPolicy": policy}}
    template_id = _template_with_webhook(demo, schema)
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(CSV, encoding="utf-8")
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"{demo.host_page}?template={template_id}")
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    frame.locator("#file-input").set_input_files(csv_path)
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text(
        "2 problems in 2 of 3 rows. Fix them below, or delete those rows.", timeout=30_000
    )
    note, button = CASES[policy]
    expect(frame.locator("#policy-note")).to_have_text(note)
    expect(frame.locator("#policy-note")).to_have_attribute("data-policy", policy)
    expect(frame.locator("#submit")).to_have_text(button)
    if policy == "reject":
        expect(frame.locator("#submit")).to_be_disabled()
        context.close()
        return

    frame.locator("#submit").click()
    done = "Delivered 1 row. 2 rows with problems were left out."
    if policy == "with-errors":
        done = "Delivered 3 rows."
    expect(frame.locator("#done")).to_have_text(done, timeout=60_000)
    context.close()

    [receipt] = [r for r in demo.receipts() if json.loads(r["body"])["data"]["template"] == name]
    data = Webhook(demo.state["webhook_secret"]).verify(receipt["body"], receipt["headers"])["data"]
    if policy == "valid-only":
        assert (data["row_count"], data["left_out"]) == (1, 2)
        assert data["rows"] == [{"full_name": "Ada", "email": "ada@example.com", "country": "GB"}]
    else:
        assert (data["row_count"], data["left_out"]) == (3, 0)
        assert [r["full_name"] for r in data["rows"]] == ["Ada", None, "Alan"]
        assert [[(e["field"], e["code"]) for e in r["_errors"]] for r in data["rows"]] == [
            [],
            [("full_name", "constraint-error")],
            [("country", "constraint-error")],
        ]
