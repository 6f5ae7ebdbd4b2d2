"""Conformance: every vector read and validated by 1, 2 and 3 engines shows the user the same.

The engines are the parts of pipeline.chunking read one after the other in this process,
through the same functions the browser's workers call; the file is split whatever its
size (the browser splits only large files). Compared: the file as described, the review's
summary, every error, the grid's windows, and the review after changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.chunking import read_in_parts, start_review_in_parts
from pipeline.review import MAX_WINDOW, Review, View
from pipeline.session import ImportSession
from pipeline.sheet import ReadOptions
from pipeline.template import parse_template
from tests.conformance.run_vectors import data_file

VECTORS = Path(__file__).resolve().parent / "vectors"
NAMES = sorted(p.parent.name for p in VECTORS.glob("*/expected.json"))


def opened(name: str, engines: int) -> tuple[ImportSession, Review, int]:
    """The vector's session and review as `engines` engines make them; how many parts."""
    directory = VECTORS / name
    template = parse_template(json.loads((directory / "template.json").read_text("utf-8")))
    file_name = data_file(str(directory))
    joined = read_in_parts(str(directory / file_name), file_name, ReadOptions(), engines, 0)
    session = ImportSession(template, joined.sheet)
    return session, start_review_in_parts(session, joined.starts), len(joined.starts)


def shown(session: ImportSession, review: Review) -> dict[str, Any]:
    """What the user sees: the file described, the summary, the errors, every window."""
    windows = []
    for start in range(0, max(review.num_rows, 1), MAX_WINDOW):
        windows.append([row.to_dict() for row in review.window(start, MAX_WINDOW)])
    errors_only = review.set_view(View.from_dict({"filter": "errors"})).to_dict()
    error_windows = [row.to_dict() for row in review.window(0, MAX_WINDOW)]
    review.set_view(View())
    return {
        "describe": session.describe().to_dict(),
        "summary": review.summary().to_dict(),
        "errors": [e.to_dict() for e in review.error_list()],
        "windows": windows,
        "errors_view": errors_only,
        "error_windows": error_windows,
        "plan": [b.to_dict() for b in session.batch_plan(7)],
    }


def changed(session: ImportSession, review: Review) -> dict[str, Any]:
    """The review after deleting the rows with errors, and after undoing that."""
    after = review.delete_rows_with_errors().to_dict()
    rows = [row.to_dict() for row in review.window(0, MAX_WINDOW)]
    undone = review.undo().to_dict()
    return {"after": after, "rows": rows, "undone": undone, "errors": review.error_list()}


@pytest.mark.parametrize("engines", [2, 3])
@pytest.mark.parametrize("name", NAMES)
def test_engines_show_what_one_engine_shows(name: str, engines: int) -> None:
    one, one_review, parts = opened(name, 1)
    assert parts == 1
    many, many_review, _ = opened(name, engines)
    assert shown(many, many_review) == shown(one, one_review)
    assert changed(many, many_review) == changed(one, one_review)


def test_text_vectors_are_really_read_in_parts() -> None:
    """The comparison above is not vacuous: most text vectors split into 3 parts; those
    whose few lines are mostly inside quoted cells into 2 (cuts inside quotes merged)."""
    parts = {name: opened(name, 3)[2] for name in NAMES}
    assert sum(n == 3 for n in parts.values()) >= 15, parts
    assert parts["unique_primary_key"] == parts["file_ragged"] == 3
    assert parts["semicolon_quoted_newline"] == parts["bom_crlf"] == 2
    assert parts["file_xlsx"] == parts["file_json"] == parts["file_utf16"] == 1
