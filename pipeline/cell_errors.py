"""A problem in one cell, as data: where it is, its Frictionless code, its message's key.

Kept apart from the checks so that everything that reports cell errors (the checks,
the rules across rows and batches, the review) shares one small type.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from pipeline.messages import render

SHOWN_CHARS = 60
NO_PARAMS: Mapping[str, object] = MappingProxyType({})


class CellError(NamedTuple):
    """One problem in one cell. `row` is the row number as the user sees it in the file.

    `field` is None for a problem of the whole row (as Frictionless's row errors: a
    primary key that repeats, a row with more or fewer cells than the header).

    `key` and `params` make its message (`pipeline.messages`), rendered when it is shown,
    in the language it is shown in. Errors with the same message share one `params`.
    A NamedTuple, not a dataclass: a million-row file can have hundreds of thousands of
    these, and a tuple is several times cheaper to make.
    """

    row: int
    field: str | None
    code: str
    key: str
    constraint: str | None = None
    params: Mapping[str, object] = NO_PARAMS

    @property
    def message(self) -> str:
        return render(self.key, self.params)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "row": self.row,
            "field": self.field,
            "code": self.code,
            "message": self.message,
        }
        if self.constraint is not None:
            out["constraint"] = self.constraint
        if self.field is None and "fields" in self.params:  # a primary key's fields
            out["fields"] = list(self.params["fields"])  # type: ignore[call-overload]
        out["key"] = self.key
        out["params"] = dict(self.params)
        return out


new_error: Callable[
    [tuple[int, str | None, str, str, str | None, Mapping[str, object]]], CellError
] = functools.partial(tuple.__new__, CellError)  # as CellError(...), without a __new__ per error


def row_error(row: int, code: str, params: Mapping[str, object]) -> CellError:
    """A problem of the whole row (no field): its message key is its code."""
    return CellError(row, None, code, code, None, params)


def cut(value: str) -> str:
    """A cell's text as a message shows it: its first 60 characters."""
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"
