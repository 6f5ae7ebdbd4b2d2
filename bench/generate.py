"""Deterministic bench data: a CSV, an xlsx and a Table Schema template with a rule per column.

Valid values are plain (no format a reasonable validator could disagree on) and every
injected bad value breaks exactly one rule, so the number of invalid cells is known in
advance: the sum of the injections whose rule the template carries. Rules the engine does
not accept yet (`Template.from_dict` refuses them) are left out of the template, and the
bad values written for them are then ordinary valid cells. Add a rule to a column's
`candidates` (and an injection for it) and it is used as soon as the engine supports it.

    python -m bench.generate --rows 1000000 --xlsx-rows 200000 --out bench/data
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20240601
INVALID_RATE = 0.01
OPTIONAL_EMPTY_RATE = 0.04
GENERATOR_VERSION = 1  # bump when the data changes, so cached files are rebuilt

FIRST = (
    "Ada Alan Grace Linus Margaret Dennis Barbara Ken Frances Edsger Radia John Hedy Tim "
    "Katherine Guido Sophie Yukihiro Anders Bjarne Niklaus Donald Leslie Shafi Whitfield "
    "Martin Jean Ivan Lotfi Tony Robin Judea Marvin Vint Bob Fran Juris Amir Silvio Manuel"
).split()
LAST = (
    "Lovelace Turing Hopper Torvalds Hamilton Ritchie Liskov Thompson Allen Dijkstra Perlman "
    "McCarthy Lamarr Berners-Lee Johnson Rossum Wilson Matsumoto Hejlsberg Stroustrup Wirth "
    "Knuth Lamport Goldwasser Diffie Hellman Sammet Sutherland Zadeh Hoare Milner Pearl "
    "Minsky Cerf Kahn Hartmanis Pnueli Micali Blum O'Neil Müller Østergaard"
).split()
DOMAINS = ("example.com", "example.org", "mail.example.net", "corp.example")
COMPANIES = (
    "Acme",
    "Acme, Inc.",
    "Globex",
    "Initech",
    "Umbrella Corp",
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli",
    "Pied Piper",
    "Soylent, Ltd.",
    "Tyrell",
    "Cyberdyne Systems",
)
CITIES = (
    "Berlin",
    "Paris",
    "Lisbon",
    "Austin",
    "Toronto",
    "São Paulo",
    "Kraków",
    "Osaka",
    "Nairobi",
    "Melbourne",
    "Reykjavík",
    "Zürich",
)
COUNTRIES = tuple("US CA MX BR AR GB IE FR DE NL BE ES PT IT CH AT PL SE NO DK FI JP AU NZ".split())
PLANS = ("free", "starter", "pro", "enterprise")
STATUSES = ("active", "paused", "cancelled")
EPOCH_2015 = np.datetime64("2015-01-01")


@dataclass(frozen=True)
class Column:
    """One column: its Table Schema field, how values are made, and how cells go bad.

    `candidates` are rules tried one by one against the engine; `injections` maps a rule
    name ("required", "type" or a constraint or "format") to bad values breaking only it.
    """

    name: str
    type: str
    make: Callable[[np.random.Generator, int], list[str]]
    required: bool = False
    enum: tuple[str, ...] | None = None
    candidates: dict[str, Any] = field(default_factory=dict)
    injections: dict[str, tuple[str, ...]] = field(default_factory=dict)
    optional_empty: bool = False
    title: str = ""


def _pick(items: tuple[str, ...] | list[str]) -> Callable[[np.random.Generator, int], list[str]]:
    def make(rng: np.random.Generator, n: int) -> list[str]:
        table = list(items)
        return [table[i] for i in rng.integers(0, len(table), n)]

    return make


def _ints(lo: int, hi: int) -> Callable[[np.random.Generator, int], list[str]]:
    return lambda rng, n: [str(v) for v in rng.integers(lo, hi + 1, n).tolist()]


def _floats(lo: float, hi: float) -> Callable[[np.random.Generator, int], list[str]]:
    return lambda rng, n: [f"{v:.2f}" for v in rng.uniform(lo, hi, n).tolist()]


def _dates(start: str, days: int) -> Callable[[np.random.Generator, int], list[str]]:
    base = np.datetime64(start)
    return lambda rng, n: (base + rng.integers(0, days, n)).astype(str).tolist()


def _datetimes(rng: np.random.Generator, n: int) -> list[str]:
    seconds = rng.integers(0, 10 * 365 * 86400, n)
    stamps = (EPOCH_2015.astype("datetime64[s]") + seconds).astype(str)
    return [s + "Z" for s in stamps.tolist()]


def _ids(rng: np.random.Generator, n: int) -> list[str]:
    return [str(v) for v in range(1, n + 1)]


def _emails(rng: np.random.Generator, n: int) -> list[str]:
    first = rng.integers(0, len(FIRST), n).tolist()
    last = rng.integers(0, len(LAST), n).tolist()
    num = rng.integers(1, 10_000, n).tolist()
    dom = rng.integers(0, len(DOMAINS), n).tolist()
    ascii_last = [
        "".join(c for c in name.lower() if c.isascii() and c.isalnum()) or "x" for name in LAST
    ]
    return [
        f"{FIRST[f].lower()}.{ascii_last[la]}{k}@{DOMAINS[d]}"
        for f, la, k, d in zip(first, last, num, dom, strict=True)
    ]


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    cc = rng.integers(1, 100, n).tolist()
    area = rng.integers(100, 1000, n).tolist()
    rest = rng.integers(1_000_000, 10_000_000, n).tolist()
    return [f"+{c} {a} {r}" for c, a, r in zip(cc, area, rest, strict=True)]


LONG_NAME = "Wolfeschlegelsteinhausenbergerdorffwelchevoralternwarengewissenhaft"

COLUMNS: tuple[Column, ...] = (
    Column("id", "integer", _ids, required=True, injections={"type": ("12a", "#N/A")}),
    Column(
        "first_name",
        "string",
        _pick(FIRST),
        required=True,
        candidates={"maxLength": 40},
        injections={"required": ("",), "maxLength": (LONG_NAME,)},
    ),
    Column("last_name", "string", _pick(LAST), required=True, injections={"required": ("",)}),
    Column(
        "email",
        "string",
        _emails,
        required=True,
        candidates={"format": "email"},
        injections={"required": ("",), "format": ("ada.lovelace(at)example.com", "no email")},
    ),
    Column("company", "string", _pick(COMPANIES), required=True, injections={"required": ("",)}),
    Column(
        "age",
        "integer",
        _ints(18, 90),
        optional_empty=True,
        candidates={"minimum": 0, "maximum": 120},
        injections={"type": ("abc", "12.5"), "minimum": ("-4",), "maximum": ("150",)},
    ),
    Column(
        "quantity",
        "integer",
        _ints(1, 1000),
        required=True,
        candidates={"minimum": 1},
        injections={"required": ("",), "type": ("ten", "5 units"), "minimum": ("0",)},
    ),
    Column(
        "price",
        "number",
        _floats(0.5, 999.99),
        required=True,
        candidates={"minimum": 0},
        injections={"type": ("12,50", "$9.99"), "minimum": ("-5.00",)},
    ),
    Column(
        "discount",
        "number",
        _floats(0, 0.5),
        optional_empty=True,
        candidates={"minimum": 0, "maximum": 1},
        injections={"type": ("n/a", "10%"), "maximum": ("1.50",)},
    ),
    Column(
        "balance",
        "number",
        _floats(-5000, 5000),
        required=True,
        injections={"required": ("",), "type": ("--3", "1.2.3")},
    ),
    Column(
        "signup_date",
        "date",
        _dates("2015-01-01", 3650),
        required=True,
        injections={"required": ("",), "type": ("31/12/2023", "2023-13-45", "yesterday")},
    ),
    Column(
        "birth_date",
        "date",
        _dates("1940-01-01", 60 * 365),
        optional_empty=True,
        injections={"type": ("12/05/1990", "May 5 1990")},
    ),
    Column(
        "last_login",
        "datetime",
        _datetimes,
        optional_empty=True,
        injections={"type": ("2024-01-01 25:61:00", "last week")},
    ),
    Column(
        "active",
        "boolean",
        _pick(("true", "false")),
        required=True,
        injections={"required": ("",), "type": ("maybe", "Y")},
    ),
    Column(
        "newsletter",
        "boolean",
        _pick(("TRUE", "FALSE", "1", "0")),
        optional_empty=True,
        injections={"type": ("maybe",)},
    ),
    Column(
        "country",
        "string",
        _pick(COUNTRIES),
        required=True,
        enum=COUNTRIES,
        injections={"required": ("",), "enum": ("XX", "Germany")},
    ),
    Column(
        "plan",
        "string",
        _pick(PLANS),
        required=True,
        enum=PLANS,
        injections={"enum": ("gold", "Pro Plan")},
    ),
    Column(
        "status",
        "string",
        _pick(STATUSES),
        optional_empty=True,
        enum=STATUSES,
        injections={"enum": ("unknown",)},
    ),
    Column(
        "phone",
        "string",
        _phones,
        required=True,
        candidates={"pattern": r"\+?[0-9][0-9 ()\-]{6,19}"},
        injections={"required": ("",), "pattern": ("call me", "n/a")},
    ),
    Column(
        "city",
        "string",
        _pick(CITIES),
        required=True,
        candidates={"maxLength": 60},
        injections={"required": ("",)},
    ),
)


@dataclass
class Generated:
    headers: list[str]
    columns: list[list[str]]
    injected: dict[str, dict[str, int]]  # column -> rule -> count


def generate_columns(rows: int, seed: int = SEED) -> Generated:
    """All cells as strings ("" is empty), column by column, and what was injected where."""
    rng = np.random.default_rng(seed)
    columns: list[list[str]] = []
    injected: dict[str, dict[str, int]] = {}
    for col in COLUMNS:
        values = col.make(rng, rows)
        if col.optional_empty:
            for i in np.flatnonzero(rng.random(rows) < OPTIONAL_EMPTY_RATE).tolist():
                values[i] = ""
        rules = list(col.injections)
        bad_rows = np.flatnonzero(rng.random(rows) < INVALID_RATE)
        choice = rng.integers(0, len(rules), len(bad_rows)).tolist()
        variant = rng.integers(0, 1 << 30, len(bad_rows)).tolist()
        counts = dict.fromkeys(rules, 0)
        for i, r, v in zip(bad_rows.tolist(), choice, variant, strict=True):
            options = col.injections[rules[r]]
            values[i] = options[v % len(options)]
            counts[rules[r]] += 1
        columns.append(values)
        injected[col.name] = counts
    return Generated([c.name for c in COLUMNS], columns, injected)


def _csv_cell(value: str) -> str:
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def write_csv(gen: Generated, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(gen.headers) + "\n")
        step = 50_000
        rows = len(gen.columns[0])
        quoted = [
            [_csv_cell(v) for v in col] if any('"' in v or "," in v for v in set(col)) else col
            for col in gen.columns
        ]
        for start in range(0, rows, step):
            chunk = zip(*(col[start : start + step] for col in quoted), strict=True)
            fh.write("\n".join(",".join(cells) for cells in chunk))
            fh.write("\n")
    tmp.replace(path)


def write_xlsx(gen: Generated, path: Path, rows: int) -> None:
    """Typed cells as a spreadsheet holds them (numbers, dates, booleans); bad ones as text."""
    import xlsxwriter

    tmp = path.with_name(path.stem + ".tmp.xlsx")
    workbook = xlsxwriter.Workbook(str(tmp), {"constant_memory": True})
    sheet = workbook.add_worksheet("data")
    date_fmt = workbook.add_format({"num_format": "yyyy-mm-dd"})
    stamp_fmt = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for c, name in enumerate(gen.headers):
        sheet.write_string(0, c, name)
    kinds = [col.type for col in COLUMNS]
    truth = {"true": True, "TRUE": True, "1": True, "false": False, "FALSE": False, "0": False}
    for r in range(rows):
        for c, kind in enumerate(kinds):
            value = gen.columns[c][r]
            if value == "":
                continue
            if kind in ("integer", "number"):
                try:
                    number = float(value) if kind == "number" else int(value)
                except ValueError:
                    sheet.write_string(r + 1, c, value)
                else:
                    sheet.write_number(r + 1, c, number)
            elif kind == "date" and len(value) == 10 and value[4] == "-":
                try:
                    sheet.write_datetime(r + 1, c, date.fromisoformat(value), date_fmt)
                except ValueError:
                    sheet.write_string(r + 1, c, value)
            elif kind == "datetime" and value.endswith("Z"):
                stamp = datetime.fromisoformat(value[:-1])
                sheet.write_datetime(r + 1, c, stamp, stamp_fmt)
            elif kind == "boolean" and value in truth:
                sheet.write_boolean(r + 1, c, truth[value])
            else:
                sheet.write_string(r + 1, c, value)
    workbook.close()
    tmp.replace(path)


def _supported(field_json: dict[str, Any]) -> bool:
    from pipeline.errors import TemplateError
    from pipeline.template import parse_template

    try:
        parse_template({"name": "probe", "fields": [field_json]})
    except TemplateError:
        return False
    return True


def build_template() -> dict[str, Any]:
    """The Table Schema, with each candidate rule kept only if the engine accepts it now."""
    fields = []
    for col in COLUMNS:
        field_json: dict[str, Any] = {"name": col.name, "type": col.type}
        if col.title:
            field_json["title"] = col.title
        constraints: dict[str, Any] = {}
        if col.required:
            constraints["required"] = True
        if col.enum is not None:
            constraints["enum"] = list(col.enum)
        field_json["constraints"] = constraints
        if not _supported(field_json):
            raise RuntimeError(f"the engine refuses the base rules of {col.name}: {field_json}")
        for key, value in col.candidates.items():
            if key == "format":
                trial = {**field_json, "format": value}
            else:
                trial = {**field_json, "constraints": {**field_json["constraints"], key: value}}
            if _supported(trial):
                field_json = trial
        if not field_json["constraints"]:
            del field_json["constraints"]
        fields.append(field_json)
    return {"name": "bench", "title": "Bench customers", "fields": fields, "missingValues": [""]}


def active_rules(template: dict[str, Any]) -> dict[str, set[str]]:
    """Column -> rule names the template enforces (the keys `Column.injections` uses)."""
    out: dict[str, set[str]] = {}
    for f in template["fields"]:
        rules = {"type"} if f.get("type", "string") != "string" else set()
        rules |= {k for k, v in f.get("constraints", {}).items() if v is not False}
        if f.get("format", "default") != "default":
            rules.add("format")
        out[f["name"]] = rules
    return out


def expected_invalid_cells(injected: dict[str, dict[str, int]], template: dict[str, Any]) -> int:
    rules = active_rules(template)
    return sum(n for col, by in injected.items() for rule, n in by.items() if rule in rules[col])


@dataclass(frozen=True)
class BenchData:
    csv: Path
    xlsx: Path | None
    template: Path
    meta: dict[str, Any]


def template_for(engine: Path | None) -> dict[str, Any]:
    """The template as the engine at `engine` (a pipeline wheel or source dir) accepts it.

    The bench's browser runs the pipeline wheel in build/assets, which may lag the working
    tree; probing that very wheel (in a subprocess, so its `pipeline` package is the one
    imported) keeps the template and the engine that checks it in step.
    """
    if engine is None:
        return build_template()
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "from bench.generate import build_template; print(json.dumps(build_template()))"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-c", code, str(engine)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    template: dict[str, Any] = json.loads(out.stdout)
    return template


def xlsx_file(out: Path, rows: int, seed: int = SEED) -> Path:
    return out / f"bench-{rows}x{len(COLUMNS)}-s{seed}-v{GENERATOR_VERSION}.xlsx"


def ensure_xlsx(out: Path, rows: int, seed: int = SEED) -> Path:
    """Make (or reuse) the xlsx of `rows` data rows; its meta file records what was injected."""
    out.mkdir(parents=True, exist_ok=True)
    path = xlsx_file(out, rows, seed)
    meta_path = path.with_suffix(".meta.json")
    if not (path.exists() and meta_path.exists()):
        gen = generate_columns(rows, seed)
        write_xlsx(gen, path, rows)
        meta_path.write_text(json.dumps({"rows": rows, "injected": gen.injected}, indent=1))
        del gen
    return path


def xlsx_meta(out: Path, rows: int, template: dict[str, Any], seed: int = SEED) -> dict[str, Any]:
    path = xlsx_file(out, rows, seed)
    injected = json.loads(path.with_suffix(".meta.json").read_text())["injected"]
    return {
        "rows": rows,
        "cols": len(COLUMNS),
        "bytes": path.stat().st_size,
        "expected_invalid_cells": expected_invalid_cells(injected, template),
    }


def ensure_data(
    out: Path, rows: int, xlsx_rows: int, seed: int = SEED, engine: Path | None = None
) -> BenchData:
    """Make (or reuse) the files for these sizes; the template is rebuilt every time."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{rows}x{len(COLUMNS)}-s{seed}-v{GENERATOR_VERSION}"
    csv_path = out / f"{stem}.csv"
    xlsx_path = xlsx_file(out, xlsx_rows, seed)
    meta_path = out / f"{stem}.meta.json"
    if not (csv_path.exists() and meta_path.exists()):
        gen = generate_columns(rows, seed)
        write_csv(gen, csv_path)
        meta_path.write_text(json.dumps({"rows": rows, "injected": gen.injected}, indent=1))
        del gen
    if xlsx_rows:
        ensure_xlsx(out, xlsx_rows, seed)
    template = template_for(engine)
    template_path = out / "template.json"
    template_path.write_text(json.dumps(template, indent=1), encoding="utf-8")
    csv_meta = json.loads(meta_path.read_text())
    meta: dict[str, Any] = {
        "csv": {
            "rows": rows,
            "cols": len(COLUMNS),
            "bytes": csv_path.stat().st_size,
            "expected_invalid_cells": expected_invalid_cells(csv_meta["injected"], template),
        },
        "rules": {k: sorted(v) for k, v in active_rules(template).items()},
    }
    if xlsx_rows:
        meta["xlsx"] = xlsx_meta(out, xlsx_rows, template, seed)
    return BenchData(csv_path, xlsx_path if xlsx_rows else None, template_path, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("bench/data"))
    args = parser.parse_args()
    data = ensure_data(args.out, args.rows, args.xlsx_rows)
    print(json.dumps({"csv": str(data.csv), "xlsx": str(data.xlsx), **data.meta}, indent=1))


if __name__ == "__main__":
    main()
