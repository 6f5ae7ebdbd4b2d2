"""Whole-column regex checks (`pipeline.scan`) give exactly what `fullmatch` per cell gives."""

from __future__ import annotations

import random
import re

import arro3.core as ac
import pytest

from pipeline import scan
from pipeline.template import parse_template
from pipeline.validation import validate

AWKWARD = [
    None,
    "",
    " ",
    '"',
    '""',
    'say "hi"',
    "a,b",
    "tab\there",
    "unit\x1fseparator",
    "line\nbreak",
    "carriage\rreturn",
    " padded ",
    "Zürich",
    "日本語",
    "x" * 300,
]


def _column(values: list[str | None]) -> ac.Array:
    return ac.Array(values, ac.DataType.string())


def _expected(values: list[str | None], pattern: re.Pattern[str]) -> list[int]:
    return [i for i, v in enumerate(values) if v is not None and not pattern.fullmatch(v)]


def _values(rng: random.Random, count: int, awkward: bool) -> list[str | None]:
    out: list[str | None] = []
    for i in range(count):
        if awkward and rng.random() < 0.05:
            out.append(rng.choice(AWKWARD))
        elif rng.random() < 0.02:
            out.append(f"not an address {i}")
        else:
            out.append(f"user{i}@example{i % 7}.com")
    return out


@pytest.mark.parametrize(
    "pattern",
    [
        r"[^@\s]+@[^@\s]+\.[^@\s.]+",
        r"\+?[0-9][0-9 ()\-]{6,19}",
        r".{0,12}",
        r"[^x]*",  # crosses line breaks in the joined text: must fall back
        r'"+',  # would match the writer's quoting of an empty cell
        r"(?!not).*",  # a lookaround: per cell
        r"(?i)USER[0-9]+@.*",  # inline flags cannot be wrapped: per cell
        r"\w+@\w+\.com",
        r"[\s\S]*@[\s\S]*",
        r"^user.*$",
        r"",
    ],
)
@pytest.mark.parametrize("awkward", [False, True])
def test_mismatched_equals_fullmatch_per_cell(pattern: str, awkward: bool) -> None:
    rng = random.Random(7)
    values = _values(rng, 5000, awkward)
    compiled = re.compile(pattern)
    assert scan.mismatched(_column(values), compiled) == _expected(values, compiled)


def test_every_awkward_cell_is_judged_on_its_own_text() -> None:
    values = AWKWARD * 20
    for pattern in (r".*", r"\S*", r'[^"]*', r".+", r"\s*"):
        compiled = re.compile(pattern)
        assert scan.mismatched(_column(values), compiled) == _expected(values, compiled)


def test_null_at_empties_exactly_the_given_cells() -> None:
    column = _column(["a", None, "c", "d", "e"])
    assert scan.null_at(column, [0, 3]).to_pylist() == [None, None, "c", None, "e"]
    assert scan.null_at(column, []).to_pylist() == ["a", None, "c", "d", "e"]


def test_mostly_unique_needs_a_long_column_of_distinct_text() -> None:
    assert scan.mostly_unique(_column([f"v{i}" for i in range(10_000)]))
    assert not scan.mostly_unique(_column([f"v{i % 50}" for i in range(10_000)]))
    assert not scan.mostly_unique(_column([f"v{i}" for i in range(100)]))  # too short to care


def test_validating_a_long_column_gives_what_short_batches_give() -> None:
    """A long column of distinct values takes the whole-column path; short ones do not."""
    template = parse_template(
        {
            "fields": [
                {"name": "email", "type": "string", "format": "email"},
                {"name": "code", "type": "string", "constraints": {"pattern": "[A-Z]{2}-[0-9]+"}},
                {"name": "day", "type": "date"},
                {
                    "name": "phone",
                    "type": "string",
                    "x-loadbay": {"transforms": [{"phone": {"region": "GB"}}]},
                },
            ]
        }
    )
    rng = random.Random(11)
    rows = 20_000
    emails = _values(rng, rows, awkward=True)
    codes = [f"AB-{i}" if rng.random() > 0.01 else f"ab-{i}" for i in range(rows)]
    days = [f"20{i % 100:02d}-0{1 + i % 9}-{10 + i % 18}" for i in range(rows)]
    days[123] = "2024-1-5"  # Arrow would read this as a date: the format check must not
    days[456] = "5/1/2024"
    phones = [f"+44 20 7946 {i % 10000:04d}" if i % 97 else "call me" for i in range(rows)]
    table = ac.Table.from_arrays(
        [_column(emails), _column(codes), _column(days), _column(phones)],
        names=["email", "code", "day", "phone"],
    )
    whole = validate(table, template, first_row=2)
    step = 1000  # below the length at which a column counts as mostly unique
    batched = []
    for offset in range(0, rows, step):
        batched += validate(table.slice(offset, step), template, first_row=2 + offset)
    assert whole == batched
    assert {e.row for e in whole if e.field == "day"} == {125, 458}
    assert sum(e.code == "type-error" and e.field == "email" for e in whole) > 100
    assert sum(e.field == "phone" for e in whole) == len(range(0, rows, 97))


def test_a_common_shape_only_ever_passes_what_its_pattern_passes() -> None:
    """The e-mail format's fast pass is a subset of the format: whatever it blanks, the
    format would pass; everything else is still judged by the format itself."""
    from pipeline.types import _COMMON_SHAPES, _EMAIL

    shape = _COMMON_SHAPES[_EMAIL.pattern]
    rng = random.Random(3)
    alphabet = "aZ09._+-@ .\t\"'é\x1f"
    tricky = ["a@b.c", "a@b..c", "a@.c", "a@b.", "@b.c", "a@@b.c", "A.B+c@X-Y.Z9", "a@b.c.",
              "a@b.c d", "a@-.c", "a.@b.c", ".a@b.c", "a@b.c\t", "é@b.c", "a@b.co\x1f"]  # fmt: skip
    randoms = [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))) for _ in range(20000)
    ]
    for value in tricky + randoms:
        if shape.fullmatch(value):
            assert _EMAIL.fullmatch(value), value
    values: list[str | None] = [*tricky, *randoms, *(f"u{i}@d{i}.org" for i in range(5000))]
    assert scan.mismatched(_column(values), _EMAIL, shape) == _expected(values, _EMAIL)
    assert scan.mismatched(_column(values), _EMAIL) == _expected(values, _EMAIL)
    assert sum(bool(shape.fullmatch(v or "")) for v in values) > 5000  # it does the usual ones
