"""The importer tells the end user how long their rows are kept, and a passthrough
template delivers them through the real demo without writing them to disk."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, FrameLocator, Page, expect
from standardwebhooks import Webhook

from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA
from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e

NAMES = ("Ysolde Brackenwirth", "Tamsin Quaverley")
EMAILS = ("ysolde.brackenwirth.51d2@example.org", "tamsin.quaverley.0e9c@example.org")


def _importer(
    browser: Browser, demo: Demo, template_id: str | None = None
) -> tuple[Page, FrameLocator]:
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"{demo.host_page}{f'?template={template_id}' if template_id else ''}")
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    return page, frame


def _demo_runtime(demo: Demo) -> Runtime:
    """The demo's database (never its Redis: it runs its own, behind a socket of its own)."""
    from server.settings import Settings

    env = {
        **os.environ,
        "LOADBAY_DATA_DIR": str(demo.data_dir),
        "LOADBAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
    }
    env.pop("DATABASE_URL", None)
    return Runtime.from_settings(Settings.from_env(env))


def _passthrough_template(demo: Demo, url: str | None = None) -> str:
    """A passthrough copy of the contacts template, with a destination at `url` (the
    demo's receiver unless given; the demo seeds one for its own template only)."""
    from server import db, orgs

    schema = copy.deepcopy(CONTACTS_SCHEMA)
    schema["name"] = "contacts-passthrough"
    schema["x-loadbay"] = {"retentionDays": 0}
    template_id = demo.add_template(schema)
    rt = _demo_runtime(demo)
    with rt.sessions() as session:
        org = session.get(db.Organisation, demo.state["org_id"])
        template = session.get(db.Template, template_id)
    assert org is not None and template is not None
    orgs.create_destination(
        rt,
        org,
        template,
        "webhook",
        "Demo receiver (passthrough)",
        {
            "url": url or f"{demo.importer_origin}/demo/webhook",
            "secret": demo.state["webhook_secret"],
        },
    )
    rt.sessions.kw["bind"].dispose()
    return template_id


def test_the_importer_says_how_long_the_rows_are_kept(browser: Browser, demo: Demo) -> None:
    page, frame = _importer(browser, demo)
    expect(frame.locator("#retention")).to_have_text("Your data is kept for 30 days, then deleted.")
    page.context.close()


def test_a_passthrough_import_is_announced_delivered_and_not_stored(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    from sqlalchemy import create_engine, text

    template_id = _passthrough_template(demo)
    page, frame = _importer(browser, demo, template_id)
    expect(frame.locator("#retention")).to_have_text(
        "Your data is not stored: it goes straight to Demo Inc. and nowhere else."
    )
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(
        f"Full Name,E-mail,Country\n{NAMES[0]},{EMAILS[0]},GB\n{NAMES[1]},{EMAILS[1]},FR\n",
        encoding="utf-8",
    )
    before = len(demo.receipts())
    frame.locator("#file-input").set_input_files(csv_path)
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text("All 2 rows are valid.", timeout=30_000)
    frame.locator("#submit").click()
    expect(frame.locator("#done")).to_have_text("Delivered 2 rows.", timeout=60_000)
    page.context.close()

    [receipt] = demo.receipts()[before:]
    payload = Webhook(demo.state["webhook_secret"]).verify(receipt["body"], receipt["headers"])
    rows = payload["data"]["rows"]
    assert [(r["full_name"], r["email"]) for r in rows] == list(zip(NAMES, EMAILS, strict=True))
    import_id = payload["data"]["import_id"]

    engine = create_engine(f"sqlite:///{demo.data_dir / 'loadbay.db'}")
    with engine.connect() as conn:
        retention, key = conn.execute(
            text("SELECT retention_days, wrapped_data_key FROM imports WHERE id = :id"),
            {"id": import_id},
        ).one()
        digests = (
            conn.execute(
                text("SELECT digest FROM batches WHERE import_id = :id"), {"id": import_id}
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert (retention, key, digests) == (0, None, [""])
    blobs = demo.data_dir / "blobs"
    assert not [p for p in blobs.rglob("*") if import_id in str(p)]
    stored = (demo.data_dir / "loadbay.db").read_bytes()
    assert not [v for v in (*NAMES, *EMAILS) if v.encode() in stored]


def test_a_passthrough_import_not_delivered_in_its_window_tells_the_user(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    from sqlalchemy import select, update

    from server import db

    # Nothing listens on port 9: every attempt fails and is retried (5 s, then 5 min).
    template_id = _passthrough_template(demo, "http://127.0.0.1:9/in")
    page, frame = _importer(browser, demo, template_id)
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(f"Full Name,E-mail\n{NAMES[0]},{EMAILS[0]}\n", encoding="utf-8")
    frame.locator("#file-input").set_input_files(csv_path)
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text("The row is valid.", timeout=30_000)
    frame.locator("#submit").click()
    expect(frame.locator("#upload-status")).to_contain_text("Delivering", timeout=60_000)

    # The window closes (as if its hour had passed); the demo's cron, every minute, fails
    # what was not delivered, and the page, still asking, tells the user.
    rt = _demo_runtime(demo)
    with rt.sessions.begin() as session:
        [import_id] = session.scalars(
            select(db.Import.id).where(db.Import.template_id == template_id)
        ).all()
        session.execute(
            update(db.Import).where(db.Import.id == import_id).values(expires_at=db.utcnow())
        )
    done = frame.locator("#done")
    expect(done).to_have_attribute("data-status", "expired", timeout=150_000)
    expect(done).to_have_text(
        "Your 1 rows were not delivered before the import's data expired, and no copy is "
        "kept. Import the file again."
    )
    page.context.close()
    with rt.sessions() as session:
        delivery = session.scalars(
            select(db.Delivery).where(db.Delivery.import_id == import_id)
        ).one()
        assert delivery.status == "failed"
        assert delivery.last_error is not None
        assert "passthrough window" in delivery.last_error
        submitted, event = session.scalars(
            select(db.Event).where(db.Event.import_id == import_id).order_by(db.Event.id)
        ).all()
        assert submitted.kind == "import.submitted"
        assert (event.kind, event.detail["reason"]) == ("import.expired", "passthrough-window")
    rt.sessions.kw["bind"].dispose()
