"""Value mapping for list fields: the distinct values outside a field's list, with counts and
a suggestion each (`pipeline.matching.suggest_value`), and mapping them all at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from pipeline.errors import MappingError
from pipeline.matching import suggest_value
from pipeline.protocol import OffendingValue, ValueProblems
from pipeline.review.overlay import Overlay
from pipeline.review.recheck import RowErrors
from pipeline.schema import Field

MAX_VALUES = 200  # distinct values listed on the screen; the rest are counted


def enum_rows(errors: RowErrors, name: str) -> list[int]:
    """Kept rows (ascending) whose cell of `name` is outside the field's list."""
    return errors.kept_rows_of(name, lambda e: e.constraint == "enum")


def value_problems(overlay: Overlay, errors: RowErrors, field: Field) -> ValueProblems | None:
    """The field's offending values, most frequent first; None if it has none."""
    if field.enum is None:
        return None
    rows = enum_rows(errors, field.name)
    if not rows:
        return None
    counts = Counter(v for v in overlay.values(rows, field.name) if v is not None)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    values = tuple(
        OffendingValue(value, count, suggest_value(value, field.enum, field.value_synonyms))
        for value, count in ranked[:MAX_VALUES]
    )
    return ValueProblems(
        field=field.name,
        allowed=field.enum,
        values=values,
        cells=len(rows),
        more=max(0, len(ranked) - MAX_VALUES),
    )


def mapped_cells(
    overlay: Overlay, errors: RowErrors, field: Field, mapping: Mapping[str, str]
) -> list[tuple[int, str]]:
    """(row index, allowed value) for every offending cell whose value `mapping` maps;
    MappingError if it maps to a value the field does not allow."""
    allowed = field.enum or ()
    wrong = sorted({v for v in mapping.values() if v not in allowed})
    if wrong:
        raise MappingError(
            f"{', '.join(wrong)}: not allowed in {field.label}; choose one of {', '.join(allowed)}."
        )
    rows = enum_rows(errors, field.name)
    return [
        (index, mapping[value])
        for index, value in zip(rows, overlay.values(rows, field.name), strict=True)
        if value is not None and value in mapping
    ]
