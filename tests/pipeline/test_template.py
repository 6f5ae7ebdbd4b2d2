"""Template.from_dict / to_dict: what is accepted, and every refusal with its message."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import TemplateError
from pipeline.template import (
    DEFAULT_FALSE_VALUES,
    DEFAULT_TRUE_VALUES,
    Field,
    Template,
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
    t = Template.from_dict(CONTACTS)

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
        Template.from_dict(CONTACTS).field("nope")


def test_name_and_title_default_and_fall_back_to_x_loadbay() -> None:
    bare = Template.from_dict({"fields": [{"name": "a"}]})
    assert (bare.name, bare.title) == ("template", "")
    ext = Template.from_dict(
        {"fields": [{"name": "a"}], "x-loadbay": {"name": "people", "title": "People"}}
    )
    assert (ext.name, ext.title) == ("people", "People")


def test_enum_values_are_kept_as_text() -> None:
    t = Template.from_dict(
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
            "string, integer, number, boolean, date, datetime.",
        ),
        (
            {"fields": [{"name": "a", "type": "string", "format": "email"}]},
            'Field "a": format "email" is not supported; remove it.',
        ),
        (
            {"fields": [{"name": "a", "constraints": {"minLength": 2, "unique": True}}]},
            'Field "a": constraint(s) minLength, unique are not supported; remove them.',
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
            {"fields": [{"name": "a"}, {"name": "b"}, {"name": "a"}, {"name": "b"}]},
            "Field names must be unique; repeated: a, b.",
        ),
        (
            {"fields": [{"name": "a"}], "missingValues": ["", "NA"]},
            '"missingValues" other than [""] (empty cell) is not supported.',
        ),
        (
            {"fields": [{"name": "a"}], "missingValues": []},
            '"missingValues" other than [""] (empty cell) is not supported.',
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
        Template.from_dict(data)
    assert str(excinfo.value) == message


def test_explicit_defaults_are_accepted() -> None:
    t = Template.from_dict(
        {
            "fields": [{"name": "a", "type": "string", "format": "default", "constraints": {}}],
            "missingValues": [""],
        }
    )
    assert t.fields == (Field(name="a"),)


def test_to_dict_round_trips() -> None:
    t = Template.from_dict(CONTACTS)
    out = t.to_dict()

    assert Template.from_dict(out) == t
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
    out = Template.from_dict({"fields": [{"name": "b", "type": "boolean"}]}).to_dict()
    assert out["fields"] == [
        {
            "name": "b",
            "type": "boolean",
            "trueValues": ["true", "True", "TRUE", "1"],
            "falseValues": ["false", "False", "FALSE", "0"],
        }
    ]
