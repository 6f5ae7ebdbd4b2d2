"""docs/security.md claims only what is tested: every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def test_every_test_the_security_page_names_exists() -> None:
    text = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    named = REFERENCE.findall(text)
    assert len(named) > 40
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not re.search(
            rf"^(async )?def {name}\(", (REPO / path).read_text(encoding="utf-8"), re.M
        )
    ]
    assert missing == []
