"""An engine that dies (a Rust panic, memory exhausted) is replaced in the real importer:
the user is told what happened and what to try, and the next file is read (issue #19).
Before, every later file failed until the host page was reloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e

VECTOR = Path(__file__).parent.parent / "conformance" / "vectors" / "type_errors"


def test_an_engine_that_dies_is_restarted_and_the_next_file_is_read(
    browser: Browser, demo: Demo
) -> None:
    expected = json.loads((VECTOR / "expected.json").read_text())
    template_id = demo.add_template(json.loads((VECTOR / "template.json").read_text()))
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"{demo.host_page}?template={template_id}")
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    notice = frame.locator("#engine-notice")
    expect(notice).to_be_hidden()
    # the primary engine (a helper engine, browser/src/parallel.js, boots beside it)
    (worker,) = [w for w in page.workers if w.evaluate("() => self.name") == "loadbay-engine"]
    # A fatal error nothing in the worker catches (as a panic in Rust ends up).
    worker.evaluate("() => { setTimeout(() => { throw new Error('simulated engine crash'); }); }")
    expect(notice).to_be_visible(timeout=10_000)
    expect(notice).to_contain_text("engine stopped")
    expect(notice).to_contain_text("Pick the file again")
    frame.locator("#file-input").set_input_files(VECTOR / "data.csv")
    frame.locator("#map-continue").click(timeout=60_000)
    errors = len(expected["errors"])
    expect(frame.locator("#summary")).to_contain_text(f"{errors} problems in", timeout=60_000)
    context.close()
