"""Template.from_dict / to_dict: what is accepted, and every refusal with its message."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import TemplateError
from pipeline.template import (
    DEFAULT_FALSE_VALUES,
    DEFAULT_TRUE_VALUES,
    Field,
    parse_template,
)

CONTACTS: dict[str, Any] = {
    "name": "contacts",
    "title": "Contacts",
    "fields": [
        {
            "name": "email",
            "title": "E-mail",
            "description": "Where we write to",
            "constraints": {"required": True},
            "x-loadbay": {"synonyms": ["mail", "email address"]},
        },
        {"name": "age", "type": "integer"},
        {"name": "plan", "constraints": {"enum": ["free", "pro"]}},
        {"name": "active", "type": "boolean", "trueValues": ["yes"], "falseValues": ["no"]},
        {"name": "joined", "type": "date"},
        {"name": "seen", "type": "datetime"},
        {"name": "score", "type": "number"},
    ],
    "missingValues": [""],
}


def test_from_dict_reads_fields_constraints_and_synonyms() -> None:
    t = parse_template(CONTACTS)

    assert t.name == "contacts"
    assert t.title == "Contacts"
    assert t.field_names == ("email", "age", "plan", "active", "joined", "seen", "score")
    assert [f.type for f in t.fields] == [
        "string",
        "integer",
        "string",
        "boolean",
        "date",
        "datetime",
        "number",
    ]
    email = t.field("email")
    assert email == Field(
        name="email",
        type="string",
        title="E-mail",
        description="Where we write to",
        required=True,
        synonyms=("mail", "email address"),
    )
    assert email.label == "E-mail"
    assert t.field("age").label == "age"
    assert t.field("age").required is False
    assert t.field("plan").enum == ("free", "pro")
    assert t.field("age").enum is None
    assert t.field("active").true_values == ("yes",)
    assert t.field("active").false_values == ("no",)
    assert t.field("score").true_values == DEFAULT_TRUE_VALUES
    assert t.field("score").false_values == DEFAULT_FALSE_VALUES


def test_field_lookup_of_unknown_name_raises_key_error() -> None:
    with pytest.raises(KeyError, match="nope"):
        parse_template(CONTACTS).field("nope")


def test_name_and_title_default_and_fall_back_to_x_loadbay() -> None:
    bare = parse_template({"fields": [{"name": "a"}]})
    assert (bare.name, bare.title) == ("template", "")
    ext = parse_template(
        {"fields": [{"name": "a"}], "x-loadbay": {"name": "people", "title": "People"}}
    )
    assert (ext.name, ext.title) == ("people", "People")


def test_enum_values_are_kept_as_text() -> None:
    t = parse_template(
        {"fields": [{"name": "n", "type": "integer", "constraints": {"enum": [1, 2]}}]}
    )
    assert t.field("n").enum == ("1", "2")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"name": "a"}], "A template must be a JSON object (a Table Schema)."),
        ("fields", "A template must be a JSON object (a Table Schema)."),
        ({}, 'A template needs a non-empty "fields" list.'),
        ({"fields": []}, 'A template needs a non-empty "fields" list.'),
        ({"fields": {"name": "a"}}, 'A template needs a non-empty "fields" list.'),
        ({"fields": ["a"]}, 'Field #1 needs a non-empty string "name".'),
        (
            {"fields": [{"name": "a"}, {"type": "string"}]},
            'Field #2 needs a non-empty string "name".',
        ),
        ({"fields": [{"name": ""}]}, 'Field #1 needs a non-empty string "name".'),
        ({"fields": [{"name": 3}]}, 'Field #1 needs a non-empty string "name".'),
        (
            {"fields": [{"name": "a", "type": "geopoint"}]},
            'Field "a": type "geopoint" is not supported; use one of '
            "string, integer, number, boolean, date, datetime, time, year, yearmonth, "
            "duration, any.",
        ),
        (
            {"fields": [{"name": "a", "type": "string", "format": "ipv4"}]},
            'Field "a": format "ipv4" is not supported; use default, email, uri, uuid, binary.',
        ),
        (
            {"fields": [{"name": "a", "type": "date", "format": "dd/mm/yyyy"}]},
            'Field "a": format "dd/mm/yyyy" is not supported; use default, any or a pattern '
            "such as %d/%m/%Y.",
        ),
        (
            {"fields": [{"name": "a", "type": "integer", "format": "any"}]},
            'Field "a": format "any" is not supported; use default.',
        ),
        (
            {"fields": [{"name": "a", "constraints": {"minLength": 2, "exclusiveMaximum": 3}}]},
            'Field "a": constraint(s) exclusiveMaximum are not supported; remove them.',
        ),
        (
            {"fields": [{"name": "a", "constraints": ["required"]}]},
            'Field "a": "constraints" must be an object.',
        ),
        (
            {"fields": [{"name": "a", "constraints": {"enum": []}}]},
            'Field "a": "enum" must be a non-empty list.',
        ),
        (
            {"fields": [{"name": "a", "constraints": {"enum": "x"}}]},
            'Field "a": "enum" must be a non-empty list.',
        ),
        (
            {"fields": [{"name": "n", "type": "integer", "constraints": {"enum": [1, "x"]}}]},
            'Field "n": "enum" value "x" is not a valid integer.',
        ),
        (
            {"fields": [{"name": "d", "type": "date", "constraints": {"minimum": "2024-13-01"}}]},
            'Field "d": "minimum" value "2024-13-01" is not a valid date.',
        ),
        (
            {"fields": [{"name": "s", "constraints": {"maximum": "z"}}]},
            'Field "s": "maximum" applies to integer, number, date, datetime, time, year, '
            "yearmonth fields, not string.",
        ),
        (
            {"fields": [{"name": "n", "type": "integer", "constraints": {"maxLength": 3}}]},
            'Field "n": "maxLength" applies to string fields, not integer.',
        ),
        (
            {"fields": [{"name": "s", "constraints": {"minLength": -1}}]},
            'Field "s": "minLength" must be a whole number, 0 or more.',
        ),
        (
            {"fields": [{"name": "s", "constraints": {"pattern": "("}}]},
            'Field "s": "pattern" is not a valid expression: missing ), unterminated subpattern '
            "at position 0.",
        ),
        (
            {"fields": [{"name": "s", "constraints": {"unique": "yes"}}]},
            'Field "s": "unique" must be true or false.',
        ),
        (
            {"fields": [{"name": "n", "type": "number", "decimalChar": ",,"}]},
            'Field "n": "decimalChar" must be one character.',
        ),
        (
            {"fields": [{"name": "a"}, {"name": "b"}, {"name": "a"}, {"name": "b"}]},
            "Field names must be unique; repeated: a, b.",
        ),
        (
            {"fields": [{"name": "a"}], "missingValues": "NA"},
            'The template: "missingValues" must be a list of strings.',
        ),
        (
            {"fields": [{"name": "a"}], "primaryKey": ["a", "b"]},
            '"primaryKey" names b, not fields of the template.',
        ),
        (
            {"fields": [{"name": "a"}], "primaryKey": 3},
            '"primaryKey" must be a field name or a list of field names.',
        ),
        (
            {"fields": [{"name": "a", "x-loadbay": {"transforms": ["strip"]}}]},
            'Field "a": transform "strip" is not supported; use "trim", {"case": '
            '"upper"|"lower"|"title"}, {"dateFrom": [patterns]} or {"phone": {"region": "GB"}}.',
        ),
        (
            {"fields": [{"name": "a", "x-loadbay": {"transforms": [{"case": "snake"}]}}]},
            'Field "a": transform "case" must be one of upper, lower, title.',
        ),
        (
            {"fields": [{"name": "a", "x-loadbay": {"transforms": [{"dateFrom": ["%d/%m/%Y"]}]}}]},
            'Field "a": transform "dateFrom" applies to date and datetime fields only.',
        ),
        (
            {
                "fields": [
                    {"name": "a", "type": "date", "x-loadbay": {"transforms": [{"dateFrom": []}]}}
                ]
            },
            'Field "a": transform "dateFrom" needs a list of patterns such as ["%d/%m/%Y"].',
        ),
        (
            {"fields": [{"name": "a", "x-loadbay": {"transforms": [{"phone": {"region": "XX"}}]}}]},
            'Field "a": transform "phone" needs {"region": "<two-letter country code>"}, '
            "the country a number without +prefix belongs to.",
        ),
        ({"fields": [{"name": "a"}], "x-loadbay": "x"}, '"x-loadbay" must be an object.'),
        (
            {"fields": [{"name": "a", "x-loadbay": ["mail"]}]},
            'Field "a": "x-loadbay" must be an object.',
        ),
        (
            {"fields": [{"name": "a", "x-loadbay": {"synonyms": "mail"}}]},
            'Field "a": "synonyms" must be a list of strings.',
        ),
        (
            {"fields": [{"name": "a", "type": "boolean", "trueValues": "yes"}]},
            'Field "a": "trueValues" must be a list of strings.',
        ),
        (
            {"fields": [{"name": "a", "type": "boolean", "falseValues": [0]}]},
            'Field "a": "falseValues" must be a list of strings.',
        ),
        (
            {"fields": [{"name": "a", "constraints": {"required": "false"}}]},
            'Field "a": "required" must be true or false.',
        ),
    ],
)
def test_from_dict_refuses(data: Any, message: str) -> None:
    with pytest.raises(TemplateError) as excinfo:
        parse_template(data)
    assert str(excinfo.value) == message


def test_explicit_defaults_are_accepted() -> None:
    t = parse_template(
        {
            "fields": [{"name": "a", "type": "string", "format": "default", "constraints": {}}],
            "missingValues": [""],
        }
    )
    assert t.fields == (Field(name="a"),)


def test_to_dict_round_trips() -> None:
    t = parse_template(CONTACTS)
    out = t.to_dict()

    assert parse_template(out) == t
    assert out["name"] == "contacts"
    assert out["title"] == "Contacts"
    assert out["missingValues"] == [""]
    assert out["fields"][0] == {
        "name": "email",
        "type": "string",
        "title": "E-mail",
        "description": "Where we write to",
        "constraints": {"required": True},
        "x-loadbay": {"synonyms": ["mail", "email address"]},
    }
    assert out["fields"][1] == {"name": "age", "type": "integer"}
    assert out["fields"][2] == {
        "name": "plan",
        "type": "string",
        "constraints": {"enum": ["free", "pro"]},
    }
    assert out["fields"][3] == {
        "name": "active",
        "type": "boolean",
        "trueValues": ["yes"],
        "falseValues": ["no"],
    }


def test_to_dict_writes_default_boolean_values() -> None:
    out = parse_template({"fields": [{"name": "b", "type": "boolean"}]}).to_dict()
    assert out["fields"] == [
        {
            "name": "b",
            "type": "boolean",
            "trueValues": ["true", "True", "TRUE", "1"],
            "falseValues": ["false", "False", "FALSE", "0"],
        }
    ]


FULL: dict[str, Any] = {
    "name": "people",
    "title": "People",
    "missingValues": ["", "NA", "-"],
    "primaryKey": ["id", "country"],
    "fields": [
        {"name": "id", "type": "integer", "bareNumber": False, "groupChar": ","},
        {"name": "country", "constraints": {"enum": ["GB", "FR"]}},
        {
            "name": "email",
            "type": "string",
            "format": "email",
            "constraints": {"unique": True, "minLength": 3, "maxLength": 80, "pattern": ".+@.+"},
            "x-loadbay": {"transforms": ["trim", {"case": "lower"}]},
        },
        {"name": "amount", "type": "number", "decimalChar": ",", "groupChar": "."},
        {
            "name": "born",
            "type": "date",
            "constraints": {"minimum": "1900-01-01", "maximum": "2030-12-31"},
            "x-loadbay": {"transforms": [{"dateFrom": ["%d/%m/%Y"]}]},
        },
        {"name": "seen", "type": "datetime", "format": "%d/%m/%Y %H:%M"},
        {"name": "at", "type": "time", "format": "any"},
        {"name": "y", "type": "year", "constraints": {"minimum": 1990}},
        {"name": "ym", "type": "yearmonth"},
        {"name": "took", "type": "duration"},
        {"name": "raw", "type": "any"},
        {"name": "phone", "x-loadbay": {"transforms": [{"phone": {"region": "GB"}}]}},
    ],
}


def test_every_supported_rule_round_trips() -> None:
    t = parse_template(FULL)
    assert t.missing_values == ("", "NA", "-")
    assert t.primary_key == ("id", "country")
    assert t.field("id").required and t.field("country").required  # key fields may not be empty
    assert t.field("id").bare_number is False and t.field("id").group_char == ","
    email = t.field("email")
    assert (email.format, email.unique, email.min_length, email.max_length) == (
        "email",
        True,
        3,
        80,
    )
    assert [tr.to_json() for tr in email.transforms] == ["trim", {"case": "lower"}]
    assert t.field("born").minimum == "1900-01-01"
    assert t.field("y").minimum == 1990
    out = t.to_dict()
    assert parse_template(out) == t
    assert out["primaryKey"] == ["id", "country"]
    assert out["missingValues"] == ["", "NA", "-"]
    assert out["fields"][3] == {
        "name": "amount",
        "type": "number",
        "decimalChar": ",",
        "groupChar": ".",
    }
    assert out["fields"][-1]["x-loadbay"] == {"transforms": [{"phone": {"region": "GB"}}]}


def test_a_single_primary_key_field_and_the_legacy_fmt_prefix() -> None:
    t = parse_template(
        {"fields": [{"name": "d", "type": "date", "format": "fmt:%d/%m/%Y"}], "primaryKey": "d"}
    )
    assert t.primary_key == ("d",)
    assert t.field("d").format == "%d/%m/%Y"
