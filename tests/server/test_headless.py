"""The headless import (#16): `POST /api/v1/files` and `loadbay import`, a file read,
validated, sealed and delivered by the server through the importer's own functions."""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn
import xlsxwriter
from rq import SimpleWorker
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook
from starlette.testclient import TestClient
from typer.testing import CliRunner

from pipeline.session import ImportSession
from pipeline.template import parse_template
from server import batches, db, headless, imports, jobs, keys, uploads
from server.app import create_app
from server.cli import app as cli_app
from server.runtime import Runtime
from server.tls import ensure_certificate

if TYPE_CHECKING:
    from tests.conftest import DemoOrgFactory, OrgSetup, Receiver, RuntimeFactory

BASE = "https://127.0.0.1:8443"
PROBLEM = "application/problem+json"
CSV = (
    "Full name,Email,Country,Amount\n"
    "Ada Lovelace,ada@example.com,GB,12.5\n"
    "Grace Hopper,grace@example.com,US,7\n"
    "Linus Torvalds,linus@example.com,NL,\n"
)


@pytest.fixture
def store() -> str:
    return "sqlite"


@pytest.fixture
def setup(
    runtime: Runtime,
    demo_org: DemoOrgFactory,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> OrgSetup:
    monkeypatch.setattr(jobs, "_runtime", lambda: runtime)
    return demo_org(runtime, webhook_urls=[receiver.url])


@pytest.fixture
def secret(runtime: Runtime, setup: OrgSetup) -> str:
    return keys.create_key(runtime, setup.org.id, "tests").secret


@pytest.fixture
def api(runtime: Runtime, secret: str) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url=BASE) as client:
        client.headers["authorization"] = f"Bearer {secret}"
        yield client


def _deliver(rt: Runtime) -> None:
    headless.RUNNER.drain()
    SimpleWorker(rt.queue.worker_queues, connection=rt.queue.connection).work(burst=True)


def _rows_received(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for request in receiver.requests:
        Webhook(secret).verify(request.body, request.headers)  # signed as every delivery is
        rows += json.loads(request.body)["data"]["rows"]
    return rows


def _post(api: TestClient, name: str, content: bytes, **fields: str) -> Any:
    return api.post("/api/v1/files", data=fields, files={"file": (name, content)})


def _xlsx(path: Path) -> bytes:
    book = xlsxwriter.Workbook(str(path))
    notes = book.add_worksheet("Notes")
    notes.write_row(0, 0, ["nothing to import here"])
    sheet = book.add_worksheet("Contacts")
    sheet.write_row(0, 0, ["Export of 2026-11-30"])  # a title row above the header
    sheet.write_row(2, 0, ["Name", "E-mail", "Country", "Total"])
    sheet.write_row(3, 0, ["Ada Lovelace", "ada@example.com", "GB", 12.5])
    sheet.write_row(4, 0, ["Grace Hopper", "grace@example.com", "US", 7])
    book.close()
    return path.read_bytes()


def test_a_csv_through_the_api_is_delivered_to_the_webhook(
    api: TestClient, runtime: Runtime, setup: OrgSetup, receiver: Receiver
) -> None:
    response = _post(api, "contacts.csv", CSV.encode(), template_id=setup.template.id)
    assert response.status_code == 202, response.text
    import_id = response.json()["id"]
    assert response.json() == {
        "id": import_id,
        "status": "uploading",
        "status_url": f"/api/v1/files/{import_id}",
    }
    assert response.headers["location"] == f"/api/v1/files/{import_id}"
    _deliver(runtime)

    assert setup.secret is not None
    assert _rows_received(receiver, setup.secret) == [
        {"full_name": "Ada Lovelace", "email": "ada@example.com", "phone": None,
         "country": "GB", "signup_date": None, "amount": 12.5},
        {"full_name": "Grace Hopper", "email": "grace@example.com", "phone": None,
         "country": "US", "signup_date": None, "amount": 7.0},
        {"full_name": "Linus Torvalds", "email": "linus@example.com", "phone": None,
         "country": "NL", "signup_date": None, "amount": None},
    ]  # fmt: skip
    status = api.get(f"/api/v1/files/{import_id}")
    assert status.status_code == 200
    assert status.json() == {
        "id": import_id,
        "status": "delivered",
        "final": True,
        "rows": 3,
        "batches": 1,
        "deliveries": {"pending": 0, "delivered": 1, "failed": 0},
        "failure": None,
    }
    assert not list((runtime.settings.data_dir / "headless").iterdir())  # the file is gone


def test_an_xlsx_sheet_and_header_row_with_an_explicit_mapping(
    api: TestClient, runtime: Runtime, setup: OrgSetup, receiver: Receiver, tmp_path: Path
) -> None:
    mapping = {"full_name": "Name", "email": "E-mail", "country": "Country", "amount": "Total"}
    response = _post(
        api,
        "export.xlsx",
        _xlsx(tmp_path / "export.xlsx"),
        template_id=setup.template.id,
        sheet="Contacts",
        header_row="3",
        mapping=json.dumps(mapping),
    )
    assert response.status_code == 202, response.text
    _deliver(runtime)
    assert setup.secret is not None
    rows = _rows_received(receiver, setup.secret)
    assert [(r["full_name"], r["email"], r["country"], r["amount"]) for r in rows] == [
        ("Ada Lovelace", "ada@example.com", "GB", 12.5),
        ("Grace Hopper", "grace@example.com", "US", 7.0),
    ]
    state = api.get(f"/api/v1/files/{response.json()['id']}").json()
    assert (state["status"], state["rows"]) == ("delivered", 2)


def test_a_file_with_failing_cells_is_rejected_with_where_they_are(
    api: TestClient, runtime: Runtime, setup: OrgSetup, receiver: Receiver
) -> None:
    bad = "Full name,Email,Country\nAda Lovelace,ada@example.com,XX\n,grace@example.com,US\n"
    response = _post(api, "bad.csv", bad.encode(), template_id=setup.template.id)
    assert response.status_code == 202, response.text
    _deliver(runtime)
    assert receiver.requests == []
    state = api.get(f"/api/v1/files/{response.json()['id']}").json()
    assert (state["status"], state["final"], state["rows"]) == ("failed", True, 0)
    failure = state["failure"]
    assert failure["title"] == "The file's cells do not pass the template's rules"
    assert failure["error_count"] == 2
    assert failure["errors"] == [
        {"row": 2, "field": "country", "column": "Country", "sheet": None,
         "code": "constraint-error", "key": "enum", "constraint": "enum"},
        {"row": 3, "field": "full_name", "column": "Full name", "sheet": None,
         "code": "constraint-error", "key": "required", "constraint": "required"},
    ]  # fmt: skip
    assert "XX" not in json.dumps(failure)  # cell values stay out of the record


def test_an_unreadable_file_is_a_clear_problem_at_once(api: TestClient, setup: OrgSetup) -> None:
    response = _post(api, "contacts.csv", b"", template_id=setup.template.id)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert "contacts.csv is empty" in response.json()["detail"]

    broken = _post(api, "book.xlsx", b"PK\x03\x04 not a zip", template_id=setup.template.id)
    assert broken.status_code == 422, broken.text
    assert "book.xlsx" in broken.json()["detail"]


def test_a_sheet_that_does_not_exist_fails_the_import_naming_it(
    api: TestClient, runtime: Runtime, setup: OrgSetup, tmp_path: Path
) -> None:
    response = _post(
        api, "export.xlsx", _xlsx(tmp_path / "e.xlsx"), template_id=setup.template.id,
        sheet="Orders",
    )  # fmt: skip
    assert response.status_code == 202, response.text
    headless.RUNNER.drain()
    state = api.get(f"/api/v1/files/{response.json()['id']}").json()
    assert state["status"] == "failed"
    assert state["failure"]["title"] == "The file cannot be read"
    assert "Orders" in state["failure"]["detail"]


@pytest.mark.parametrize(
    ("fields", "status", "detail"),
    [
        ({}, 422, "template_id"),
        ({"template_id": "tpl_nope"}, 404, "Template tpl_nope does not exist."),
        ({"template_id": "T", "header_row": "0"}, 422, "header_row"),
        ({"template_id": "T", "mapping": "[1]"}, 422, "mapping is a JSON object"),
        ({"template_id": "T", "colour": "red"}, 422, "Unknown form field(s): colour"),
    ],
)
def test_bad_forms_are_problems(
    api: TestClient, setup: OrgSetup, fields: dict[str, str], status: int, detail: str
) -> None:
    if fields.get("template_id") == "T":
        fields["template_id"] = setup.template.id
    response = _post(api, "contacts.csv", CSV.encode(), **fields)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert detail in response.json()["detail"]


def test_a_file_over_the_cap_is_refused_unread(
    runtime_factory: RuntimeFactory, secret: str, setup: OrgSetup
) -> None:
    small = runtime_factory(max_file_bytes=1000)  # the same database: the key holds
    with TestClient(create_app(small), base_url=BASE) as client:
        client.headers["authorization"] = f"Bearer {secret}"
        response = _post(client, "big.csv", CSV.encode() * 1000, template_id=setup.template.id)
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM
    assert "at most 1000 bytes" in response.json()["detail"]


def test_the_file_routes_need_a_secret_key(api: TestClient, setup: OrgSetup) -> None:
    del api.headers["authorization"]
    response = _post(api, "contacts.csv", CSV.encode(), template_id=setup.template.id)
    assert response.status_code == 401
    assert api.get("/api/v1/files/imp_x").status_code == 401


def test_an_import_of_another_organisation_is_not_found(
    api: TestClient, runtime: Runtime, demo_org: DemoOrgFactory
) -> None:
    other = demo_org(runtime)
    created = imports.create_import(runtime, other.org, other.template.id, "x.csv")
    response = api.get(f"/api/v1/files/{created.import_id}")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


# --- loadbay import ---------------------------------------------------------------------


@pytest.fixture
def https_server(runtime: Runtime, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The app on loopback HTTPS (its own certificate), as `loadbay serve` runs it."""
    cert, key = ensure_certificate(tmp_path / "tls")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=port, ssl_certfile=str(cert),
        ssl_keyfile=str(key), log_level="warning",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
    yield f"https://127.0.0.1:{port}", cert
    server.should_exit = True
    thread.join(10)


def test_loadbay_import_sends_a_file_and_follows_it_to_delivered(
    https_server: tuple[str, Path],
    runtime: Runtime,
    setup: OrgSetup,
    secret: str,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    url, cert = https_server
    path = tmp_path / "contacts.csv"
    path.write_text(CSV, encoding="utf-8")
    args = ["import", str(path), "--template", setup.template.id, "--url", url,
            "--key", secret, "--ca-file", str(cert)]  # fmt: skip
    results: list[Any] = []
    cli = threading.Thread(target=lambda: results.append(CliRunner().invoke(cli_app, args)))
    cli.start()
    while cli.is_alive():  # RQ's worker handles signals: it runs here, in the main thread
        _deliver(runtime)
        cli.join(0.1)
    [result] = results
    assert result.exit_code == 0, result.output
    assert "accepted contacts.csv as import imp_" in result.output
    assert result.output.strip().endswith(": delivered, 3 rows")
    assert setup.secret is not None
    assert [r["email"] for r in _rows_received(receiver, setup.secret)] == [
        "ada@example.com", "grace@example.com", "linus@example.com"
    ]  # fmt: skip


def test_loadbay_import_exits_2_with_the_servers_problem(
    https_server: tuple[str, Path], setup: OrgSetup, tmp_path: Path
) -> None:
    url, cert = https_server
    path = tmp_path / "contacts.csv"
    path.write_text(CSV, encoding="utf-8")
    args = ["import", str(path), "--template", setup.template.id, "--url", url,
            "--key", "lb_sk_wrong", "--ca-file", str(cert)]  # fmt: skip
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 2
    assert "The server answered 401" in result.output


def test_a_full_line_is_a_503_and_creates_no_import(
    api: TestClient, runtime: Runtime, setup: OrgSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = headless.Runner()
    monkeypatch.setattr(headless, "RUNNER", runner)
    for _ in range(headless.MAX_WAITING + 1):  # one running, the rest waiting
        runner.reserve()
    response = _post(api, "contacts.csv", CSV.encode(), template_id=setup.template.id)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "30"
    with runtime.sessions() as session:
        assert session.scalar(select(func.count(db.Import.id))) == 0
    assert not list((runtime.settings.data_dir / "headless").iterdir())  # nor keeps the file


def _set_policy(rt: Runtime, org_id: str, policy: str) -> None:
    with rt.sessions.begin() as session:
        org = session.get(db.Organisation, org_id)
        assert org is not None
        org.invalid_row_policy = policy


MIXED = (
    "Full name,Email,Country\nAda Lovelace,ada@example.com,XX\nGrace Hopper,grace@example.com,US\n"
)


def test_valid_only_imports_the_passing_rows_and_leaves_the_rest_out(
    api: TestClient, runtime: Runtime, setup: OrgSetup, receiver: Receiver
) -> None:
    """The organisation's invalid-row policy rules a headless import as it rules the page's:
    valid-only sends the rows that pass (it was refused whole, as under reject)."""
    _set_policy(runtime, setup.org.id, "valid-only")
    response = _post(api, "mixed.csv", MIXED.encode(), template_id=setup.template.id)
    assert response.status_code == 202, response.text
    _deliver(runtime)
    assert setup.secret is not None
    assert [r["email"] for r in _rows_received(receiver, setup.secret)] == ["grace@example.com"]
    state = api.get(f"/api/v1/files/{response.json()['id']}").json()
    assert (state["status"], state["rows"], state["failure"]) == ("delivered", 1, None)
    detail = api.get(f"/api/v1/imports/{response.json()['id']}").json()
    assert detail["left_out"] == 1


def test_valid_only_with_no_passing_row_fails_saying_so(
    api: TestClient, runtime: Runtime, setup: OrgSetup, receiver: Receiver
) -> None:
    _set_policy(runtime, setup.org.id, "valid-only")
    bad = "Full name,Email,Country\nAda Lovelace,ada@example.com,XX\n"
    response = _post(api, "bad.csv", bad.encode(), template_id=setup.template.id)
    _deliver(runtime)
    assert receiver.requests == []
    state = api.get(f"/api/v1/files/{response.json()['id']}").json()
    assert state["status"] == "failed"
    assert state["failure"]["detail"].startswith("No row of bad.csv passes the template's rules")
    assert state["failure"]["error_count"] == 1


def test_with_errors_delivers_every_row(
    api: TestClient, runtime: Runtime, setup: OrgSetup, receiver: Receiver
) -> None:
    _set_policy(runtime, setup.org.id, "with-errors")
    response = _post(api, "mixed.csv", MIXED.encode(), template_id=setup.template.id)
    _deliver(runtime)
    assert setup.secret is not None
    rows = _rows_received(receiver, setup.secret)
    assert [r["email"] for r in rows] == ["ada@example.com", "grace@example.com"]
    state = api.get(f"/api/v1/files/{response.json()['id']}").json()
    assert (state["status"], state["rows"]) == ("delivered", 2)


# --- delimited files part by part ---------------------------------------------------------------

PEOPLE = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
        {"name": "email", "title": "Email", "constraints": {"required": True, "unique": True}},
        {"name": "country", "constraints": {"enum": ["DE", "FR", "GB", "NL", "US"]}},
        {"name": "amount", "type": "number"},
    ],
    "missingValues": [""],
}
COUNTRIES = ("DE", "FR", "GB", "NL", "US")


def _people(rows: int, bad: dict[int, str] | None = None) -> bytes:
    """A CSV of `rows` valid people; `bad` replaces data row k (1-based) with its line."""
    lines = ["id,Email,country,amount"]
    for k in range(1, rows + 1):
        line = f"{k},user{k}@example.com,{COUNTRIES[k % 5]},{k * 1.5}"
        lines.append((bad or {}).get(k, line))
    return ("\n".join(lines) + "\n").encode()


def _headless(
    rt: Runtime, setup: OrgSetup, tmp_path: Path, content: bytes, name: str = "people.csv"
) -> headless.FileImport:
    """Accept and run a headless import here (not in the process's thread)."""
    path = tmp_path / f"upload-{secrets.token_hex(4)}"
    path.write_bytes(content)
    options = headless.FileOptions(template_id=setup.template.id)
    created = headless.accept(rt, setup.org, path, name, options)
    headless.run(rt, created, path, name, options)
    return headless.file_import(rt, setup.org, created.import_id)


@pytest.fixture
def people(runtime: Runtime, demo_org: DemoOrgFactory, monkeypatch: pytest.MonkeyPatch) -> OrgSetup:
    monkeypatch.setattr(jobs, "_runtime", lambda: runtime)
    return demo_org(runtime, schema=PEOPLE)


@pytest.fixture
def people_api(runtime: Runtime, people: OrgSetup) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url=BASE) as client:
        client.headers["authorization"] = (
            f"Bearer {keys.create_key(runtime, people.org.id, 't').secret}"
        )
        yield client


def _stored_rows(api: TestClient, import_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"/api/v1/imports/{import_id}/rows", params={"format": "ndjson"})
    assert answer.status_code == 200, answer.text
    return [json.loads(line) for line in answer.text.splitlines()]


def _whole_errors(path: Path, schema: dict[str, Any]) -> tuple[list[tuple[Any, ...]], int]:
    """The errors the engine finds reading the file whole, as the page's review lists them."""
    session = ImportSession.open(str(path), "people.csv", parse_template(schema))
    errors = session.report().errors
    return [(e.row, e.field, e.code, e.key) for e in errors], len(errors)


MIXED_PEOPLE = {
    3: "3,user3@example.com,XX,4.5",  # not in the list
    40: "",  # a blank line
    41: "41,user41@example.com,DE",  # a cell missing
    77: '77,"user77@example.com",NL,"1\n2"',  # a line break inside a quoted cell
    150: "150,user2@example.com,GB,1",  # the e-mail of (file) row 3, much later
    151: "x,user151@example.com,GB,",  # not an integer
    299: "5,user299@example.com,US,7",  # the id of row 6, in the last part
}


def test_a_csv_in_many_parts_stores_the_rows_of_one_part(
    people_api: TestClient,
    runtime_factory: RuntimeFactory,
    runtime: Runtime,
    people: OrgSetup,
    tmp_path: Path,
) -> None:
    """valid-only: the rows stored and left out are the same whether the file is read in
    many parts or in one (the whole file's), and a repeat in a later part is left out."""
    _set_policy(runtime, people.org.id, "valid-only")
    content = _people(300, MIXED_PEOPLE)
    small = runtime_factory(headless_part_bytes=300)  # same database and queue
    parts = _headless(small, people, tmp_path, content)
    whole = _headless(runtime, people, tmp_path, content)
    assert parts.failure is None and whole.failure is None
    assert parts.state.batches > 20 and whole.state.batches == 1
    assert parts.state.rows == whole.state.rows == 300 - 1 - 6  # the blank row, 6 invalid
    stored = _stored_rows(people_api, parts.state.import_id)
    assert stored == _stored_rows(people_api, whole.state.import_id)
    ids = [r["id"] for r in stored]
    assert 150 not in ids and 299 not in ids and 3 not in ids and 2 in ids
    for state in (parts, whole):
        detail = people_api.get(f"/api/v1/imports/{state.state.import_id}").json()
        assert detail["left_out"] == 6


def _sealed_rows(rt: Runtime, import_id: str) -> list[dict[str, Any]]:
    """Every stored row as sealed, `_errors` included, batch after batch."""
    with rt.sessions() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None
        rows: list[dict[str, Any]] = []
        for seq in range(imp.batch_count):
            rows += batches.load_batch(rt, session, imp, seq).to_pylist()
    return rows


def test_with_errors_in_many_parts_stores_every_row_with_the_errors_of_one_part(
    runtime_factory: RuntimeFactory,
    runtime: Runtime,
    people: OrgSetup,
    tmp_path: Path,
) -> None:
    _set_policy(runtime, people.org.id, "with-errors")
    content = _people(300, MIXED_PEOPLE)
    parts = _headless(runtime_factory(headless_part_bytes=300), people, tmp_path, content)
    whole = _headless(runtime, people, tmp_path, content)
    assert parts.state.rows == whole.state.rows == 299  # the blank row is not a row
    stored = _sealed_rows(runtime, parts.state.import_id)
    assert stored == _sealed_rows(runtime, whole.state.import_id)
    flagged = {r["email"]: [e["code"] for e in r["_errors"]] for r in stored if r["_errors"]}
    assert flagged["user2@example.com"] == ["unique-error"]  # the repeat, parts apart
    assert len(flagged) == 5  # row 41's missing cell is a reader's problem: no cell fails


def test_a_csv_in_many_parts_fails_with_the_whole_files_errors(
    runtime_factory: RuntimeFactory,
    runtime: Runtime,
    people: OrgSetup,
    tmp_path: Path,
) -> None:
    content = _people(300, MIXED_PEOPLE)
    state = _headless(runtime_factory(headless_part_bytes=300), people, tmp_path, content)
    assert state.state.status == "failed"
    assert state.failure is not None
    path = tmp_path / "people.csv"
    path.write_bytes(content)
    expected, count = _whole_errors(path, PEOPLE)
    assert state.failure.error_count == count == 6
    found = [(e["row"], e["field"], e["code"], e["key"]) for e in state.failure.errors]
    assert found == expected
    assert (151, "email", "unique-error", "unique") in found  # row 151 repeats row 3's
    assert (300, "id", "unique-error", "unique") in found  # and row 300 row 6's id
    assert all(e["column"] for e in state.failure.errors if e["field"])  # where, never what
    assert "user2@example.com" not in json.dumps(state.failure.to_dict())


def test_a_repeat_in_the_last_part_fails_the_import_and_shreds_its_batches(
    runtime_factory: RuntimeFactory,
    runtime: Runtime,
    people: OrgSetup,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[int] = []
    receive = uploads.receive_batch

    def counted(*args: Any, **kwargs: Any) -> int:
        rows = receive(*args, **kwargs)
        sent.append(rows)
        return rows

    monkeypatch.setattr(uploads, "receive_batch", counted)
    content = _people(400, {400: "400,user17@example.com,DE,1"})
    state = _headless(runtime_factory(headless_part_bytes=2000), people, tmp_path, content)
    # stored before the repeat was met: every part but the last and the batch held back
    assert len(sent) == 5 and sum(sent) > 250
    assert state.state.status == "failed" and state.state.rows == 0
    assert state.failure is not None
    assert state.failure.error_count == 1
    assert [(e["row"], e["field"], e["key"]) for e in state.failure.errors] == [
        (401, "email", "unique")
    ]
    import_id = state.state.import_id
    with runtime.sessions() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None and imp.wrapped_data_key is None  # shredded
        for table in (db.Batch, db.UniqueSet):
            assert (
                session.scalar(
                    select(func.count()).select_from(table).where(table.import_id == import_id)
                )
                == 0
            )
    stored = runtime.settings.blob_dir / batches.blob_prefix(people.org.id, import_id)
    assert not [p for p in stored.rglob("*") if p.is_file()]
