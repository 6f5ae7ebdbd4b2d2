"""Fixing a whole column in one step: list values mapped, ambiguous dates read, counts
before a change, next error, and the rows an import leaves out as a CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import arro3.core as ac
import pytest

from pipeline.errors import MappingError, TemplateError
from pipeline.matching import suggest_value
from pipeline.protocol import ValueSource
from pipeline.review import Review, View
from pipeline.review.dates import read
from pipeline.template import parse_template

COUNTRY: dict[str, Any] = {
    "name": "country",
    "title": "Country",
    "constraints": {"enum": ["DE", "FR", "GB"]},
    "x-loadbay": {"valueSynonyms": {"DE": ["Germany", "Deutschland"], "GB": ["United Kingdom"]}},
}
TEMPLATE: dict[str, Any] = {
    "fields": [
        {"name": "name", "title": "Name", "constraints": {"required": True}},
        COUNTRY,
        {"name": "joined", "title": "Joined", "type": "date"},
    ],
    "x-loadbay": {"invalidRowPolicy": "valid-only"},
}


def _review(rows: list[tuple[str | None, ...]], template: dict[str, Any] = TEMPLATE) -> Review:
    names = [f["name"] for f in template["fields"]]
    columns = list(zip(*rows, strict=True))
    table = ac.Table.from_arrays(
        [ac.Array(list(c), ac.DataType.string()) for c in columns],
        schema=ac.Schema([ac.Field(n, ac.DataType.string(), True) for n in names]),
    )
    return Review(table, parse_template(template), first_row=2)


ROWS: list[tuple[str | None, ...]] = [
    ("Ada", "germany", "2024-01-05"),
    ("Bea", "Deutschland", "05/06/2024"),
    ("Cy", "Germany", "13/06/2024"),
    ("Di", "france", "07/08/2024"),
    ("Ed", "Germny", "2024-02-01"),
    ("Flo", "Mars", "2024-02-02"),
    ("Gus", "Deutschland", "2024-02-03"),
]


@pytest.mark.parametrize(
    ("value", "expected", "source", "confidence"),
    [
        ("germany", "DE", ValueSource.SYNONYM, 1.0),
        (" Deutschland ", "DE", ValueSource.SYNONYM, 1.0),
        ("de", "DE", ValueSource.CASE, 1.0),
        ("f.r.", "FR", ValueSource.CASE, 1.0),
        ("Germny", "DE", ValueSource.FUZZY, 0.92),
        ("United Kingdon", "GB", ValueSource.FUZZY, 0.92),
    ],
)
def test_a_value_outside_the_list_gets_the_allowed_value_it_most_likely_means(
    value: str, expected: str, source: ValueSource, confidence: float
) -> None:
    field = parse_template({"fields": [COUNTRY]}).fields[0]
    suggestion = suggest_value(value, field.enum or (), field.value_synonyms)
    assert suggestion is not None
    assert (suggestion.value, suggestion.source, suggestion.confidence) == (
        expected,
        source,
        confidence,
    )


def test_a_value_like_nothing_allowed_gets_no_suggestion() -> None:
    assert suggest_value("Mars", ("DE", "FR", "GB")) is None
    assert suggest_value("   ", ("DE", "FR", "GB")) is None


def test_the_offending_values_are_listed_once_with_their_counts_most_frequent_first() -> None:
    review = _review(ROWS)
    (problems,) = review.questions().values
    listed = [
        (v.value, v.count, v.suggestion.value if v.suggestion else None) for v in problems.values
    ]
    assert listed == [
        ("Deutschland", 2, "DE"),
        ("Germany", 1, "DE"),
        ("Germny", 1, "DE"),
        ("Mars", 1, None),
        ("france", 1, None),  # a name for a code: only a synonym says so
        ("germany", 1, "DE"),
    ]
    assert problems.cells == 7 and problems.allowed == ("DE", "FR", "GB")


def test_mapping_values_changes_every_cell_at_once_and_one_undo_restores_them() -> None:
    review = _review(ROWS)
    summary = review.map_values(
        "country", {"Deutschland": "DE", "Germany": "DE", "germany": "DE", "france": "FR"}
    )
    assert summary.changed == 5
    countries = [row.cells["country"] for row in review.window(0, 10)]
    assert countries == ["DE", "DE", "DE", "FR", "Germny", "Mars", "DE"]
    assert [v.value for v in review.questions().values[0].values] == ["Germny", "Mars"]
    review.undo()
    assert [row.cells["country"] for row in review.window(0, 10)] == [r[1] for r in ROWS]
    assert not review.overlay.history


def test_mapping_to_a_value_the_field_does_not_allow_is_refused() -> None:
    review = _review(ROWS)
    with pytest.raises(MappingError, match="XX: not allowed in Country; choose one of DE, FR, GB"):
        review.map_values("country", {"Mars": "XX"})


def test_value_synonyms_must_name_allowed_values_of_a_list_field() -> None:
    bad = {**COUNTRY, "x-loadbay": {"valueSynonyms": {"US": ["America"]}}}
    with pytest.raises(TemplateError, match='"US", not an allowed value'):
        parse_template({"fields": [bad]})
    with pytest.raises(TemplateError, match="needs an"):
        parse_template({"fields": [{"name": "c", "x-loadbay": {"valueSynonyms": {}}}]})
    field = parse_template({"fields": [COUNTRY]}).fields[0]
    assert parse_template({"fields": [field.to_dict()]}).fields[0] == field


@pytest.mark.parametrize(
    ("text", "day_first", "expected"),
    [
        ("05/06/2024", True, "2024-06-05"),
        ("05/06/2024", False, "2024-05-06"),
        ("5.6.24", True, "2024-06-05"),
        ("13-06-2024", True, "2024-06-13"),
        ("13-06-2024", False, None),
        ("2024-06-13", True, None),
    ],
)
def test_numeric_dates_read_in_either_order(
    text: str, day_first: bool, expected: str | None
) -> None:
    date = read(text, day_first)
    assert (date.isoformat() if date else None) == expected


def test_an_ambiguous_date_column_is_asked_once_with_examples_and_a_hint() -> None:
    (question,) = _review(ROWS).questions().dates
    assert question.field == "joined"
    assert question.ambiguous == 2  # 05/06 and 07/08; 13/06 reads one way only
    assert [(e.value, e.day_first, e.month_first) for e in question.examples] == [
        ("05/06/2024", "2024-06-05", "2024-05-06"),
        ("07/08/2024", "2024-08-07", "2024-07-08"),
    ]
    assert question.hint is True  # 13/06/2024 says day first
    assert question.declared is None
    assert question.convertible == 3


def test_converting_dates_writes_every_cell_in_iso_as_one_undoable_step() -> None:
    review = _review(ROWS)
    summary = review.convert_dates("joined", day_first=True)
    assert summary.changed == 3
    dates = [row.cells["joined"] for row in review.window(0, 10)]
    assert dates[1:4] == ["2024-06-05", "2024-06-13", "2024-08-07"]
    assert review.questions().dates == ()
    assert not any(e.field == "joined" for e in review.error_list())
    review.undo()
    assert [row.cells["joined"] for row in review.window(0, 10)] == [r[2] for r in ROWS]


def test_month_first_leaves_the_cells_it_cannot_read_for_the_user() -> None:
    review = _review(ROWS)
    assert review.convert_dates("joined", day_first=False).changed == 2
    assert review.window(2, 1)[0].cells["joined"] == "13/06/2024"


def test_the_template_may_declare_the_order_so_nothing_is_asked() -> None:
    template = {
        "fields": [
            {"name": "name"},
            COUNTRY,
            {"name": "joined", "type": "date", "x-loadbay": {"dayFirst": False}},
        ]
    }
    (question,) = _review(ROWS, template).questions().dates
    assert question.declared is False and question.convertible == 2
    with pytest.raises(TemplateError, match="dayFirst"):
        parse_template({"fields": [{"name": "n", "x-loadbay": {"dayFirst": True}}]})


def test_replace_and_fix_all_say_how_many_cells_they_will_change() -> None:
    review = _review(ROWS)
    assert review.count_replace("country", "Deutsch") == 2
    assert review.replace("country", "Deutsch", "DE").changed == 2
    assert review.count_fix("joined") == 1  # 13/06/2024 reads one way; 05/06/2024 does not
    assert review.fix_column("joined").changed == 1
    assert review.count_fix("joined") == 0


def test_next_and_previous_error_wrap_around_the_view() -> None:
    review = _review(ROWS)
    errors = [i for i in range(7) if review.errors.of(i)]
    assert errors == [0, 1, 2, 3, 4, 5, 6]
    review.map_values("country", {"Deutschland": "DE", "Germany": "DE", "germany": "DE"})
    review.convert_dates("joined", day_first=True)
    review.set_view(View())
    found = review.error_at(0, 1)
    assert found is not None and (found.position, found.field) == (3, "country")
    back = review.error_at(3, -1)
    assert back is not None and back.position == 5  # wraps to the last: Mars
    review.map_values("country", {"france": "FR", "Germny": "DE"})
    review.delete_rows([5])
    assert review.error_at(0, 1) is None


def test_the_rows_left_out_download_as_csv_with_why_and_formulas_escaped() -> None:
    rows = [*ROWS[:2], ("=HYPERLINK(1)", "DE", "2024-01-01"), ("Hal", "-GB", "2024-01-02")]
    review = _review(rows)
    review.delete_rows([0])
    text = review.rejected(["Row", "Why"], "Deleted in review.")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["Row", "Name", "Country", "Joined", "Why"]
    assert lines[1] == ["2", "Ada", "germany", "2024-01-05", "Deleted in review."]
    assert lines[2][:4] == ["3", "Bea", "Deutschland", "05/06/2024"]
    assert "not one of the allowed values" in lines[2][4]
    assert lines[3][:3] == ["5", "Hal", "'-GB"]
    assert len(lines) == 4  # the =HYPERLINK row is valid: it is sent, not listed
