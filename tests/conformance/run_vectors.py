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
from pipeline.readers import read_csv
from pipeline.session import ImportSession
from pipeline.template import Template


def vector_result(directory: str) -> dict[str, Any]:
    with open(os.path.join(directory, "template.json"), encoding="utf-8") as fh:
        template = Template.from_dict(json.load(fh))
    session = ImportSession.open(os.path.join(directory, "data.csv"), "data.csv", template)
    report = session.report().to_dict()
    del report["error_count"]
    return report


def write_batches(root: str, out: str) -> list[str]:
    """Each vector's rows encoded as the browser sends them, into out/<name>.arrow."""
    os.makedirs(out, exist_ok=True)
    names = []
    for name in sorted(os.listdir(root)):
        directory = os.path.join(root, name)
        if not os.path.isfile(os.path.join(directory, "expected.json")):
            continue
        with open(os.path.join(directory, "template.json"), encoding="utf-8") as fh:
            template = Template.from_dict(json.load(fh))
        session = ImportSession.open(os.path.join(directory, "data.csv"), "data.csv", template)
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
            read_csv(os.path.join(root, name))
        except ReadError as exc:
            out[name] = str(exc)
        else:
            out[name] = "(read without error)"
    return out


def pipeline_sources() -> dict[str, str]:
    """sha256 of each pipeline module, to tell which pipeline actually ran."""
    folder = os.path.dirname(pipeline.__file__)
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as fh:
                out[name] = hashlib.sha256(fh.read()).hexdigest()
    return out
