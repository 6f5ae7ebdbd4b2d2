"""The loadbay side of the bench: the real `pipeline` calls, timed phase by phase.

Runs inside Pyodide (the bench worker writes this file into its FS and imports it) and
natively (`python -m bench.phases FILE TEMPLATE`), so the same numbers can be compared.
Only the standard library and `pipeline`.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections import Counter

from pipeline import readers
from pipeline.session import ImportSession
from pipeline.template import parse_template
from pipeline.validation import CellError


def _now() -> float:
    return time.perf_counter() * 1000.0


def run(path: str, file_name: str, template_json: str) -> str:
    """Parse, match, validate one file as the importer does; JSON with ms per phase and counts.

    "validate" is what the user waits for before the review grid shows: `start_review`,
    which validates every cell and indexes the errors by row.
    """
    template = parse_template(json.loads(template_json))
    t0 = _now()
    sheet = readers.read_file(path, file_name)
    t1 = _now()
    session = ImportSession(template, sheet)  # proposes the mapping
    t2 = _now()
    review = session.start_review()
    t3 = _now()
    errors = review.error_list()
    result = {
        "reader": "pipeline.readers.read_file",
        "parse_ms": t1 - t0,
        "match_ms": t2 - t1,
        "validate_ms": t3 - t2,
        "rows": int(sheet.num_rows),
        "cols": len(sheet.headers),
        "mapped": len(session.mapping),
        "errors": len(errors),
        "invalid_cells": len({(e.row, e.field) for e in errors}),
        "errors_by_code": dict(Counter(_code(e) for e in errors)),
        "notes": [],
    }
    del sheet, session, review, errors
    gc.collect()
    return json.dumps(result)


def _code(error: CellError) -> str:
    return f"{error.code}:{error.constraint}" if error.constraint else error.code


if __name__ == "__main__":
    with open(sys.argv[2], encoding="utf-8") as fh:
        template_text = fh.read()
    print(run(sys.argv[1], sys.argv[1].rsplit("/", 1)[-1], template_text))
