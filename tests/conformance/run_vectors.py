"""Computes a conformance vector's result with the pipeline, the same way everywhere.

Imported natively by test_conformance.py, and sent as source text to Pyodide (where
nothing but the stdlib and the built wheels exists), so: stdlib and `pipeline` only.
A result is what `loadbay check --format json` prints: {"rows": N, "errors": [...]},
for the mapping the importer proposes by default.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pipeline
from pipeline.errors import ReadError
from pipeline.readers import read_file
from pipeline.session import ImportSession
from pipeline.template import parse_template


def data_file(directory: str) -> str:
    """A vector's data file: data.csv, data.xlsx, data.json, ... (exactly one)."""
    names = [n for n in sorted(os.listdir(directory)) if n.startswith("data.")]
    if len(names) != 1:
        raise ValueError(f"{directory}: expected one data.<ext> file, found {names}")
    return names[0]


def open_vector(directory: str) -> ImportSession:
    with open(os.path.join(directory, "template.json"), encoding="utf-8") as fh:
        template = parse_template(json.load(fh))
    name = data_file(directory)
    return ImportSession.open(os.path.join(directory, name), name, template)


def vector_result(directory: str) -> dict[str, Any]:
    report = open_vector(directory).report().to_dict()
    del report["error_count"]
    return report


def sheet_view(directory: str) -> dict[str, Any]:
    """What the reader made of a vector's file: compared between native and Pyodide."""
    sheet = open_vector(directory).sheet
    return {
        "kind": sheet.kind,
        "encoding": sheet.encoding,
        "delimiter": sheet.delimiter,
        "sheet": sheet.sheet_name,
        "sheets": list(sheet.sheet_names),
        "header_row": sheet.header_row,
        "headers": list(sheet.headers),
        "rows": [sheet.column(i).to_pylist() for i in range(len(sheet.headers))],
        "problems": [p.to_dict() for p in sheet.problems],
    }


def all_sheet_views(root: str) -> dict[str, dict[str, Any]]:
    return {
        name: sheet_view(os.path.join(root, name))
        for name in sorted(os.listdir(root))
        if os.path.isfile(os.path.join(root, name, "expected.json"))
    }


def write_batches(root: str, out: str) -> list[str]:
    """Each vector's rows encoded as the browser sends them, into out/<name>.arrow."""
    os.makedirs(out, exist_ok=True)
    names = []
    for name in sorted(os.listdir(root)):
        directory = os.path.join(root, name)
        if not os.path.isfile(os.path.join(directory, "expected.json")):
            continue
        session = open_vector(directory)
        with open(os.path.join(out, f"{name}.arrow"), "wb") as fh:
            fh.write(session.encode_batch(0, session.sheet.num_rows))
        names.append(name)
    return names


def all_results(root: str) -> dict[str, dict[str, Any]]:
    return {
        name: vector_result(os.path.join(root, name))
        for name in sorted(os.listdir(root))
        if os.path.isfile(os.path.join(root, name, "expected.json"))
    }


def read_errors(root: str) -> dict[str, str]:
    """File name -> the ReadError message for each (unreadable) file in root."""
    out = {}
    for name in sorted(os.listdir(root)):
        try:
            read_file(os.path.join(root, name), name)
        except ReadError as exc:
            out[name] = str(exc)
        else:
            out[name] = "(read without error)"
    return out


def pipeline_sources() -> dict[str, str]:
    """sha256 of each pipeline module, to tell which pipeline actually ran."""
    folder = os.path.dirname(pipeline.__file__)
    out = {}
    for directory, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, "rb") as fh:
                    out[os.path.relpath(path, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out
