"""How headless Chromium is started here, for the browser tests and the benchmark alike.

Debian's Chromium, as root, on a machine whose only network is loopback: without the
background-networking flags it keeps trying (and failing) to reach Google's hosts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from playwright.sync_api import BrowserContext, Playwright

CHROMIUM = os.environ.get("LOADBAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def regular_window(playwright: Playwright, profile: Path) -> BrowserContext:
    """A regular window of a browser that allows third-party storage (Chrome's default),
    its profile in `profile`. Playwright's own contexts, incognito windows and this
    Chromium's default block third-party cookies: the embedded importer is then denied
    IndexedDB (no kept uploads, no engine snapshot)."""
    (profile / "Default").mkdir(parents=True, exist_ok=True)
    (profile / "Default" / "Preferences").write_text(
        json.dumps({"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}})
    )
    return playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, args=CHROMIUM_FLAGS, ignore_https_errors=True
    )
