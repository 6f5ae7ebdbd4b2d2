"""x-loadbay retentionDays: how long the server keeps an import's rows (0: passthrough)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import TemplateError
from pipeline.template import parse_template

FIELDS = [{"name": "a"}]
REFUSAL = (
    '"x-loadbay.retentionDays" must be a whole number of days from 0 to 365: 0 passes rows '
    "straight to the destinations without storing them; leave it out for the "
    "organisation's default."
)


@pytest.mark.parametrize("days", [0, 1, 30, 365])
def test_retention_days_from_0_to_365_are_kept(days: int) -> None:
    template = parse_template({"fields": FIELDS, "x-loadbay": {"retentionDays": days}})
    assert template.retention_days == days


def test_without_retention_days_the_organisation_decides() -> None:
    assert parse_template({"fields": FIELDS}).retention_days is None
    assert parse_template({"fields": FIELDS, "x-loadbay": {}}).retention_days is None


@pytest.mark.parametrize("value", [-1, 366, 30.5, "30", True, [30], {"days": 30}])
def test_other_retention_values_are_refused_saying_what_is_allowed(value: Any) -> None:
    with pytest.raises(TemplateError) as raised:
        parse_template({"fields": FIELDS, "x-loadbay": {"retentionDays": value}})
    assert str(raised.value) == REFUSAL
