"""A field's data classification (`x-loadbay.classification`): the four classes parse, any
other value is refused naming the field, and the personal-data fields are found."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import TemplateError
from pipeline.template import CLASSIFICATIONS, parse_template, personal_fields


def _schema(**classes: Any) -> dict[str, Any]:
    return {
        "fields": [
            {"name": name, "type": "string", "x-loadbay": {"classification": value}}
            for name, value in classes.items()
        ]
        + [{"name": "plain", "type": "string"}]
    }


def test_the_four_classes_parse_and_personal_fields_are_found() -> None:
    schema = _schema(a="public", b="internal", c="confidential", email="personal", phone="personal")
    assert CLASSIFICATIONS == ("public", "internal", "confidential", "personal")
    assert [f.name for f in parse_template(schema).fields] == [
        "a",
        "b",
        "c",
        "email",
        "phone",
        "plain",
    ]
    assert personal_fields(schema) == frozenset({"email", "phone"})
    assert personal_fields({}) == frozenset()


@pytest.mark.parametrize("value", ["secret", "", 3, ["personal"]])
def test_any_other_class_is_refused_naming_the_field(value: object) -> None:
    with pytest.raises(
        TemplateError, match='Field "email": "x-loadbay.classification" must be one of'
    ):
        parse_template(_schema(email=value))
