"""The invalid-row policy: which rows are sent, left out, or delivered with their errors.

One rule for both sides: the browser's batch plan and review summary, and the server's
re-check of every batch, ask this module; the template (`x-loadbay.invalidRowPolicy`,
else the organisation's default) says which policy applies.
"""

from __future__ import annotations

import bisect
from collections.abc import Container
from dataclasses import dataclass, field

from pipeline.cell_errors import CellError
from pipeline.schema import RowPolicy


def rows_sent(policy: RowPolicy, kept: list[int], invalid: Container[int]) -> list[int]:
    """The kept rows that travel: all of them, except invalid ones under valid-only."""
    if policy is RowPolicy.VALID_ONLY:
        return [i for i in kept if i not in invalid]
    return kept


def submittable(policy: RowPolicy, rows: int, rows_with_errors: int) -> bool:
    """Whether the user may submit: reject needs every row valid, valid-only one valid row."""
    if policy is RowPolicy.REJECT:
        return rows > 0 and rows_with_errors == 0
    if policy is RowPolicy.VALID_ONLY:
        return rows > rows_with_errors
    return rows > 0


def may_pass(policy: RowPolicy, rows_with_errors: int) -> bool:
    """Whether a file read so far with these invalid rows can still be submitted, whatever
    its other rows hold: under reject, one invalid row refuses it whole."""
    return policy is not RowPolicy.REJECT or rows_with_errors == 0


def left_out_per_batch(kept: list[int], sent: list[int], spans: list[tuple[int, int]]) -> list[int]:
    """How many kept rows each batch (offset, length over `sent`) leaves out: those after
    the previous batch's last row up to its own last row; the last batch takes the rest."""
    counts = []
    before = 0  # kept rows up to the end of the previous batch
    for number, (offset, length) in enumerate(spans):
        last = number == len(spans) - 1
        upto = len(kept) if last else bisect.bisect_right(kept, sent[offset + length - 1])
        counts.append(upto - before - length)
        before = upto
    return counts


@dataclass(frozen=True)
class Judged:
    """A batch's rows under its policy: the positions to store, how many were left out,
    and (with-errors) each stored position's errors."""

    keep: list[int]
    left_out: int
    errors: dict[int, list[CellError]] = field(default_factory=dict)


def judge(policy: RowPolicy, errors: list[CellError], rows: list[int]) -> Judged | None:
    """What to store of a batch whose rows have these numbers; None: refuse it (reject)."""
    if errors and policy is RowPolicy.REJECT:
        return None
    position = {row: at for at, row in enumerate(rows)}
    by_position: dict[int, list[CellError]] = {}
    for error in errors:
        by_position.setdefault(position[error.row], []).append(error)
    if policy is RowPolicy.VALID_ONLY:
        keep = [at for at in range(len(rows)) if at not in by_position]
        return Judged(keep, len(rows) - len(keep))
    return Judged(list(range(len(rows))), 0, by_position)
