"""Validation: cells against the template, as data (Frictionless-style error codes).

The work stays in Arrow kernels: a safe cast turns every unparsable cell into a null,
so only the cells that failed (plus the empty ones) are ever looked at in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import arro3.compute as acc
import arro3.core as ac

from pipeline.errors import MappingError
from pipeline.template import Field, Template

_CAST_TYPES = {
    "integer": ac.DataType.int64,
    "number": ac.DataType.float64,
    "date": ac.DataType.date32,
}
_TYPE_HINTS = {
    "integer": "is not a whole number",
    "number": "is not a number",
    "date": "is not a date (use YYYY-MM-DD)",
    "datetime": "is not a date and time (use YYYY-MM-DDThh:mm:ss, optionally with a time zone)",
}
_SHOWN_CHARS = 60
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class CellError:
    """One problem in one cell. `row` is the row number as the user sees it in the file."""

    row: int
    field: str
    code: str
    message: str
    constraint: str | None = None

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        if self.constraint is None:
            del out["constraint"]
        return out


def arrow_type(field: Field) -> ac.DataType:
    """The Arrow type a field's values are delivered as."""
    if field.type in _CAST_TYPES:
        return _CAST_TYPES[field.type]()
    if field.type == "datetime":
        return ac.DataType.timestamp("us", tz="UTC")
    if field.type == "boolean":
        return ac.DataType.bool()
    return ac.DataType.string()


def validate(table: ac.Table, template: Template, first_row: int = 2) -> list[CellError]:
    """Check a table whose columns are named after template fields (strings, as read).

    Fields missing from the table are allowed unless required; columns that are not
    template fields are a `MappingError`: nothing unmapped may travel.
    """
    check_columns(table.column_names, template)
    errors: list[CellError] = []
    for field in template.fields:
        if field.name not in table.column_names:
            continue
        column = table.column(field.name).combine_chunks()
        errors.extend(_check_field(field, column, first_row))
    order = {name: i for i, name in enumerate(template.field_names)}
    errors.sort(key=lambda e: (e.row, order[e.field]))
    return errors


def check_columns(columns: list[str], template: Template) -> None:
    unknown = [c for c in columns if c not in template.field_names]
    if unknown:
        raise MappingError(f"Columns {', '.join(unknown)} are not fields of the template.")
    missing = [f.label for f in template.fields if f.required and f.name not in columns]
    if missing:
        raise MappingError(
            f"Required field(s) {', '.join(missing)} are not mapped to any column. "
            "Map a column to each of them."
        )


def coerce(table: ac.Table, template: Template) -> ac.Table:
    """Typed columns for every template field, in template order (absent fields are null).

    Call only on a table that `validate` passed: cells that do not parse become null.
    """
    columns: list[ac.Array] = []
    for field in template.fields:
        target = arrow_type(field)
        if field.name not in table.column_names:
            empty = ac.Array([None] * table.num_rows, ac.DataType.string())
            columns.append(acc.cast(empty, target))
            continue
        column = table.column(field.name).combine_chunks()
        if field.type == "boolean":
            columns.append(_booleans(field, column)[0])
        elif field.type == "string":
            columns.append(column)
        else:
            columns.append(acc.cast(column, target))
    schema = ac.Schema([ac.Field(f.name, arrow_type(f), True) for f in template.fields])
    return ac.Table.from_arrays(columns, schema=schema)


def _check_field(field: Field, column: ac.Array, first_row: int) -> Iterator[CellError]:
    if field.required:
        for index in _indices(column, acc.is_null(column)).to_pylist():
            yield CellError(
                row=first_row + index,
                field=field.name,
                code="constraint-error",
                constraint="required",
                message=f"{field.label} is required, but this cell is empty.",
            )
    if field.type == "date":
        # Arrow's cast also takes "2024-1-2" and "20240102", and drops any time of day.
        distinct = _dictionary(column)
        parsed = acc.cast(ac.Array(distinct, ac.DataType.string()), arrow_type(field))
        ok = [
            p is not None and _ISO_DATE.fullmatch(v) is not None
            for v, p in zip(distinct, parsed.to_pylist(), strict=True)
        ]
        failed = _per_row(column, [not o for o in ok])
        yield from _type_errors(field, column, _indices(column, failed), first_row)
    elif field.type in _CAST_TYPES or field.type == "datetime":
        failed = acc.is_null(acc.cast(column, arrow_type(field)))
        yield from _type_errors(field, column, _indices(column, failed), first_row)
    elif field.type == "boolean":
        _, bad = _booleans(field, column)
        accepted = ", ".join((*field.true_values, *field.false_values))
        for index, value in _values(column, _indices(column, bad)):
            yield _type_error(field, index, value, first_row, f"is not one of {accepted}")
    if field.enum is not None:
        allowed = set(field.enum)
        bad = _per_row(column, [v not in allowed for v in _dictionary(column)])
        for index, value in _values(column, _indices(column, bad)):
            yield CellError(
                row=first_row + index,
                field=field.name,
                code="constraint-error",
                constraint="enum",
                message=f"{_show(value)} is not one of the allowed values: "
                f"{', '.join(field.enum)}.",
            )


def _type_errors(
    field: Field, column: ac.Array, candidates: ac.Array, first_row: int
) -> Iterator[CellError]:
    for index, value in _values(column, candidates):
        if value is not None:  # empty cells are the required check's business
            yield _type_error(field, index, value, first_row, _TYPE_HINTS[field.type])


def _type_error(field: Field, index: int, value: str, first_row: int, hint: str) -> CellError:
    return CellError(
        row=first_row + index,
        field=field.name,
        code="type-error",
        message=f"{_show(value)} {hint}.",
    )


def _booleans(field: Field, column: ac.Array) -> tuple[ac.Array, ac.Array]:
    """(typed values, per-row "not a boolean" mask), decided once per distinct value."""
    truth = {v: True for v in field.true_values} | {v: False for v in field.false_values}
    distinct = _dictionary(column)
    values = _per_row(column, [truth.get(v) for v in distinct])
    bad = _per_row(column, [v not in truth for v in distinct])
    return values, bad


def _dictionary(column: ac.Array) -> list[str]:
    return list(ac.dictionary_dictionary(acc.dictionary_encode(column)).to_pylist())


def _per_row(column: ac.Array, by_distinct: list[bool | None]) -> ac.Array:
    """Spread one answer per distinct value back to every row (null stays null)."""
    keys = ac.dictionary_indices(acc.dictionary_encode(column))
    return acc.take(ac.Array(by_distinct, ac.DataType.bool()), keys)


def _indices(column: ac.Array, mask: ac.Array) -> ac.Array:
    positions = ac.Array(range(len(column)), ac.DataType.int64())
    return acc.filter(positions, mask)


def _values(column: ac.Array, indices: ac.Array) -> Iterator[tuple[int, str]]:
    yield from zip(indices.to_pylist(), acc.take(column, indices).to_pylist(), strict=True)


def _show(value: str) -> str:
    shown = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
    return f'"{shown}"'
