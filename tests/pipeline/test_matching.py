"""normalise() and match_columns(): the mapping the importer proposes by default."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.matching import match_columns, normalise
from pipeline.template import Template


def template(*fields: dict[str, Any]) -> Template:
    return Template.from_dict({"fields": list(fields)})


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("email", "email"),
        ("E-mail Address ", "emailaddress"),
        ("  First_Name  ", "firstname"),
        ("ZIP/Postal code", "zippostalcode"),
        ("Zoë Müller", "zoemuller"),
        ("Ça va", "cava"),
        ("ＡＢＣ１２", "abc12"),  # full-width forms
        ("ﬁrst", "first"),  # ligature
        ("Phone #2", "phone2"),
        ("Имя", "имя"),  # letters of other scripts are kept
        ("名前", "名前"),
        ("---", ""),
        ("", ""),
    ],
)
def test_normalise(label: str, key: str) -> None:
    assert normalise(label) == key


def test_match_by_name_title_and_synonym() -> None:
    t = template(
        {"name": "email", "x-loadbay": {"synonyms": ["mail", "courriel"]}},
        {"name": "full_name", "title": "Full name"},
        {"name": "age"},
        {"name": "unmatched"},
    )
    headers = ("Courriel", "Notes", "AGE", "Full Name")
    assert match_columns(headers, t) == {"email": 0, "age": 2, "full_name": 3}


def test_match_ignores_case_accents_spacing_and_punctuation() -> None:
    t = template(
        {"name": "first_name"},
        {"name": "email_address", "title": "E-mail address"},
        {"name": "cafe"},
    )
    headers = ["  FIRST name ", "Café", "email-ADDRESS"]
    assert match_columns(headers, t) == {"first_name": 0, "email_address": 2, "cafe": 1}


def test_name_is_tried_before_title_and_synonyms() -> None:
    t = template({"name": "phone", "title": "Mobile", "x-loadbay": {"synonyms": ["tel"]}})
    assert match_columns(["tel", "Mobile", "phone"], t) == {"phone": 2}
    assert match_columns(["tel", "Mobile"], t) == {"phone": 1}
    assert match_columns(["tel"], t) == {"phone": 0}


def test_a_column_is_used_at_most_once() -> None:
    t = template(
        {"name": "email"},
        {"name": "contact", "x-loadbay": {"synonyms": ["email", "contact email"]}},
    )
    # The first field takes "Email"; the second falls through to its next synonym.
    assert match_columns(["Email", "Contact e-mail"], t) == {"email": 0, "contact": 1}
    # ...and gets nothing when no other column fits.
    assert match_columns(["Email"], t) == {"email": 0}


def test_first_of_equal_columns_wins() -> None:
    t = template({"name": "name"})
    assert match_columns(["Name", "Name (2)", "NAME"], t) == {"name": 0}


def test_nothing_matches() -> None:
    assert match_columns(["x", "y"], template({"name": "a"}, {"name": "b"})) == {}


def test_non_latin_headers_match_only_their_own_field() -> None:
    t = template(
        {"name": "first", "title": "Имя"},
        {"name": "last", "title": "Фамилия"},
    )
    assert match_columns(["Фамилия", "Имя"], t) == {"first": 1, "last": 0}


def test_punctuation_only_headers_and_labels_match_nothing() -> None:
    t = template({"name": "n", "title": "#"}, {"name": "m", "x-loadbay": {"synonyms": ["—"]}})
    assert match_columns(["#", "Имя", "-"], t) == {}
