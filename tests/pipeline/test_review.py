"""The edit overlay: windows, filters, edits with re-validation, replace, delete, undo."""

from __future__ import annotations

import random
from typing import Any

import arro3.compute as acc
import arro3.core as ac
import pyarrow as pa
import pytest

from pipeline.review import MAX_WINDOW, Review, View, take_rows
from pipeline.template import parse_template
from pipeline.validation import CellError, validate

TEMPLATE: dict[str, Any] = {
    "fields": [
        {"name": "name", "title": "Name", "constraints": {"required": True}},
        {"name": "age", "type": "integer"},
        {"name": "country", "constraints": {"enum": ["GB", "FR"]}},
    ]
}


def window(review: Review, start: int, count: int) -> list[dict[str, Any]]:
    """The window as the worker sends it."""
    return [row.to_dict() for row in review.window(start, count)]


def afresh(review: Review) -> list[CellError]:
    """What validating the edited file from scratch gives (the kept rows, edits applied)."""
    kept = review.kept_rows()
    return validate(review.materialise(kept), review.template, [2 + i for i in kept])


def _review(rows: list[tuple[str | None, ...]], template: dict[str, Any] = TEMPLATE) -> Review:
    names = [f["name"] for f in template["fields"]]
    columns = list(zip(*rows, strict=True))
    table = ac.Table.from_arrays(
        [ac.Array(list(c), ac.DataType.string()) for c in columns],
        schema=ac.Schema([ac.Field(n, ac.DataType.string(), True) for n in names]),
    )
    return Review(table, parse_template(template), first_row=2)


ROWS: list[tuple[str | None, ...]] = [
    ("Ada", "36", "GB"),
    (None, "x", "FR"),
    ("Alan", "41", "XX"),
]


def test_summary_counts_errors_by_field_and_code() -> None:
    summary = _review(ROWS).summary()
    assert summary.to_dict() == {
        "policy": "reject",
        "sent": 3,
        "left_out": 0,
        "submittable": False,
        "fields": ["name", "age", "country"],
        "rows": 3,
        "deleted": 0,
        "error_count": 3,
        "rows_with_errors": 2,
        "by_field": {"name": 1, "age": 1, "country": 1},
        "by_code": {"required": 1, "type-error": 1, "enum": 1},
        "view_rows": 3,
        "can_undo": False,
    }


def test_window_returns_cells_row_numbers_and_messages() -> None:
    shown = window(_review(ROWS), 1, 5)
    assert [r["row"] for r in shown] == [3, 4]
    assert shown[0] == {
        "index": 1,
        "row": 3,
        "cells": {"name": None, "age": "x", "country": "FR"},
        "errors": {
            "name": ["Name is required, but this cell is empty."],
            "age": ['"x" is not a whole number.'],
        },
        "edited": [],
        "fixes": {},
        "row_errors": [],
    }


def test_window_is_capped() -> None:
    review = _review([("n", "1", "GB")] * (MAX_WINDOW + 10))
    assert len(window(review, 0, 10_000)) == MAX_WINDOW


@pytest.mark.parametrize(
    ("view", "rows"),
    [
        (View(), [2, 3, 4]),
        (View(errors_only=True), [3, 4]),
        (View(field="country"), [4]),
        (View(code="type-error"), [3]),
        (View(field="name", code="enum"), []),
    ],
)
def test_views_filter_rows(view: View, rows: list[int]) -> None:
    review = _review(ROWS)
    assert review.set_view(view).view_rows == len(rows)
    assert [r["row"] for r in window(review, 0, 10)] == rows


def test_edit_revalidates_the_row_and_undo_restores_it() -> None:
    review = _review(ROWS)
    after = review.edit(1, "age", "37")
    assert after.error_count == 2 and after.by_field == {"name": 1, "country": 1}
    assert window(review, 1, 1)[0]["edited"] == ["age"]
    assert review.edit(1, "name", "Grace").rows_with_errors == 1
    assert review.edit(2, "country", "Narnia").by_code == {"enum": 1}
    review.undo()
    review.undo()
    summary = review.undo()
    assert summary.error_count == 3 and summary.can_undo is False
    assert window(review, 1, 1)[0]["cells"] == {"name": None, "age": "x", "country": "FR"}


def test_an_edit_can_introduce_an_error() -> None:
    review = _review(ROWS)
    summary = review.edit(0, "age", "old")
    assert summary.error_count == 4
    assert window(review, 0, 1)[0]["errors"] == {"age": ['"old" is not a whole number.']}


def test_clearing_a_cell_makes_it_empty() -> None:
    review = _review(ROWS)
    review.edit(0, "name", "")
    assert window(review, 0, 1)[0]["errors"]["name"] == [
        "Name is required, but this cell is empty."
    ]


def test_replace_in_one_column_is_one_undo_step() -> None:
    review = _review([("a b", "1", "GB"), ("c b", "2", "GB"), ("x", "3", "GB")])
    summary = review.replace("name", " b", "")
    assert summary.changed == 2
    assert [r["cells"]["name"] for r in window(review, 0, 3)] == ["a", "c", "x"]
    review.undo()
    assert [r["cells"]["name"] for r in window(review, 0, 3)] == ["a b", "c b", "x"]
    assert review.replace("name", "", "z").changed == 0


def test_delete_rows_and_rows_with_errors() -> None:
    review = _review(ROWS)
    assert review.delete_rows([2]).rows == 2
    assert review.summary().error_count == 2
    summary = review.delete_rows_with_errors()
    assert summary.rows == 1 and summary.error_count == 0
    assert review.kept_rows() == [0]
    review.undo()
    assert review.kept_rows() == [0, 1]
    with pytest.raises(IndexError):
        review.edit(2, "name", "deleted rows cannot be edited")


def test_materialise_applies_edits_and_skips_deleted_rows() -> None:
    review = _review(ROWS)
    review.edit(1, "name", "Grace")
    review.delete_rows([2])
    table = pa.table(review.materialise(review.kept_rows()))
    assert table.to_pylist() == [
        {"name": "Ada", "age": "36", "country": "GB"},
        {"name": "Grace", "age": "x", "country": "FR"},
    ]


UNIQUE: dict[str, Any] = {
    "fields": [
        {"name": "code", "constraints": {"unique": True}},
        {"name": "note"},
    ]
}


def test_unique_values_are_rechecked_across_rows_after_an_edit() -> None:
    review = _review([("A", "x"), ("B", "y"), ("A", "z")], UNIQUE)
    assert review.summary().by_code == {"unique": 1}
    assert window(review, 2, 1)[0]["errors"]["code"][0].startswith('"A"')
    assert review.edit(2, "code", "C").error_count == 0
    # Editing another row into a duplicate flags the later one again.
    summary = review.edit(1, "code", "A")
    assert summary.by_code == {"unique": 1} and summary.rows_with_errors == 1
    assert window(review, 1, 1)[0]["errors"]["code"]
    assert review.undo().error_count == 0
    assert review.undo().by_code == {"unique": 1}


def test_deleting_a_duplicate_clears_the_unique_error() -> None:
    review = _review([("A", "x"), ("A", "y")], UNIQUE)
    assert review.summary().error_count == 1
    assert review.delete_rows([0]).error_count == 0


def test_fix_column_applies_the_engines_proposals() -> None:
    template: dict[str, Any] = {
        "fields": [{"name": "day", "type": "date"}, {"name": "n", "type": "number"}]
    }
    review = _review([("15/01/2024", "1,200.50"), ("2024-01-02", "x")], template)
    assert window(review, 0, 1)[0]["fixes"] == {"day": "2024-01-15", "n": "1200.50"}
    summary = review.fix_column("n")
    assert summary.changed == 1 and summary.by_field == {"day": 1, "n": 1}
    assert window(review, 0, 1)[0]["cells"]["n"] == "1200.50"
    assert window(review, 1, 1)[0]["fixes"] == {}  # nothing safe to propose for "x"


def test_row_numbers_survive_deleted_rows_in_batches_and_unique_messages(tmp_path: Any) -> None:
    """After a deletion, rows keep the numbers the user sees: in batches and in messages."""
    from pipeline.session import ImportSession

    path = tmp_path / "codes.csv"
    path.write_text("code,note\nA,x\nB,y\nC,z\nB,w\n", encoding="utf-8")
    session = ImportSession.open(str(path), "codes.csv", parse_template(UNIQUE))
    review = session.review
    assert window(review, 3, 1)[0]["errors"]["code"] == [
        '"B" is already in row 3: code must be unique.'
    ]
    review.delete_rows([0])
    assert window(review, 2, 1)[0]["errors"]["code"] == [
        '"B" is already in row 3: code must be unique.'
    ]
    review.edit(3, "code", "D")
    ((offset, length),) = session.batches()
    batch = pa.ipc.open_stream(session.encode_batch(offset, length)).read_all()
    assert batch.to_pydict() == {
        "code": ["B", "C", "D"],
        "note": ["y", "z", "w"],
        "__row": [3, 4, 5],
    }


def test_cross_row_recheck_leaves_other_rules_alone() -> None:
    template: dict[str, Any] = {
        "fields": [
            {"name": "name", "title": "Name", "constraints": {"required": True}},
            {"name": "code", "constraints": {"unique": True}},
        ]
    }
    review = _review([(None, "A"), ("Bo", "A"), ("Cy", "B")], template)
    assert review.summary().by_code == {"required": 1, "unique": 1}
    summary = review.edit(2, "code", "A")  # a second duplicate
    assert summary.by_code == {"required": 1, "unique": 2}
    assert window(review, 0, 1)[0]["errors"] == {
        "name": ["Name is required, but this cell is empty."]
    }
    assert review.edit(0, "code", "Z").by_code == {"required": 1, "unique": 1}


def test_take_rows_reads_across_chunks_without_combining_them() -> None:
    chunks = [ac.Array([f"v{i}" if i % 7 else None for i in range(s, s + n)], ac.DataType.string())
              for s, n in ((0, 5), (5, 1), (6, 9), (15, 4))]  # fmt: skip
    column = ac.ChunkedArray(chunks)
    whole = column.combine_chunks()
    rng = random.Random(3)
    cases = [[], [0], [18], [4, 5, 6], list(range(19)), list(range(3, 12)), [0, 5, 14, 15, 18]]
    cases += [sorted(rng.sample(range(19), k)) for k in (2, 5, 11) for _ in range(5)]
    for rows in cases:
        expected = acc.take(whole, ac.Array(rows, ac.DataType.int64())).to_pylist()
        assert take_rows(column, rows).to_pylist() == expected, rows


def _counted_afresh(review: Review) -> dict[str, Any]:
    """What summary() must say, counted from validating the edited file afresh."""
    errors = afresh(review)
    by_field: dict[str, int] = {}
    by_code: dict[str, int] = {}
    for e in errors:
        by_field[e.field] = by_field.get(e.field, 0) + 1
        by_code[e.constraint or e.code] = by_code.get(e.constraint or e.code, 0) + 1
    return {
        "error_count": sum(by_field.values()),
        "rows_with_errors": len({e.row for e in errors}),
        "by_field": by_field,
        "by_code": by_code,
    }


def test_summary_counts_stay_right_through_any_sequence_of_changes() -> None:
    rng = random.Random(5)
    rows = 60
    template = {
        "fields": [
            {"name": "email", "format": "email", "constraints": {"unique": True}},
            {"name": "name", "constraints": {"required": True}},
            {"name": "country", "constraints": {"enum": ["GB", "FR"]}},
        ]
    }
    review = _review(
        [
            (f"p{i % 45}@x.com" if i % 9 else f"bad {i}", None if i % 11 == 0 else f"N{i}",
             ("FR", "DE", "XX")[i % 3])
            for i in range(rows)
        ],
        template,
    )  # fmt: skip
    actions = [
        lambda: review.edit(rng.randrange(rows), "email", rng.choice(["a@b.co", "p1@x.com", "no"])),
        lambda: review.edit(rng.randrange(rows), "name", rng.choice(["", "Ada"])),
        lambda: review.edit(rng.randrange(rows), "country", rng.choice(["FR", "ZZ"])),
        lambda: review.delete_rows(rng.sample(range(rows), 3)),
        lambda: review.replace("country", "X", "F"),
        lambda: review.fix_column("country"),
        review.undo,
        review.undo,
    ]
    for step in range(120):
        try:
            rng.choice(actions)()
        except IndexError:  # a row already deleted
            pass
        summary = review.summary()
        fields = ("error_count", "rows_with_errors", "by_field", "by_code")
        got = {k: summary.to_dict()[k] for k in fields}
        assert got == _counted_afresh(review), f"after step {step}"
    assert review.summary().error_count > 0


RECHECKED_FIELDS: list[dict[str, Any]] = [
    {"name": "id", "type": "integer", "constraints": {"unique": True}},
    {"name": "email", "format": "email", "constraints": {"unique": True}},
    {"name": "name", "constraints": {"required": True}},
]


@pytest.mark.parametrize(
    "key",
    [None, ["id", "name"], ["name", "email"], "email", ["name"]],
    ids=["no key", "key id+name", "key name+email", "key email", "key name"],
)
def test_rechecks_after_edits_give_what_validating_afresh_gives(key: Any) -> None:
    """One-cell edits of a unique or key field recheck only rows holding the old or new value;
    a replace rechecks the cells it changed, all at once."""
    rng = random.Random(8)
    rows = 80
    template: dict[str, Any] = {"fields": RECHECKED_FIELDS}
    if key is not None:
        template["primaryKey"] = key
    review = _review(
        [(str(i % 50), f"p{i % 60}@x.com", None if i % 13 == 0 else f"N{i}") for i in range(rows)],
        template,
    )
    pool = {
        "id": ["1", "01", "7", "007", "49", "x", "", "1e3", "50"],
        "email": ["p1@x.com", "p2@x.com", "new@x.com", "bad", ""],
        "name": ["Ada", ""],
    }

    def change() -> None:
        choice = rng.random()
        if choice < 0.6:
            name = rng.choice(list(pool))
            review.edit(rng.randrange(rows), name, rng.choice(pool[name]))
        elif choice < 0.7:
            review.delete_rows(rng.sample(range(rows), rng.choice([1, 5])))
        elif choice < 0.8:  # many rows at once
            name = rng.choice(list(pool))
            find, new = rng.choice([("1", "2"), ("p", ""), ("@x", "@"), ("N", "")])
            review.replace(name, find, new)
        else:
            review.undo()

    kind = parse_template(template)
    for step in range(150):
        try:
            change()
        except IndexError:  # the row was deleted
            continue
        kept = review.kept_rows()
        afresh = validate(review.materialise(kept), kind, [2 + i for i in kept])
        assert review.error_list() == afresh, f"after step {step}"
    assert any(e.constraint == "unique" for e in review.error_list())
    if key is not None:
        assert any(e.code == "primary-key" for e in review.error_list())


def test_a_replace_over_many_rows_gives_what_validating_afresh_gives() -> None:
    review = _review([(f"N{i}", "x" if i % 2 else str(i), "GB") for i in range(500)])
    summary = review.replace("country", "GB", "XX")
    assert summary.changed == 500
    assert summary.by_field == {"age": 250, "country": 500}  # the age errors stay
    assert review.error_list() == afresh(review)
    assert review.undo().by_field == {"age": 250}
    assert review.error_list() == afresh(review)


@pytest.mark.parametrize("key", [["id"], ["id", "name"]])
def test_editing_a_key_cell_gives_what_validating_afresh_gives(key: list[str]) -> None:
    template = {
        "fields": [{"name": "id", "type": "integer"}, {"name": "name"}, {"name": "x"}],
        "primaryKey": key,
    }
    review = _review([(str(i % 250), "n", "x") for i in range(500)], template)
    assert review.summary().by_code == {"primary-key": 250}
    review.edit(260, "id", "1000")  # held 10, as row 10 does: both are unique now
    assert review.summary().by_code == {"primary-key": 249}
    assert review.error_list() == afresh(review)
    review.edit(261, "id", "1000")  # now a repeat of row 260's key
    assert review.summary().by_code == {"primary-key": 249}
    assert review.error_list() == afresh(review)
    (error,) = [e for e in review.error_list() if e.row == 263]
    assert error.code == "primary-key" and "is already in row 262" in error.message
    review.undo()
    review.undo()
    assert review.summary().by_code == {"primary-key": 250}
    assert review.error_list() == afresh(review)
