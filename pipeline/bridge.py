"""The browser worker's entry points: JSON strings in and out, one session at a time.

Errors the user can act on come back as {"ok": false, "error": message}; anything else
is a bug and propagates (the worker shows a generic message and logs the detail).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
from collections.abc import Callable
from typing import Any

import arro3.core as ac

from pipeline import chunking, messages
from pipeline.batches import BATCH_ROWS
from pipeline.delimited import Head, Part, read_part
from pipeline.errors import MappingError, PipelineError
from pipeline.protocol import Phase, SavedReview
from pipeline.readers import ReadOptions, file_kind, read_file
from pipeline.review import View
from pipeline.session import PREVIEW_ROWS, ImportSession
from pipeline.template import parse_template
from pipeline.validation import CellError

ON_DEMAND = ("python-calamine", "phonenumbers")
"""Browser packages loaded only for a file or template that needs them, not at boot: a
CSV import with no phone field never pays for them (about 40 MB of the tab's memory)."""

_session: ImportSession | None = None


OUT_OF_MEMORY = (
    "This file is too large for the memory a browser tab can use (about 4 GB here), so it "
    "was closed and nothing was sent. Save it as CSV, which takes far less memory to read "
    "than a spreadsheet, or split it into smaller files, and pick it again."
)


def _answer(work: Callable[[], Any]) -> str:
    global _session
    try:
        return json.dumps({"ok": True, "value": work()})
    except PipelineError as exc:
        return json.dumps({"ok": False, "error": str(exc)})
    except MemoryError:  # wasm32 stops at 4 GB: drop the file, so the tab can go on
        _session = None
        gc.collect()
        return json.dumps({"ok": False, "error": OUT_OF_MEMORY})


def _opened() -> ImportSession:
    """The open file, perhaps without the cells other engines have yet to send."""
    if _session is None:
        raise PipelineError("No file is open. Pick a file first.")
    return _session


def _current() -> ImportSession:
    """The open file with every cell (those other engines were to send are read here)."""
    session = _opened()
    if _awaited:
        _fill(session)
    return session


Progress = Callable[[str, int, int], None]
"""(phase, done, total): `Phase.PARSE` counts rows read (total 0: unknown), `Phase.VALIDATE`
fields checked."""


def packages_for(path: str, file_name: str, template_json: str) -> str:
    """Which of the ON_DEMAND packages opening this file with this template needs."""

    def work() -> Any:
        needed = []
        try:
            if file_kind(path, file_name).is_spreadsheet:
                needed.append("python-calamine")
        except PipelineError:
            pass  # unreadable: open_file says why, and needs no package to say it
        # Read from the JSON: the template model itself checks a phone transform's region
        # with phonenumbers.
        fields = json.loads(template_json).get("fields", [])
        transforms = [t for f in fields for t in f.get("x-loadbay", {}).get("transforms", [])]
        if any(isinstance(t, dict) and "phone" in t for t in transforms):
            needed.append("phonenumbers")
        return needed

    return _answer(work)


def _read_options(options_json: str, progress: Progress | None = None) -> ReadOptions:
    choices = json.loads(options_json)
    return ReadOptions(
        encoding=choices.get("encoding") or None,
        sheet=choices.get("sheet") or None,
        # 0 is "no header row" (pipeline.columns); absent or "" is "detect it".
        header_row=(
            None if choices.get("header_row") in (None, "") else int(choices["header_row"])
        ),
        max_bytes=int(choices.get("max_bytes") or ReadOptions.max_bytes),
        on_rows=(lambda rows: progress(Phase.PARSE.value, rows, 0)) if progress else None,
    )


def open_file(
    path: str,
    file_name: str,
    template_json: str,
    options_json: str = "{}",
    progress: Progress | None = None,
) -> str:
    """Read the file; options are the user's choices: encoding, sheet, header_row."""

    def work() -> Any:
        global _session
        _session = None  # a failed open must not leave the previous file in place
        _awaited.clear()
        options = _read_options(options_json, progress)
        template = parse_template(json.loads(template_json))
        _session = ImportSession.open(path, file_name, template, options)
        return _session.describe().to_dict()

    return _answer(work)


def close_file() -> str:
    """Drop the open file and its review (the importer was closed): nothing of it stays."""

    def work() -> Any:
        global _session
        _session = None
        _awaited.clear()
        gc.collect()
        return None

    return _answer(work)


def use_remembered(remembered_json: str) -> str:
    """Re-propose the mapping with what the server remembered for these headers."""

    def work() -> Any:
        session = _opened()  # the headers and the first rows: no other part is needed
        session.use_remembered(json.loads(remembered_json))
        return session.describe().to_dict()

    return _answer(work)


def set_mapping(mapping_json: str, progress: Progress | None = None) -> str:
    """Apply the user's mapping and validate every row; returns the review summary."""

    def work() -> Any:
        session = _current()
        session.set_mapping({k: int(v) for k, v in json.loads(mapping_json).items()})
        on_field = (
            (lambda done, total: progress(Phase.VALIDATE.value, done, total)) if progress else None
        )
        return session.start_review(on_field).summary().to_dict()

    return _answer(work)


def set_view(view_json: str) -> str:
    return _answer(
        lambda: _current().review.set_view(View.from_dict(json.loads(view_json))).to_dict()
    )


def window(start: int, count: int) -> str:
    return _answer(lambda: [row.to_dict() for row in _current().review.window(start, count)])


def edit(index: int, field: str, value_json: str) -> str:
    return _answer(lambda: _current().review.edit(index, field, json.loads(value_json)).to_dict())


def replace(field: str, find: str, replacement: str) -> str:
    return _answer(lambda: _current().review.replace(field, find, replacement).to_dict())


def fix_column(field: str) -> str:
    return _answer(lambda: _current().review.fix_column(field).to_dict())


def delete_rows(indices_json: str) -> str:
    return _answer(lambda: _current().review.delete_rows(json.loads(indices_json)).to_dict())


def delete_rows_with_errors() -> str:
    return _answer(lambda: _current().review.delete_rows_with_errors().to_dict())


def undo() -> str:
    return _answer(lambda: _current().review.undo().to_dict())


def saved_review() -> str:
    """The mapping and edits (never the file's cells), kept by the page to resume."""
    return _answer(lambda: _current().saved().to_dict())


def restore_review(saved_json: str) -> str:
    """Re-apply a saved mapping and edits to the same file; returns the review summary."""
    saved = SavedReview.from_dict(json.loads(saved_json))
    return _answer(lambda: _current().restore(saved).to_dict())


def batch_plan(batch_rows: int = BATCH_ROWS) -> str:
    return _answer(lambda: [b.to_dict() for b in _current().batch_plan(batch_rows)])


def encode_batch(offset: int, length: int) -> bytes:
    return _current().encode_batch(offset, length)


# -- review: one step per column, counts before a change, the rows left out ----------------


def questions() -> str:
    return _answer(lambda: _current().review.questions().to_dict())


def map_values(field: str, mapping_json: str) -> str:
    mapping = {str(k): str(v) for k, v in json.loads(mapping_json).items()}
    return _answer(lambda: _current().review.map_values(field, mapping).to_dict())


def convert_dates(field: str, day_first: bool) -> str:
    return _answer(lambda: _current().review.convert_dates(field, bool(day_first)).to_dict())


def count_replace(field: str, find: str) -> str:
    return _answer(lambda: _current().review.count_replace(field, find))


def count_fix(field: str) -> str:
    return _answer(lambda: _current().review.count_fix(field))


def error_at(position: int, step: int) -> str:
    def work() -> Any:
        found = _current().review.error_at(int(position), 1 if step > 0 else -1)
        return found.to_dict() if found else None

    return _answer(work)


def rejected_csv(header_json: str, deleted_reason: str) -> str:
    return _answer(lambda: _current().review.rejected(json.loads(header_json), deleted_reason))


def set_language(language: str) -> str:
    """The page's language, for the cell errors' messages (pipeline.messages)."""
    return _answer(lambda: messages.use_language(language))


# -- parallel engines (pipeline.chunking): the page routes, this engine reads its part -------
#
# A helper engine reads its part and sends only its row count, blank rows and row errors at
# open; its cells stay with it until it has validated them (set_mapping), and travel then,
# just before the helper is ended: the primary never holds the helper's cells while the
# helper still holds them too. Until they come, the primary's table holds null cells in
# their place (`_awaited`); anything that needs every cell before then (a helper lost, the
# mapping validated by one engine) reads those ranges here first (`_current`).

_part: Part | None = None  # the part of the file this engine read
_received: list[tuple[int, bytes]] = []  # the other engines' parts: rows, meta (primary)
_starts: tuple[int, ...] = ()  # where each part's rows start in the open file's table
_own_errors: list[CellError] | None = None  # this engine's part's errors (primary)
_awaited: dict[int, tuple[int, int, bool]] = {}  # part -> its bytes, last: cells not here yet
_source: tuple[str, Head] | None = None  # the open file's path and head, to read parts


def plan_parts(path: str, file_name: str, options_json: str, parts: int) -> str:
    """The head and byte ranges to read a large delimited file in `parts` engines; None:
    read it in one (small, not UTF-8, a spreadsheet or JSON, or unreadable: open_file says)."""

    def work() -> Any:
        global _part, _received, _session, _own_errors
        _session, _part, _received, _own_errors = None, None, [], None
        _awaited.clear()
        options = _read_options(options_json)
        try:
            head = chunking.splittable(path, file_name, options, chunking.SPLIT_BYTES)
        except PipelineError:
            return None
        if head is None or parts < 2:
            return None
        bounds = chunking.cuts(path, head.start, os.path.getsize(path), parts)
        return {"head": head.to_dict(), "bounds": bounds} if len(bounds) > 2 else None

    return _answer(work)


def read_part_at(path: str, head_json: str, start: int, end: int, last: bool) -> str:
    """Read bytes [start, end) of the data as part of the file; kept here until sent."""

    def work() -> Any:
        global _part
        _part = None
        _part = read_part(path, Head.from_dict(json.loads(head_json)), start, end, bool(last))
        return {"rows": _part.table.num_rows, "verified": _part.verified, "slow": _part.slow}

    return _answer(work)


def part_meta() -> bytes:
    """The blank rows and row errors of the part read here (`chunking.part_meta`)."""
    assert _part is not None  # noqa: S101 - read_part_at came first
    return chunking.part_meta(_part)


def send_cells(put: Callable[[Any], object]) -> None:
    """The cells of the part read here, for the primary engine, as an Arrow IPC stream in
    pieces handed to `put` (the worker copies each out: the stream is never held whole
    here); the part is let go."""
    global _part
    part, _part = _part, None
    assert part is not None  # noqa: S101 - read_part_at came first
    chunking.write_cells(part.table, put)


def add_part(rows: int, meta: Any) -> None:
    """Another engine's part (its rows and `part_meta`), in the order of the file."""
    _received.append((int(rows), _bytes(meta)))


def _bytes(data: Any) -> bytes:
    return bytes(data.to_bytes() if hasattr(data, "to_bytes") else data)


def open_parts(
    path: str, file_name: str, template_json: str, options_json: str, plan_json: str
) -> str:
    """The file from this engine's part and the parts added (`add_part`), joined as one
    engine reads it; a part cut inside quotes is read again here. As open_file answers,
    plus where each part's rows start ("starts": null when the parts were not used)."""

    def work() -> Any:
        global _session, _part, _received, _starts, _source
        plan = json.loads(plan_json)
        head = Head.from_dict(plan["head"])
        options = _read_options(options_json)
        template = parse_template(json.loads(template_json))
        width = len(head.headers)
        theirs = [chunking.awaited_part(rows, meta, width) for rows, meta in _received]
        parts: list[Part | None] = [_part, *theirs]
        _part, _received, _starts = None, [], ()
        _awaited.clear()
        try:
            joined = chunking.join(
                head, plan["bounds"], parts, lambda a, b, last: read_part(path, head, a, b, last)
            )
            sheet = joined.sheet
            if joined.bounds != tuple(plan["bounds"]):  # merged: the parts no longer match
                raise chunking.ReadWhole("a cut fell inside quotes")
            _starts = joined.starts
            bounds = joined.bounds
            last = len(bounds) - 2
            _awaited.update({k: (bounds[k], bounds[k + 1], k == last) for k in range(1, last + 1)})
            _source = (path, head)
        except chunking.ReadWhole:
            sheet = read_file(path, file_name, options)
        del parts
        _session = ImportSession(template, sheet, options.max_bytes)
        if len(_starts) > 1 and _starts[1] < PREVIEW_ROWS:  # the preview needs their cells
            _fill(_session)
        described = _session.describe().to_dict()
        return {"described": described, "starts": list(_starts), "rows": sheet.num_rows}

    return _answer(work)


def _take(session: ImportSession, part: int, cells: ac.Table) -> None:
    """The cells of an awaited part in place of its null cells."""
    table = chunking.with_part(session.sheet.table, _starts, part, cells)
    session.sheet = dataclasses.replace(session.sheet, table=table)
    del _awaited[part]


def _reading(read: Callable[[int], Any]) -> Callable[[int], bytes]:
    return lambda n: _bytes(read(n))


def _fill(session: ImportSession) -> None:
    """Read here the parts whose cells another engine was to send."""
    assert _source is not None  # noqa: S101 - set with _awaited
    path, head = _source
    for part, (start, end, last) in sorted(_awaited.items()):
        _take(session, part, read_part(path, head, start, end, last).table)


def validate_part_at(template_json: str, mapping_json: str, first_row: int, rows: int) -> bytes:
    """The errors of the part read here by the rules of one cell, for the mapping (its cells
    are sent next: `send_cells`)."""
    if _part is None:
        raise MappingError("No part of a file is held here.")
    template = parse_template(json.loads(template_json))
    mapping = {k: int(v) for k, v in json.loads(mapping_json).items()}
    names = [f.name for f in template.fields if f.name in mapping]
    table = _part.table.slice(0, rows).select([str(mapping[n]) for n in names])
    return chunking.errors_to_wire(
        chunking.part_errors(table.rename_columns(names), template, first_row)
    )


def validate_own(mapping_json: str) -> str:
    """Apply the mapping and check this engine's part by one-cell rules, while the other
    engines check theirs (then finish_parts)."""

    def work() -> Any:
        global _own_errors
        session = _opened()
        if len(_starts) < 2:
            raise MappingError("This file was not read in parts.")
        session.set_mapping({k: int(v) for k, v in json.loads(mapping_json).items()})
        table, first = session.mapped_table(), session.sheet.first_data_row
        _own_errors = chunking.part_errors(table.slice(0, _starts[1]), session.template, first)
        return None

    return _answer(work)


def finish_parts(errors: Any, cells: Any) -> str:
    """The review from this engine's errors and the other parts' (`validate_part_at`, in
    order of the file) and their cells (`read(n)` over each one's `send_cells` stream), the
    rules across rows checked over the whole file: exactly as validating the whole file
    here. The review summary."""

    def work() -> Any:
        global _own_errors
        session = _opened()
        if _own_errors is None:
            raise MappingError("validate_own comes first.")
        for part, read in enumerate(cells, start=1):
            if part in _awaited:  # else read here already (for the preview)
                _take(session, part, chunking.cells_from(_reading(read)))
        found = list(_own_errors)
        _own_errors = None
        for data in errors:
            found.extend(chunking.errors_from_wire(_bytes(data)))
        template, table = session.template, session.mapped_table()
        spanning = chunking.cross_row_errors(table, template, session.sheet.first_data_row)
        merged = chunking.merged_errors(template, found, spanning)
        return session.start_review(found=merged).summary().to_dict()

    return _answer(work)


def error_counts() -> str:
    """How many errors the review holds, in how many cells, by code (the bench's check)."""

    def work() -> Any:
        errors = _current().review.error_list()
        by_code: dict[str, int] = {}
        for e in errors:
            code = f"{e.code}:{e.constraint}" if e.constraint else e.code
            by_code[code] = by_code.get(code, 0) + 1
        cells = len({(e.row, e.field) for e in errors})
        return {"errors": len(errors), "invalid_cells": cells, "errors_by_code": by_code}

    return _answer(work)
