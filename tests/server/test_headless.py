"""The headless import (#16): `POST /api/v1/files` and `loadbay import`, a file read,
validated, sealed and delivered by the server through the importer's own functions."""

from __future__ import annotations

import json
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

from server import db, headless, imports, jobs, keys
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
