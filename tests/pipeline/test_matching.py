"""normalise(), propose() and header_signature(): the mapping the importer proposes."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from pipeline.matching import (
    FUZZY_THRESHOLD,
    Match,
    header_signature,
    normalise,
    propose,
)
from pipeline.template import Template, parse_template


def template(*fields: dict[str, Any]) -> Template:
    return parse_template({"fields": list(fields)})


def match_columns(headers: list[str], template: Template) -> dict[str, int]:
    """Field name -> column index, as `propose` has it with nothing remembered."""
    return {m.field: m.column for m in propose(headers, template)}


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


# --- propose(): sources and confidence ---------------------------------------------------------

CONTACTS = template(
    {
        "name": "full_name",
        "title": "Full name",
        "x-loadbay": {"synonyms": ["name", "contact name"]},
    },
    {"name": "email", "title": "Email", "x-loadbay": {"synonyms": ["e-mail", "email address"]}},
    {"name": "phone", "x-loadbay": {"synonyms": ["telephone", "mobile"]}},
    {"name": "signup_date", "title": "Signup date"},
    {"name": "country"},
)


def test_propose_reports_exact_and_synonym_matches_as_certain() -> None:
    headers = ["Contact Name", "E-MAIL ADDRESS", "Phone", "Signup Date", "Notes"]
    assert propose(headers, CONTACTS) == [
        Match("full_name", 0, 1.0, "synonym"),
        Match("email", 1, 1.0, "synonym"),
        Match("phone", 2, 1.0, "exact"),
        Match("signup_date", 3, 1.0, "exact"),
    ]


def test_propose_ignores_accents_and_punctuation() -> None:
    t = template({"name": "telephone", "title": "Téléphone"}, {"name": "e_mail"})
    assert propose(["TELEPHONE.", "É-Mail"], t) == [
        Match("telephone", 0, 1.0, "exact"),
        Match("e_mail", 1, 1.0, "exact"),
    ]


def test_propose_is_in_column_order_and_serialises() -> None:
    matches = propose(["Country", "Emial"], CONTACTS)
    assert [m.column for m in matches] == [0, 1]
    assert matches[1].to_dict() == {
        "field": "email",
        "column": 1,
        "confidence": 0.8,
        "source": "fuzzy",
        "proposed": False,
    }


@pytest.mark.parametrize(
    ("header", "field", "low", "high"),
    [
        ("Emial", "email", 0.75, 0.85),  # a typo
        ("Adress", "address", 0.88, 0.95),
        ("Phone Number", "phone", 0.6, 0.7),  # an extra word
        ("E-mail Address", "email", 0.6, 0.7),
        ("Date of signup", "signup_date", 0.65, 0.75),  # words in another order
        ("Name First", "first_name", 0.78, 0.86),
        ("Company Name", "company", 0.66, 0.76),
        ("Customer ID", "customer", 0.7, 0.8),
        ("Télephone", "telephone_number", 0.65, 0.75),
    ],
)
def test_fuzzy_matches_carry_their_confidence(
    header: str, field: str, low: float, high: float
) -> None:
    [match] = propose([header], template({"name": field}))
    assert (match.field, match.column, match.source) == (field, 0, "fuzzy")
    assert low <= match.confidence <= high
    assert FUZZY_THRESHOLD <= match.confidence < 1.0


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Last Name", "first_name"),  # one shared word is not enough
        ("Full Name", "first_name"),
        ("Status", "state"),
        ("Amt", "amount"),  # abbreviations are what synonyms are for
        ("Qty", "quantity"),
        ("Notes", "name"),
        ("Postal code", "zip_code"),
        ("Column 3", "country"),
    ],
)
def test_unlike_labels_are_not_proposed(header: str, field: str) -> None:
    assert propose([header], template({"name": field})) == []


def test_fuzzy_matches_also_try_titles_and_synonyms() -> None:
    t = template(
        {"name": "f1", "title": "Street address"},
        {"name": "f2", "x-loadbay": {"synonyms": ["mobile"]}},
    )
    assert [(m.field, m.column, m.source) for m in propose(["Mobil", "Street adress"], t)] == [
        ("f2", 0, "fuzzy"),
        ("f1", 1, "fuzzy"),
    ]


# --- propose(): global assignment --------------------------------------------------------------


def test_the_best_pair_wins_across_the_table_not_the_first_field() -> None:
    # Field by field, "address" (first in the template) would take the only column.
    t = template({"name": "address"}, {"name": "email_address"})
    assert propose(["Email adress", "Street"], t) == [Match("email_address", 0, 0.96, "fuzzy")]


def test_the_most_alike_column_wins_even_to_the_right() -> None:
    [match] = propose(["Street Adress", "Adress"], template({"name": "address"}))
    assert (match.column, match.confidence) == (1, 0.92)


def test_an_exact_match_beats_an_earlier_synonym_of_another_field() -> None:
    # "contact" lists "email" as a synonym, but "email" is another field's own name.
    t = template({"name": "contact", "x-loadbay": {"synonyms": ["email"]}}, {"name": "email"})
    assert propose(["Email", "Contact"], t) == [
        Match("email", 0, 1.0, "exact"),
        Match("contact", 1, 1.0, "exact"),
    ]


def test_certain_matches_are_taken_before_fuzzy_ones() -> None:
    t = template({"name": "email"}, {"name": "emails"})
    # "Emails" is exactly the second field, and the closest fuzzy column for "email".
    assert propose(["Emails", "E-mail"], t) == [
        Match("emails", 0, 1.0, "exact"),
        Match("email", 1, 1.0, "exact"),
    ]
    assert propose(["Emails", "Emial"], t) == [
        Match("emails", 0, 1.0, "exact"),
        Match("email", 1, 0.8, "fuzzy"),
    ]


def test_each_field_and_each_column_is_used_once() -> None:
    t = template({"name": "email"}, {"name": "mail", "x-loadbay": {"synonyms": ["email"]}})
    matches = propose(["email", "email", "Emial", "mail"], t)
    assert matches == [Match("email", 0, 1.0, "exact"), Match("mail", 3, 1.0, "exact")]


# --- propose(): remembered mappings ------------------------------------------------------------


def test_remembered_mappings_rank_first() -> None:
    remembered = {"Contact": "email", "Email": "phone"}
    assert propose(["Email", "Contact", "Phone"], CONTACTS, remembered) == [
        Match("phone", 0, 1.0, "remembered"),
        Match("email", 1, 1.0, "remembered"),
    ]  # "Phone" stays free: its field was remembered on another column


def test_remembered_labels_compare_normalised_verbatim_first() -> None:
    assert propose(["E-Mail", "Kontakt"], CONTACTS, {" kontakt ": "email"}) == [
        Match("email", 1, 1.0, "remembered"),
    ]
    # Two columns that normalise alike: the one spelled as remembered wins.
    assert propose(["CONTACT", "Contact"], CONTACTS, {"Contact": "email"}) == [
        Match("full_name", 0, 0.71, "fuzzy"),  # like its synonym "contact name"
        Match("email", 1, 1.0, "remembered"),
    ]


def test_remembered_fields_the_template_lost_are_ignored() -> None:
    remembered = {"Email": "old_field", "Telefon": "phone", "Gone": "country"}
    assert propose(["Email", "Telefon"], CONTACTS, remembered) == [
        Match("email", 0, 1.0, "exact"),
        Match("phone", 1, 1.0, "remembered"),
    ]


def test_propose_without_memory() -> None:
    headers = ["Contact Name", "Emial", "Mobile", "x"]
    assert match_columns(headers, CONTACTS) == {"full_name": 0, "email": 1, "phone": 2}


# --- header_signature() -----------------------------------------------------------------------


def test_header_signature_is_sha256_of_normalised_headers() -> None:
    expected = hashlib.sha256(b"email\x1ffullname").hexdigest()
    assert header_signature(["email", "full_name"]) == expected
    assert header_signature(["E-mail ", "Full Name"]) == expected
    assert header_signature(("EMAIL", " full-name")) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (["email", "name"], ["name", "email"]),  # order counts
        (["email", "name"], ["email"]),
        (["email", "name"], ["emailname"]),  # the separator keeps columns apart
        (["email", ""], ["email"]),
    ],
)
def test_different_headers_sign_differently(a: list[str], b: list[str]) -> None:
    assert header_signature(a) != header_signature(b)


@pytest.mark.parametrize(
    ("header", "proposed"),
    [("Emial", False), ("Phone Number", True), ("Date of signup", True)],
)
def test_unsure_fuzzy_matches_are_only_proposed(header: str, proposed: bool) -> None:
    (match,) = propose([header], CONTACTS)
    assert match.proposed is proposed
    assert match.to_dict()["proposed"] is proposed
