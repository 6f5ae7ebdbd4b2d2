"""The review's one-step fixes through the worker's JSON bridge, as the page calls them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import bridge

TEMPLATE = json.dumps(
    {
        "fields": [
            {"name": "name", "title": "Name", "constraints": {"required": True}},
            {
                "name": "country",
                "title": "Country",
                "constraints": {"enum": ["DE", "FR"]},
                "x-loadbay": {"valueSynonyms": {"DE": ["Germany"]}},
            },
            {"name": "joined", "type": "date"},
        ],
        "x-loadbay": {"invalidRowPolicy": "valid-only"},
    }
)
CSV = "Name,Country,Joined\nAda,germany,05/06/2024\nBea,Dee,2024-01-01\nCy,DE,2024-01-02\n"


@pytest.fixture(autouse=True)
def opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(bridge, "_session", None)
    path = tmp_path / "members.csv"
    path.write_text(CSV, encoding="utf-8")
    assert json.loads(bridge.open_file(str(path), "members.csv", TEMPLATE))["ok"]
    assert json.loads(bridge.set_mapping(json.dumps({"name": 0, "country": 1, "joined": 2})))["ok"]
    yield


def value(raw: str) -> Any:
    decoded = json.loads(raw)
    assert decoded["ok"], decoded
    return decoded["value"]


def test_questions_map_values_and_convert_dates_answer_json() -> None:
    asked = value(bridge.questions())
    assert asked["values"] == [
        {
            "field": "country",
            "allowed": ["DE", "FR"],
            "values": [
                {
                    "value": "Dee",
                    "count": 1,
                    "suggestion": {"value": "DE", "confidence": 0.8, "source": "fuzzy"},
                },
                {
                    "value": "germany",
                    "count": 1,
                    "suggestion": {"value": "DE", "confidence": 1.0, "source": "synonym"},
                },
            ],
            "cells": 2,
            "more": 0,
        }
    ]
    assert asked["dates"] == [
        {
            "field": "joined",
            "ambiguous": 1,
            "convertible": 1,
            "examples": [
                {"value": "05/06/2024", "day_first": "2024-06-05", "month_first": "2024-05-06"}
            ],
            "declared": None,
            "hint": None,
        }
    ]
    assert value(bridge.count_fix("country")) == 0
    summary = value(bridge.map_values("country", json.dumps({"germany": "DE", "Dee": "FR"})))
    assert (summary["changed"], summary["error_count"]) == (2, 1)
    summary = value(bridge.convert_dates("joined", False))
    assert (summary["changed"], summary["error_count"]) == (1, 0)
    assert value(bridge.window(0, 1))[0]["cells"] == {
        "name": "Ada",
        "country": "DE",
        "joined": "2024-05-06",
    }
    assert value(bridge.error_at(0, 1)) is None


def test_a_value_mapped_to_something_not_allowed_is_a_message_not_a_crash() -> None:
    answer = json.loads(bridge.map_values("country", json.dumps({"germany": "Germany"})))
    assert answer == {
        "ok": False,
        "error": "Germany: not allowed in Country; choose one of DE, FR.",
    }


def test_counts_next_error_and_the_rows_left_out() -> None:
    assert value(bridge.count_replace("name", "a")) == 2  # Ada, Bea: case counts
    assert value(bridge.count_replace("name", "A")) == 1
    assert value(bridge.error_at(0, 1)) == {"position": 1, "field": "country"}
    assert value(bridge.error_at(0, -1)) == {"position": 1, "field": "country"}
    text = value(bridge.rejected_csv(json.dumps(["Row", "Why"]), "Deleted."))
    rows = list(csv.reader(io.StringIO(text)))
    assert [r[:4] for r in rows] == [
        ["Row", "Name", "Country", "joined"],
        ["2", "Ada", "germany", "05/06/2024"],
        ["3", "Bea", "Dee", "2024-01-01"],
    ]
