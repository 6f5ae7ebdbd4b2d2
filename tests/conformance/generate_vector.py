"""Writes vectors/generated_300: a few hundred rows with errors scattered on purpose.

The expected errors come from what this script injected, not from the pipeline, so the
vector checks the engine against an independent answer. test_conformance.py checks that
the committed files are what this script writes; rerun it after changing it:

    .venv/bin/python tests/conformance/generate_vector.py
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "vectors" / "generated_300"
ROWS = 300
SEED = 20260101
TIERS = ["bronze", "silver", "gold"]

TEMPLATE: dict[str, Any] = {
    "name": "members",
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True}},
        {"name": "name", "title": "Name", "constraints": {"required": True}},
        {"name": "email", "constraints": {"required": True}, "x-loadbay": {"synonyms": ["e-mail"]}},
        {"name": "age", "type": "integer"},
        {"name": "score", "type": "number"},
        {"name": "active", "type": "boolean"},
        {"name": "joined", "title": "Joined on", "type": "date"},
        {"name": "tier", "constraints": {"enum": TIERS}},
    ],
}
HEADER = ["id", "Name", "E-mail", "Age", "score", "Active", "Joined on", "tier", "comment"]
LABELS = {"id": "id", "name": "Name", "email": "email"}
HINTS = {
    "id": "is not a whole number",
    "age": "is not a whole number",
    "score": "is not a number",
    "active": "is not one of true, True, TRUE, 1, false, False, FALSE, 0",
    "joined": "is not a date (use YYYY-MM-DD)",
}
KEYS = {"id": "type.integer", "age": "type.integer", "score": "type.number",
        "active": "type.boolean", "joined": "type.date"}  # fmt: skip
BOOLEANS = "true, True, TRUE, 1, false, False, FALSE, 0"
BAD = {
    "id": ["x12", "7.0", "1e2"],
    "age": ["thirty", "4.5", "-", "12 "],
    "score": ["1,5", "n/a", "--1"],
    "active": ["yes", "Y", "on"],
    "joined": ["2024-13-01", "01/02/2024", "2023-02-29", "2024-1-5"],
    "tier": ["platinum", "Gold", " silver"],
}
COMMENTS = ["", "ok", "called twice, no answer", 'said "later"', "line one\nline two", "ünïcödé"]


def build() -> tuple[str, str, str]:
    """(data.csv, template.json, expected.json) as text."""
    rng = random.Random(SEED)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    errors: list[dict[str, Any]] = []
    for i in range(ROWS):
        row_no = i + 2
        good = {
            "id": str(i + 1),
            "name": rng.choice(["Ada", "Alan", "Grace", "Linus", "Zoë", "O'Neil, Pat"]),
            "email": f"user{i}@example.com",
            "age": rng.choice(["", str(rng.randint(18, 90))]),
            "score": rng.choice(["", f"{rng.uniform(-100, 100):.2f}", "1e3"]),
            "active": rng.choice(["", "true", "false", "1", "0", "TRUE"]),
            "joined": rng.choice(["", f"20{rng.randint(10, 25)}-{rng.randint(1, 12):02d}-15"]),
            "tier": rng.choice(["", *TIERS]),
        }
        cells = dict(good)
        for field in TEMPLATE["fields"]:
            name = field["name"]
            if rng.random() >= 0.04:
                continue
            if name in LABELS and (name not in BAD or rng.random() < 0.5):
                cells[name] = ""
                errors.append(
                    {
                        "row": row_no,
                        "field": name,
                        "code": "constraint-error",
                        "constraint": "required",
                        "message": f"{LABELS[name]} is required, but this cell is empty.",
                        "key": "required",
                        "params": {"label": LABELS[name]},
                    }
                )
            elif name == "tier":
                cells[name] = rng.choice(BAD[name])
                errors.append(
                    {
                        "row": row_no,
                        "field": name,
                        "code": "constraint-error",
                        "constraint": "enum",
                        "message": f'"{cells[name]}" is not one of the allowed values: '
                        "bronze, silver, gold.",
                        "key": "enum",
                        "params": {"allowed": "bronze, silver, gold", "value": cells[name]},
                    }
                )
            elif name in BAD:
                cells[name] = rng.choice(BAD[name])
                errors.append(
                    {
                        "row": row_no,
                        "field": name,
                        "code": "type-error",
                        "message": f'"{cells[name]}" {HINTS[name]}.',
                        "key": KEYS[name],
                        "params": {"value": cells[name]}
                        | ({"allowed": BOOLEANS} if name == "active" else {}),
                    }
                )
        writer.writerow([cells[f["name"]] for f in TEMPLATE["fields"]] + [rng.choice(COMMENTS)])
    expected = {"rows": ROWS, "errors": errors}  # already in (row, field order)
    return (
        out.getvalue(),
        json.dumps(TEMPLATE, indent=2, ensure_ascii=False) + "\n",
        json.dumps(expected, indent=2, ensure_ascii=False) + "\n",
    )


def main() -> None:
    data, template, expected = build()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "data.csv").write_text(data, encoding="utf-8")
    (OUT / "template.json").write_text(template, encoding="utf-8")
    (OUT / "expected.json").write_text(expected, encoding="utf-8")


if __name__ == "__main__":
    main()
