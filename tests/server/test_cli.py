"""The `loadbay` command: check and convert, their output and exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from server.cli import app
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "server" / "demo" / "contacts.schema.json"
VALID = """Full name,E-mail,Country,Signup date,Amount,Notes
Ada Lovelace,ada@example.com,GB,1843-07-01,12.5,unmapped
=HYPERLINK("x"),mal@example.com,,,-3,
Grace Hopper,grace@example.com,US,,,
"""
INVALID = """Full name,Email,Country,Signup date,Amount
Ada Lovelace,ada@example.com,GB,1843-13-01,12.5
,blank@example.com,DE,,
Grace Hopper,grace@example.com,XX,,lots
"""
EXPECTED_ERRORS = [
    {
        "row": 2,
        "field": "signup_date",
        "code": "type-error",
        "message": '"1843-13-01" is not a date (use YYYY-MM-DD).',
    },
    {
        "row": 3,
        "field": "full_name",
        "code": "constraint-error",
        "message": "Full name is required, but this cell is empty.",
        "constraint": "required",
    },
    {
        "row": 4,
        "field": "country",
        "code": "constraint-error",
        "message": '"XX" is not one of the allowed values: DE, FR, GB, IT, NL, US.',
        "constraint": "enum",
    },
    {
        "row": 4,
        "field": "amount",
        "code": "type-error",
        "message": '"lots" is not a number.',
    },
]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _csv(tmp_path: Path, text: str, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_check_json_of_a_valid_file(runner: CliRunner, tmp_path: Path) -> None:
    file = _csv(tmp_path, VALID)
    result = runner.invoke(
        app, ["check", str(file), "--template", str(TEMPLATE), "--format", "json"]
    )
    assert result.exit_code == 0
    assert result.stdout == '{"rows": 3, "errors": []}\n'
    assert result.stderr == ""


def test_check_json_lists_errors_with_the_rows_people_see(
    runner: CliRunner, tmp_path: Path
) -> None:
    file = _csv(tmp_path, INVALID)
    result = runner.invoke(
        app, ["check", str(file), "--template", str(TEMPLATE), "--format", "json"]
    )
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer["rows"] == 3
    # Each error also carries its message key and parameters, for translation.
    assert [
        {k: v for k, v in e.items() if k not in ("key", "params")} for e in answer["errors"]
    ] == EXPECTED_ERRORS
    assert all(
        isinstance(e["key"], str) and isinstance(e["params"], dict) for e in answer["errors"]
    )
    assert result.stdout.count("\n") == 1


def test_check_text_output(runner: CliRunner, tmp_path: Path) -> None:
    file = _csv(tmp_path, INVALID)
    result = runner.invoke(app, ["check", str(file), "--template", str(TEMPLATE)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"row {e['row']}, {e['field']}: {e['message']}" for e in EXPECTED_ERRORS
    ] + ["3 rows, 4 errors"]


def test_rows_count_from_the_header_in_semicolon_files(runner: CliRunner, tmp_path: Path) -> None:
    file = _csv(tmp_path, "Full name;Email\nAda;ada@example.com\nBo;\n")
    result = runner.invoke(
        app, ["check", str(file), "--template", str(TEMPLATE), "--format", "json"]
    )
    assert result.exit_code == 1
    assert [(e["row"], e["field"]) for e in json.loads(result.stdout)["errors"]] == [(3, "email")]


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        ("missing-file", [], "nowhere.csv cannot be opened (No such file or directory)."),
        ("empty-file", [], "empty.csv is empty."),
        ("header-only", [], "has a header row but no data rows"),
        ("binary-file", [], "book.xlsx looks like a zip-based spreadsheet"),
        ("missing-template", [], "cannot read the template"),
        ("broken-template", [], "cannot read the template"),
        ("unsupported-template", [], 'type "money" is not supported'),
        (
            "csv",
            ["--sheet", "Sheet1"],
            "is a text (CSV) file: it has no sheets. Pick it without a sheet name.",
        ),
        ("no-required-column", [], "Required field(s) Email are not mapped to any column."),
    ],
)
@pytest.mark.parametrize("command", ["check", "convert"])
def test_unusable_input_exits_2_with_a_message(
    runner: CliRunner, tmp_path: Path, command: str, setup: str, extra: list[str], message: str
) -> None:
    file, template = _csv(tmp_path, VALID), TEMPLATE
    if setup == "missing-file":
        file = tmp_path / "nowhere.csv"
    elif setup == "empty-file":
        file = _csv(tmp_path, "", "empty.csv")
    elif setup == "header-only":
        file = _csv(tmp_path, "Full name,Email\n")
    elif setup == "binary-file":
        file = tmp_path / "book.xlsx"
        file.write_bytes(b"PK\x03\x04\x00\x00binary")
    elif setup == "missing-template":
        template = tmp_path / "none.json"
    elif setup == "broken-template":
        template = tmp_path / "broken.json"
        template.write_text("{not json")
    elif setup == "unsupported-template":
        template = tmp_path / "money.json"
        template.write_text(json.dumps({"fields": [{"name": "x", "type": "money"}]}))
    elif setup == "no-required-column":
        file = _csv(tmp_path, "Full name,Phone\nAda,1\n")
    out = tmp_path / "out.ndjson"
    args = [command, str(file), "--template", str(template), *extra]
    if command == "convert":
        args += ["--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert not out.exists()


def test_check_counts_rows_with_more_or_fewer_cells_as_errors(
    runner: CliRunner, tmp_path: Path
) -> None:
    file = _csv(
        tmp_path,
        "Full name,Email\nAda,ada@example.com,Analytical;Engine\nGrace\nAlan,alan@example.com\n",
    )
    result = runner.invoke(app, ["check", str(file), "--template", str(TEMPLATE)])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("row 2: Row 2 has 3 cells but the header has 2; the cells after ")
    assert 'hold "Analytical;Engine"' in lines[0]
    assert lines[1].startswith("row 3: Row 3 has 1 cell(s) but the header has 2;")
    assert lines[-1] == "3 rows, 3 errors"  # and row 3's empty e-mail (required)
    answer = runner.invoke(
        app, ["check", str(file), "--template", str(TEMPLATE), "--format", "json"]
    )
    assert [(e["row"], e["field"], e["code"]) for e in json.loads(answer.stdout)["errors"]] == [
        (2, None, "extra-cell"),
        (3, None, "missing-cell"),
        (3, "email", "constraint-error"),
    ]


def test_check_refuses_a_quote_never_closed_naming_its_row(
    runner: CliRunner, tmp_path: Path
) -> None:
    file = _csv(tmp_path, 'Full name,Email\nAda,ada@example.com\n"Grace,g@x.com\nAl,a@x.com\n')
    result = runner.invoke(app, ["check", str(file), "--template", str(TEMPLATE)])
    assert result.exit_code == 2, result.output
    assert "row 3 opens a quote" in result.stderr and "Traceback" not in result.output


def test_check_refuses_json_nested_too_deeply_with_exit_2(
    runner: CliRunner, tmp_path: Path
) -> None:
    file = tmp_path / "deep.json"
    file.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    result = runner.invoke(app, ["check", str(file), "--template", str(TEMPLATE)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("deep.json nests lists or objects too deeply")
    assert "Traceback" not in result.output and result.stdout == ""


def test_check_reads_20000_columns_keeping_the_mapped_ones(
    runner: CliRunner, tmp_path: Path
) -> None:
    width = 20_000
    names = ["Full name", "Email"] + [f"Q{i}: how do you rate it?" for i in range(width - 2)]
    rows = [
        ["Ada", "ada@example.com"] + ["5"] * (width - 2),
        ["", "x@example.com"] + ["1"] * (width - 2),
    ]
    file = _csv(tmp_path, "\n".join(",".join(r) for r in [names, *rows]) + "\n", "survey.csv")
    result = runner.invoke(
        app, ["check", str(file), "--template", str(TEMPLATE), "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    answer = json.loads(result.stdout)
    assert answer["rows"] == 2
    assert [(e["row"], e["field"]) for e in answer["errors"]] == [(3, "full_name")]


def test_check_reads_a_file_without_a_header_row(runner: CliRunner, tmp_path: Path) -> None:
    file = _csv(tmp_path, "Ada Lovelace,ada@example.com\nGrace Hopper,nope\n")
    template = tmp_path / "letters.json"
    template.write_text(
        json.dumps({"fields": [{"name": "Column A"}, {"name": "Column B", "format": "email"}]})
    )
    result = runner.invoke(
        app, ["check", str(file), "--template", str(template), "--header-row", "0"]
    )
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        'row 2, Column B: "nope" is not an e-mail address.',
        "2 rows, 1 errors",
    ]


def test_convert_to_ndjson_writes_typed_rows(runner: CliRunner, tmp_path: Path) -> None:
    file, out = _csv(tmp_path, VALID), tmp_path / "out.ndjson"
    result = runner.invoke(
        app, ["convert", str(file), "--template", str(TEMPLATE), "--out", str(out)]
    )
    assert result.exit_code == 0
    assert result.stdout == f"wrote 3 rows to {out}\n"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [
        {
            "full_name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": None,
            "country": "GB",
            "signup_date": "1843-07-01",
            "amount": 12.5,
        },
        {
            "full_name": '=HYPERLINK("x")',
            "email": "mal@example.com",
            "phone": None,
            "country": None,
            "signup_date": None,
            "amount": -3.0,
        },
        {
            "full_name": "Grace Hopper",
            "email": "grace@example.com",
            "phone": None,
            "country": "US",
            "signup_date": None,
            "amount": None,
        },
    ]


def test_convert_to_csv_escapes_formulas(runner: CliRunner, tmp_path: Path) -> None:
    file, out = _csv(tmp_path, VALID), tmp_path / "out.csv"
    result = runner.invoke(
        app, ["convert", str(file), "--template", str(TEMPLATE), "--out", str(out)]
    )
    assert result.exit_code == 0
    assert out.read_text().splitlines() == [
        "full_name,email,phone,country,signup_date,amount",
        "Ada Lovelace,ada@example.com,,GB,1843-07-01,12.5",
        '"\'=HYPERLINK(""x"")",mal@example.com,,,,-3.0',
        "Grace Hopper,grace@example.com,,US,,",
    ]


def test_convert_to_parquet_keeps_types(runner: CliRunner, tmp_path: Path) -> None:
    file, out = _csv(tmp_path, VALID), tmp_path / "out.parquet"
    result = runner.invoke(
        app, ["convert", str(file), "--template", str(TEMPLATE), "--out", str(out)]
    )
    assert result.exit_code == 0
    table = pq.read_table(out)
    assert [(f.name, str(f.type)) for f in table.schema] == [
        ("full_name", "large_string"),
        ("email", "large_string"),
        ("phone", "large_string"),
        ("country", "large_string"),
        ("signup_date", "date32[day]"),
        ("amount", "double"),
    ]
    assert table.column("amount").to_pylist() == [12.5, -3.0, None]
    assert table.column("full_name").to_pylist()[1] == '=HYPERLINK("x")'


@pytest.mark.parametrize("suffix", [".ndjson", ".csv", ".parquet"])
def test_convert_writes_nothing_when_a_cell_fails(
    runner: CliRunner, tmp_path: Path, suffix: str
) -> None:
    file, out = _csv(tmp_path, INVALID), tmp_path / f"out{suffix}"
    result = runner.invoke(
        app, ["convert", str(file), "--template", str(TEMPLATE), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [file]
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"row {e['row']}, {e['field']}: {e['message']}" for e in EXPECTED_ERRORS
    ] + [f"4 errors; {out} was not written."]


def test_convert_refuses_an_unknown_output_format_before_reading(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "out.xlsx"
    result = runner.invoke(
        app,
        ["convert", str(tmp_path / "missing.csv"), "--template", str(TEMPLATE), "--out", str(out)],
    )
    assert result.exit_code == 2
    assert result.stderr == "out.xlsx: choose an output ending in .csv, .ndjson, .parquet.\n"
    assert not out.exists()


# --- `loadbay demo`: every process it starts stops with it ---------------------------------------


def _redis_servers_in(directory: Path) -> list[psutil.Process]:
    """redis-server processes whose working directory (its `dir`) is `directory`."""
    found = []
    for proc in psutil.process_iter(["name", "cwd"]):
        if proc.info["name"] == "redis-server" and proc.info["cwd"] == str(directory):
            found.append(proc)
    return found


def _start_demo(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`loadbay demo` on a free port and a data directory of its own, answering /healthz."""
    port, data_dir = free_port(), tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADBAY_", "REDIS_"))}
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "server.cli", "demo", "--port", str(port)]
        + ["--data-dir", str(data_dir)],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # as under systemd: a signal reaches the demo alone
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=1)  # noqa: S501 - its own self-signed certificate, loopback
            if answer.status_code == 200:
                return demo, data_dir
        except httpx.TransportError:
            pass
        assert demo.poll() is None, (tmp_path / "demo.log").read_text()
        assert time.monotonic() < deadline, "the demo did not answer /healthz"
        time.sleep(0.2)


def _demo_family(demo: subprocess.Popen[bytes], data_dir: Path) -> list[psutil.Process]:
    """The demo's descendants and its redis-server, once all are up."""
    root = psutil.Process(demo.pid)
    deadline = time.monotonic() + 20  # the worker's scheduler starts a moment later
    while True:
        family: list[psutil.Process] = []
        names: list[str] = []
        for proc in root.children(recursive=True) + _redis_servers_in(data_dir):
            with contextlib.suppress(psutil.NoSuchProcess):  # a short-lived child may go
                names.append(proc.name())
                family.append(proc)
        if names.count("redis-server") == 1 and len(family) >= 4:
            return family  # worker, its scheduler, cron, redis-server
        assert time.monotonic() < deadline, names
        time.sleep(0.2)


def _kill_all(demo: subprocess.Popen[bytes], family: list[psutil.Process], data_dir: Path) -> None:
    """Whatever a failed test left: the family it saw, the demo, and any redis-server in the
    demo's data directory (it runs in a session of its own, so nothing else reaches it)."""
    leftovers = [*family, *_redis_servers_in(data_dir)]
    for proc in [*leftovers, psutil.Process(demo.pid) if demo.poll() is None else None]:
        if proc is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_whole_demo(tmp_path: Path, sig: signal.Signals) -> None:
    demo, data_dir = _start_demo(tmp_path)
    family: list[psutil.Process] = []
    try:
        family = _demo_family(demo, data_dir)
        demo.send_signal(sig)
        stopped = time.monotonic()
        demo.wait(10)
        gone, alive = psutil.wait_procs(family, timeout=max(0.1, 10 - (time.monotonic() - stopped)))
        took = time.monotonic() - stopped
        assert alive == [], [(p.pid, p.name()) for p in alive]
        assert took < 10
        print(f"{sig.name}: {len(family) + 1} processes gone in {took:.1f} s")
    finally:
        _kill_all(demo, family, data_dir)


def test_the_demo_restarts_a_worker_that_died(tmp_path: Path) -> None:
    demo, data_dir = _start_demo(tmp_path)
    family: list[psutil.Process] = []
    try:
        family = _demo_family(demo, data_dir)
        [worker] = _demo_workers(demo)
        worker.kill()
        killed = time.monotonic()
        while not (workers := [p for p in _demo_workers(demo) if p.pid != worker.pid]):
            assert time.monotonic() < killed + 10, "no new worker"
            time.sleep(0.1)
        print(f"worker restarted in {time.monotonic() - killed:.1f} s")
        family += workers
        demo.send_signal(signal.SIGTERM)
        demo.wait(10)
    finally:
        _kill_all(demo, family, data_dir)


def _demo_workers(demo: subprocess.Popen[bytes]) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(demo.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            if child.status() != psutil.STATUS_ZOMBIE and "worker" in child.cmdline():
                found.append(child)
    return found
