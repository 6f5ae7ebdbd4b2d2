"""How headless Chromium is started here, for the browser tests and the benchmark alike.

Debian's Chromium, as root, on a machine whose only network is loopback: without the
background-networking flags it keeps trying (and failing) to reach Google's hosts.
"""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("LOADBAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
