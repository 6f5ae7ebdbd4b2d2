"""The message catalogue: every key an error can carry has a message in every language."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

from pipeline.messages import CATALOGUE, ENGLISH, render

VALIDATION = Path(__file__).resolve().parents[2] / "pipeline" / "validation.py"


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("language", sorted(CATALOGUE))
def test_every_language_has_every_key_with_the_same_parameters(language: str) -> None:
    table = CATALOGUE[language]
    assert set(table) == set(ENGLISH)
    for key, template in table.items():
        assert _fields(template) == _fields(ENGLISH[key]), key


def test_every_key_the_checks_name_is_in_the_catalogue() -> None:
    source = VALIDATION.read_text("utf-8")
    named = set(re.findall(r'"((?:type\.)[a-z.]+)"', source))
    named |= set(re.findall(r'repeat\("([A-Za-z.]+)"\)', source))
    named |= {f"type.{t}" for t in ("integer", "number", "boolean", "date", "datetime", "time")}
    assert named and named <= set(ENGLISH), named - set(ENGLISH)


def test_render_fills_in_the_parameters() -> None:
    assert render("type.number.grouped", {"value": "1.0", "decimal": ",", "group": "."}) == (
        "\"1.0\" is not a number (use ',' for decimals and '.' between thousands)."
    )
    assert render("required", {"label": "E-mail"}, language="xx") == (
        "E-mail is required, but this cell is empty."
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("de", "„abc“ ist keine ganze Zahl."),
        ("fr", "« abc » n’est pas un nombre entier."),
        ("es", "«abc» no es un número entero."),
        ("ja", "「abc」は整数ではありません。"),
    ],
)
def test_engine_messages_speak_the_five_languages(language: str, expected: str) -> None:
    assert set(CATALOGUE) == {"en", "de", "fr", "es", "ja"}
    assert render("type.integer", {"value": "abc"}, language) == expected
    rendered = render("type.number.grouped", {"value": "1", "decimal": ",", "group": "."}, language)
    assert "','" in rendered and "'.'" in rendered


def test_the_page_language_is_used_until_changed() -> None:
    from pipeline import bridge

    try:
        assert json.loads(bridge.set_language("fr")) == {"ok": True, "value": "fr"}
        assert (
            render("required", {"label": "E-mail"})
            == "E-mail est obligatoire, mais cette cellule est vide."
        )
        assert render("required", {"label": "E-mail"}, "en").startswith("E-mail is required")
        assert json.loads(bridge.set_language("xx")) == {"ok": True, "value": "en"}
        assert render("required", {"label": "E-mail"}).startswith("E-mail is required")
    finally:
        bridge.set_language("en")
