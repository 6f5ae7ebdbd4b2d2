"""Validation: cells against the template, as data (Frictionless error codes).

One small check per concept. Cells are prepared first (missing values, transforms),
then parsed to their type: a cell that does not parse is a `type-error` and is not
checked further; constraints compare typed values. The work stays in Arrow kernels
(casts, null masks, take/filter, min/max) or runs once per distinct value; Python only
visits the cells that fail.

Every check but `unique` and `primaryKey` looks at one row, so a batch gives the same
errors as the whole file. For those two, the server passes `earlier`: what the import's
earlier batches held, so uniqueness holds across batches too.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import repeat

import arro3.compute as acc
import arro3.core as ac

from pipeline.cell_errors import NO_PARAMS, CellError, cut, new_error
from pipeline.errors import MappingError
from pipeline.keys import (
    CanonicalValues,
    EarlierBatches,
    comparable,
    find_repeats,
    primary_key_errors,
)
from pipeline.scan import mismatched, mostly_unique, positions
from pipeline.schema import Field, Template
from pipeline.transforms import E164, prepare
from pipeline.types import (
    Distinct,
    arrow_type,
    human_pattern,
    not_finite,
    parse,
    parse_one,
    too_large,
)

__all__ = [
    "CellError",
    "EarlierBatches",
    "arrow_type",
    "check_columns",
    "coerce",
    "validate",
    "validate_and_coerce",
]

_TEMPORAL = ("date", "datetime", "time", "year", "yearmonth")
_INT64 = ac.DataType.int64()


Rows = int | Sequence[int]
"""The first row's number, or every row's number (rows deleted in between)."""


def _row_numbers(rows: Rows) -> Callable[[int], int]:
    if isinstance(rows, int):
        first = rows
        return lambda index: first + index
    numbers = list(rows)
    return numbers.__getitem__


def validate(
    table: ac.Table,
    template: Template,
    first_row: Rows = 2,
    earlier: EarlierBatches | None = None,
    on_field: Callable[[int, int], None] | None = None,
) -> list[CellError]:
    """Check a table whose columns are named after template fields (strings, as read).

    Fields missing from the table are allowed unless required; columns that are not
    template fields are a `MappingError`: nothing unmapped may travel. `first_row` is
    the row number (as the user sees it) of the table's first row, or each row's number
    when rows were deleted in between.
    """
    return _validate(table, template, first_row, earlier, on_field, None)


def validate_and_coerce(
    table: ac.Table,
    template: Template,
    first_row: Rows = 2,
    earlier: EarlierBatches | None = None,
) -> tuple[list[CellError], ac.Table | None]:
    """`validate`, and the table `coerce` would give when no cell failed (else None).

    The server's path: each column is prepared and parsed once, for both.
    """
    typed: dict[str, ac.Array] = {}
    errors = _validate(table, template, first_row, earlier, None, typed)
    return errors, (None if errors else _typed_table(template, table.num_rows, typed))


def _validate(
    table: ac.Table,
    template: Template,
    first_row: Rows,
    earlier: EarlierBatches | None,
    on_field: Callable[[int, int], None] | None,
    keep: dict[str, ac.Array] | None,
) -> list[CellError]:
    row_of = _row_numbers(first_row)
    check_columns(table.column_names, template)
    found: dict[str, list[CellError]] = {name: [] for name in template.field_names}
    texts: dict[str, ac.Array] = {}
    typed: dict[str, ac.Array] = {}
    for done, field in enumerate(template.fields, start=1):
        if field.name in table.column_names:  # one column at a time: no copy of the table
            cells = _Cells(field, prepare(table, field, template), row_of)
            if field.name in template.primary_key:  # kept only where a later check needs it
                texts[field.name], typed[field.name] = cells.text, cells.typed
            for check in _CHECKS:
                found[field.name].extend(check(cells, earlier))
            if keep is not None:
                keep[field.name] = cells.typed
            del cells  # its typed column and distinct values go before the next field's
        if on_field is not None:  # (fields checked, of how many): for a progress bar
            on_field(done, len(template.fields))
    # Row errors (a repeated key: no field) first, as the review lists them.
    whole_rows: list[CellError] = []
    if template.primary_key:
        whole_rows.extend(primary_key_errors(template, texts, typed, row_of, earlier))
    # By row, then field (template order), then check: a stable sort by row alone keeps the rest.
    errors = whole_rows + list(itertools.chain.from_iterable(found.values()))
    errors.sort(key=operator.itemgetter(0))
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
    typed = {
        field.name: parse(field, prepare(table, field, template))
        for field in template.fields
        if field.name in table.column_names
    }
    return _typed_table(template, table.num_rows, typed)


def _typed_table(template: Template, num_rows: int, typed: Mapping[str, ac.Array]) -> ac.Table:
    columns: list[ac.Array] = []
    for field in template.fields:
        if field.name in typed:
            columns.append(typed[field.name])
        else:
            empty = ac.Array([None] * num_rows, ac.DataType.string())
            columns.append(acc.cast(empty, arrow_type(field)))
    schema = ac.Schema([ac.Field(f.name, arrow_type(f), True) for f in template.fields])
    return ac.Table.from_arrays(columns, schema=schema)


class _Cells:
    """One field's prepared text, typed values, and what the checks share."""

    def __init__(self, field: Field, text: ac.Array, row_of: Callable[[int], int]) -> None:
        self.field = field
        self.text = text
        self.row_of = row_of
        self.typed = parse(field, text)
        self._distinct_text: Distinct | None = None
        self._distinct_typed: Distinct | None = None
        self._lengths: ac.Array | None = None

    @property
    def distinct_text(self) -> Distinct:
        """For checks of one value at a time (lengths, patterns): values may repeat."""
        if self._distinct_text is None:
            self._distinct_text = Distinct.for_checks(self.text)
        return self._distinct_text

    @property
    def distinct_typed(self) -> Distinct:
        """Exactly the distinct typed values, for checks that compare them (unique, enum)."""
        if self._distinct_typed is None:
            self._distinct_typed = Distinct.of(self.typed)
        return self._distinct_typed

    @property
    def lengths(self) -> ac.Array:
        """Characters of each distinct text value (int64), counted once for both length
        rules, in one C call (`map(len)`) rather than a Python expression per value."""
        if self._lengths is None:
            self._lengths = ac.Array(list(map(len, self.distinct_text.values)), _INT64)
        return self._lengths

    def failing_mask(self, distinct: Distinct, bad: ac.Array) -> Iterable[tuple[int, str]]:
        """`failing`, with the distinct values' verdicts as an Arrow boolean array."""
        return self._typed_among(_indices(acc.take(bad, distinct.keys)))

    def failing(self, distinct: Distinct, bad: list[bool]) -> Iterable[tuple[int, str]]:
        """(index, cell text) of the rows whose distinct value is marked bad.

        A cell that failed its type is not checked further (its typed value is null).
        """
        if not any(bad):
            return ()
        return self._typed_among(_indices(distinct.spread(bad, ac.DataType.bool())))

    def mismatches(self, pattern: re.Pattern[str]) -> Iterable[tuple[int, str]]:
        """(index, cell text) of the typed cells that do not match `pattern` whole."""
        if not mostly_unique(self.text):
            values = self.distinct_text.values
            return self.failing(self.distinct_text, [not pattern.fullmatch(v) for v in values])
        return self._typed_among(ac.Array(mismatched(self.text, pattern), ac.DataType.int64()))

    def _typed_among(self, indices: ac.Array) -> Iterable[tuple[int, str]]:
        """(index, cell text) of those of `indices` whose cell parsed to its type."""
        typed = acc.is_not_null(acc.take(self.typed, indices))
        return _values(self.text, acc.filter(indices, typed))

    def reject(
        self,
        found: Iterable[tuple[int, str]],
        code: str,
        key: str,
        constraint: str | None,
        params: Mapping[str, object] = NO_PARAMS,
    ) -> Iterator[CellError]:
        """Errors for (index, cell text) pairs: `params` and each cell's text as `value`."""
        pairs = list(found)
        each = [{**params, "value": cut(value)} for _, value in pairs]
        return self.errors([index for index, _ in pairs], code, repeat(key), constraint, each)

    def errors(
        self,
        indices: Iterable[int],
        code: str,
        keys: Iterable[str],
        constraint: str | None,
        params: Iterable[Mapping[str, object]],
    ) -> Iterator[CellError]:
        """Many errors at once (a file can have hundreds of thousands): no call per error."""
        rows = map(self.row_of, indices)
        return map(new_error, zip(rows, repeat(self.field.name), repeat(code), keys,
                                   repeat(constraint), params))  # fmt: skip


# One check per concept, in the order a cell's errors are listed.


def _required(cells: _Cells, earlier: EarlierBatches | None) -> Iterable[CellError]:
    if not cells.field.required or cells.text.null_count == 0:
        return ()
    params = {"label": cells.field.label}  # one for every empty cell
    indices = _indices(acc.is_null(cells.text)).to_pylist()
    return cells.errors(indices, "constraint-error", repeat("required"), "required", repeat(params))


def _type(cells: _Cells, earlier: EarlierBatches | None) -> Iterable[CellError]:
    """Cells that are not empty but did not parse (typed null where the text is not)."""
    if cells.typed is cells.text or cells.typed.null_count == cells.text.null_count:
        return ()
    candidates = _indices(acc.is_null(cells.typed))
    field = cells.field
    key, params = type_key(field)
    # Empty cells are the required check's business.
    failed = [(i, value) for i, value in _values(cells.text, candidates) if value is not None]
    keys: Iterable[str] = (
        [_type_key_of(field, key, v) for _, v in failed]
        if field.type in ("integer", "number")
        else repeat(key)
    )
    each = [{**params, "value": cut(value)} for _, value in failed]
    return cells.errors([index for index, _ in failed], "type-error", keys, None, each)


def _type_key_of(field: Field, key: str, value: str) -> str:
    """The key of one cell's type error: a finite number or a 64-bit integer is asked for,
    and the cell is a number all the same, the common key otherwise."""
    if not_finite(field, value):
        return "type.number.finite"
    if too_large(field, value):
        return "type.integer.range"
    return key


def type_key(field: Field) -> tuple[str, dict[str, object]]:
    """The message key of a field's type errors, and its parameters (but the cell's value)."""
    if field.type == "boolean":
        return "type.boolean", {"allowed": ", ".join((*field.true_values, *field.false_values))}
    if field.type in ("integer", "number"):
        if field.group_char:
            params: dict[str, object] = {"decimal": field.decimal_char, "group": field.group_char}
            return f"type.{field.type}.grouped", params
        if field.decimal_char != ".":
            return f"type.{field.type}.decimal", {"decimal": field.decimal_char}
        return f"type.{field.type}", {}
    if field.type in ("date", "datetime", "time") and field.format == "any":
        return f"type.{field.type}.any", {}
    if field.type in ("date", "datetime", "time") and field.format != "default":
        return f"type.{field.type}.pattern", {"form": human_pattern(field.format)}
    return f"type.{field.format if field.type == 'string' else field.type}", {}


def _phone(cells: _Cells, earlier: EarlierBatches | None) -> Iterable[CellError]:
    """A field with a phone transform holds E.164 numbers: what it could not convert fails."""
    if not any(t.name == "phone" for t in cells.field.transforms):
        return ()
    return cells.reject(cells.mismatches(E164), "type-error", "type.phone", None)


def _enum(cells: _Cells, earlier: EarlierBatches | None) -> Iterable[CellError]:
    field = cells.field
    if field.enum is None:
        return ()
    allowed = {comparable(parse_one(field, v)) for v in field.enum}
    bad = [v not in allowed for v in cells.distinct_typed.values]
    failing = cells.failing(cells.distinct_typed, bad)
    params = {"allowed": ", ".join(field.enum)}
    return cells.reject(failing, "constraint-error", "enum", "enum", params)


def _minimum(cells: _Cells, earlier: EarlierBatches | None) -> Iterable[CellError]:
    return _bound(cells, "minimum", cells.field.minimum)


def _maximum(cells: _Cells, earlier: EarlierBatches | None) -> Iterable[CellError]:
    return _bound(cells, "maximum", cells.field.maximum)


def _bound(cells: _Cells, name: str, raw: int | float | str | None) -> Iterable[CellError]:
    if raw is None:
        return ()
    limit = comparable(parse_one(cells.field, str(raw)))
    low = name == "minimum"
    extreme = comparable((acc.min if low else acc.max)(cells.typed).as_py())
    if extreme is None or (extreme >= limit if low else extreme <= limit):
        return ()  # the column's own minimum (maximum) passes: every cell does
    bad = [(v < limit if low else v > limit) for v in cells.distinct_typed.values]
    key = f"{name}.temporal" if cells.field.type in _TEMPORAL else name
    failing = cells.failing(cells.distinct_typed, bad)
    return cells.reject(failing, "constraint-error", key, name, {"limit": raw})


def _min_length(cells: _Cells, earlier: EarlierBatches | None) -> Iterable[CellError]:
    return _length(cells, "minLength", cells.field.min_length)


def _max_length(cells: _Cells, earlier: EarlierBatches | None) -> Iterable[CellError]:
    return _length(cells, "maxLength", cells.field.max_length)


def _length(cells: _Cells, name: str, limit: int | None) -> Iterable[CellError]:
    if limit is None:
        return ()
    low = name == "minLength"
    # In Arrow: x >= 0 exactly where x casts to an unsigned integer (else null), so
    # len < limit is (limit - 1 - len) >= 0 and len > limit is (len - limit - 1) >= 0.
    lengths = cells.lengths
    if low:
        room = acc.sub(ac.Scalar(limit - 1, _INT64), lengths)
    else:
        room = acc.sub(lengths, ac.Scalar(limit + 1, _INT64))
    over = acc.cast(room, ac.DataType.uint64())
    if over.null_count == len(over):
        return ()  # every value within the limit
    failing = list(cells.failing_mask(cells.distinct_text, acc.is_not_null(over)))
    each = [{"value": cut(v), "length": len(v), "limit": limit} for _, v in failing]
    indices = [index for index, _ in failing]
    return cells.errors(indices, "constraint-error", repeat(name), name, each)


def _pattern(cells: _Cells, earlier: EarlierBatches | None) -> Iterable[CellError]:
    if cells.field.pattern is None:
        return ()
    failing = cells.mismatches(re.compile(cells.field.pattern))
    params = {"pattern": cells.field.pattern}
    return cells.reject(failing, "constraint-error", "pattern", "pattern", params)


def _unique(cells: _Cells, earlier: EarlierBatches | None) -> Iterable[CellError]:
    field = cells.field
    if not field.unique:
        return ()
    distinct = cells.distinct_typed
    repeats = find_repeats(
        distinct.keys,
        len(distinct.values),
        cells.row_of,
        earlier,
        f"unique:{field.name}",
        lambda indices: CanonicalValues(acc.take(cells.typed, indices)),
    )
    shown = dict(_values(cells.text, ac.Array([i for i, _ in repeats], ac.DataType.int64())))
    each = [
        {"value": cut(shown[index]), "first_row": row, "label": field.label}
        for index, row in repeats
    ]
    indices = [index for index, _ in repeats]
    return cells.errors(indices, "unique-error", repeat("unique"), "unique", each)


_CHECKS: tuple[Callable[[_Cells, EarlierBatches | None], Iterable[CellError]], ...] = (
    _required,
    _type,
    _phone,
    _enum,
    _minimum,
    _maximum,
    _min_length,
    _max_length,
    _pattern,
    _unique,
)


def _indices(mask: ac.Array) -> ac.Array:
    return acc.filter(positions(len(mask)), mask)


def _values(column: ac.Array, indices: ac.Array) -> Iterator[tuple[int, str]]:
    return zip(indices.to_pylist(), acc.take(column, indices).to_pylist(), strict=True)
