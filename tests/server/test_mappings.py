"""Remembered column mappings: storage on both stores, the HTTP API, the migration."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text
from starlette.testclient import TestClient

from pipeline.matching import header_signature
from server import db, imports, mappings
from server.app import create_app
from server.errors import Invalid, NotFound
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import DemoOrgFactory, OrgSetup, RuntimeFactory

BASE = "https://127.0.0.1:8443"
HOST = "https://host.example"
HEADERS = ["Name", "E-mail", "Tel", "Land", "Betrag"]
CONFIRMED = {"full_name": "Name", "email": "E-mail", "phone": "Tel", "amount": "Betrag"}
REMEMBERED = {"Name": "full_name", "E-mail": "email", "Tel": "phone", "Betrag": "amount"}
sqlite_only = pytest.mark.parametrize("store", ["sqlite"])


@pytest.fixture
def setup(runtime: Runtime, demo_org: DemoOrgFactory) -> OrgSetup:
    return demo_org(runtime, origins=[HOST])


def _memories(rt: Runtime) -> list[db.MappingMemory]:
    with rt.sessions() as session:
        return list(session.scalars(select(db.MappingMemory).order_by(db.MappingMemory.id)))


# --- remember() and recall() on SQLite and PostgreSQL ------------------------------------------


def test_a_confirmed_mapping_is_recalled_for_the_same_headers(
    runtime: Runtime, setup: OrgSetup
) -> None:
    template_id = setup.template.id
    assert mappings.recall(runtime, template_id, HEADERS) is None
    kept = mappings.remember(runtime, template_id, HEADERS, CONFIRMED)
    assert kept == mappings.Remembered(header_signature(HEADERS), 1)
    assert mappings.recall(runtime, template_id, HEADERS) == REMEMBERED
    assert mappings.recall_exact(runtime, template_id, kept.signature) == REMEMBERED
    # Headers that normalise alike have the same signature.
    assert mappings.recall(runtime, template_id, ["NAME ", "email", "tel.", "LAND", "betrag"]) == (
        REMEMBERED
    )


def test_confirming_again_counts_and_keeps_the_latest_mapping(
    runtime: Runtime, setup: OrgSetup
) -> None:
    template_id = setup.template.id
    mappings.remember(runtime, template_id, HEADERS, CONFIRMED)
    kept = mappings.remember(runtime, template_id, HEADERS, {"email": "E-mail", "country": "Land"})
    assert kept.uses == 2
    assert mappings.recall(runtime, template_id, HEADERS) == {"E-mail": "email", "Land": "country"}
    [memory] = _memories(runtime)
    assert (memory.template_id, memory.signature, memory.uses) == (template_id, kept.signature, 2)
    assert memory.updated_at.tzinfo is not None


def test_unmapped_header_labels_are_not_stored_readable(runtime: Runtime, setup: OrgSetup) -> None:
    mappings.remember(runtime, setup.template.id, [*HEADERS, "UNMAPPED-Pelargonium"], CONFIRMED)
    [memory] = _memories(runtime)
    assert memory.mapping == REMEMBERED
    assert len(memory.header_digests) == 6
    assert all(len(d) == 16 and int(d, 16) >= 0 for d in memory.header_digests)
    with runtime.sessions() as session:
        row = session.execute(text("SELECT * FROM mapping_memories")).one()
    assert "Pelargonium" not in repr(row)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([*HEADERS, "Notes"], REMEMBERED),  # one column more: 5 of 6 shared
        (["Notes", *HEADERS[::-1]], REMEMBERED),  # ... and moved about
        (HEADERS[:4] + ["Amount"], {k: v for k, v in REMEMBERED.items() if k != "Betrag"}),
        (HEADERS[:4], {k: v for k, v in REMEMBERED.items() if k != "Betrag"}),  # 4 of 5
        ([*HEADERS, "Notes", "More"], None),  # 5 of 7 shared
        (HEADERS[:3] + ["X", "Y"], None),  # 3 of 5
        (HEADERS[:3], None),
    ],
    ids=["added", "moved", "renamed", "dropped", "two-added", "two-renamed", "two-dropped"],
)
def test_a_similar_layout_recalls_the_labels_it_has(
    runtime: Runtime, setup: OrgSetup, headers: list[str], expected: dict[str, str] | None
) -> None:
    mappings.remember(runtime, setup.template.id, HEADERS, CONFIRMED)
    assert mappings.recall(runtime, setup.template.id, headers) == expected


def test_the_most_used_similar_memory_wins(runtime: Runtime, setup: OrgSetup) -> None:
    template_id = setup.template.id
    once = ["Name", "E-mail", "Tel", "Land", "Betrag", "A"]
    twice = ["Name", "E-mail", "Tel", "Land", "Betrag", "B"]
    mappings.remember(runtime, template_id, once, {"full_name": "Name"})
    mappings.remember(runtime, template_id, twice, {"email": "Name"})
    mappings.remember(runtime, template_id, twice, {"email": "Name"})
    # Both share 5 of the 7 headers of this file (under 80%: nothing)...
    assert mappings.recall(runtime, template_id, [*HEADERS, "C", "D"]) is None
    # ...and 5 of 6 with this one, where the memory used twice wins...
    assert mappings.recall(runtime, template_id, HEADERS) == {"Name": "email"}
    # ...then, when both are used as often, the one confirmed last.
    mappings.remember(runtime, template_id, once, {"full_name": "Name", "phone": "Tel"})
    assert mappings.recall(runtime, template_id, HEADERS) == {"Name": "full_name", "Tel": "phone"}


def test_memories_belong_to_their_template(
    runtime: Runtime, setup: OrgSetup, demo_org: DemoOrgFactory
) -> None:
    other = demo_org(runtime, origins=[HOST])
    mappings.remember(runtime, setup.template.id, HEADERS, CONFIRMED)
    assert mappings.recall(runtime, other.template.id, HEADERS) is None
    mappings.remember(runtime, other.template.id, HEADERS, {"email": "Name"})
    assert mappings.recall(runtime, setup.template.id, HEADERS) == REMEMBERED
    assert mappings.recall(runtime, other.template.id, HEADERS) == {"Name": "email"}


def test_the_least_recently_confirmed_layouts_are_forgotten(
    runtime: Runtime, setup: OrgSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mappings, "MEMORIES_PER_TEMPLATE", 3)
    layouts = [[f"Column {i}", "Name"] for i in range(4)]
    for headers in layouts[:3]:
        mappings.remember(runtime, setup.template.id, headers, {"full_name": "Name"})
    mappings.remember(runtime, setup.template.id, layouts[0], {"full_name": "Name"})
    mappings.remember(runtime, setup.template.id, layouts[3], {"full_name": "Name"})
    kept = {m.signature for m in _memories(runtime)}
    assert kept == {header_signature(layouts[i]) for i in (0, 2, 3)}


def test_concurrent_confirmations_are_all_counted(runtime: Runtime, setup: OrgSetup) -> None:
    barrier = threading.Barrier(6)
    failures: list[BaseException] = []

    def confirm() -> None:
        barrier.wait()
        try:
            mappings.remember(runtime, setup.template.id, HEADERS, CONFIRMED)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=confirm) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    [memory] = _memories(runtime)
    assert memory.uses == 6


@pytest.mark.parametrize(
    ("headers", "mapping", "message"),
    [
        (HEADERS, {"nope": "Name"}, '"nope" is not a field of the template.'),
        (
            HEADERS,
            {"email": "Mail"},
            'Field "email" is mapped to a column the headers do not have.',
        ),
        (HEADERS, {"email": 3}, 'Field "email" is mapped to a column the headers do not have.'),
        (
            HEADERS,
            {"email": "Tel", "phone": "Tel"},
            'Column "Tel" is mapped to more than one field.',
        ),
        (HEADERS, {}, "mapping must be an object of field name -> column header, not empty."),
        (HEADERS, ["Name"], "mapping must be an object of field name -> column header, not empty."),
        ("Name", CONFIRMED, "headers must be a list of the file's column headers (strings)."),
        ([1, 2], CONFIRMED, "headers must be a list of the file's column headers (strings)."),
        ([], CONFIRMED, "headers must hold between 1 and 16384 column headers."),
        (["x"] * 16_385, CONFIRMED, "headers must hold between 1 and 16384 column headers."),
        (["x" * 1001], CONFIRMED, "A column header may be at most 1000 characters long."),
    ],
    ids=[
        "unknown-field",
        "unknown-header",
        "not-a-header",
        "header-twice",
        "empty",
        "not-an-object",
        "headers-string",
        "headers-numbers",
        "no-headers",
        "too-many-headers",
        "long-header",
    ],
)
@sqlite_only
def test_what_cannot_be_remembered_is_refused(
    runtime: Runtime, setup: OrgSetup, headers: Any, mapping: Any, message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        mappings.remember(runtime, setup.template.id, headers, mapping)
    assert caught.value.message == message
    assert _memories(runtime) == []


@sqlite_only
def test_an_unknown_template_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="^Template tpl_nope does not exist.$"):
        mappings.remember(runtime, "tpl_nope", HEADERS, CONFIRMED)


# --- the migration -----------------------------------------------------------------------------


@pytest.fixture
def database_at_0001(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database migrated to 0001 only, holding a template: a store before this feature."""
    if store == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        schema = None
    else:
        pg = request.getfixturevalue("postgres_database")
        schema = f"migrate_{secrets.token_hex(4)}"
        with pg.connect() as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{pg.url}?options=-csearch_path%3D{schema}"
    db.migrate(url, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organisations (id, name, publishable_key, allowed_origins,"
                " wrapped_key, created_at) VALUES ('org_old', 'Old', 'pk_old', '[]', :k, :t)"
            ),
            {"k": b"k", "t": db.utcnow()},
        )
        conn.execute(
            text(
                "INSERT INTO templates (id, org_id, name, schema, created_at)"
                " VALUES ('tpl_old', 'org_old', 'old', :s, :t)"
            ),
            {"s": '{"fields": [{"name": "email"}]}', "t": db.utcnow()},
        )
    engine.dispose()
    yield url
    if schema is not None:
        with request.getfixturevalue("postgres_database").connect() as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_the_migration_adds_the_table_to_an_existing_store(
    database_at_0001: str, runtime_factory: RuntimeFactory
) -> None:
    engine = create_engine(database_at_0001)
    try:
        assert "mapping_memories" not in inspect(engine).get_table_names()
        rt = runtime_factory(database_url=database_at_0001)  # migrates to the head
        inspector = inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("mapping_memories")}
        assert columns == {
            "id",
            "template_id",
            "signature",
            "header_digests",
            "mapping",
            "uses",
            "updated_at",
        }
        uniques = inspector.get_unique_constraints("mapping_memories")
        assert ("template_id", "signature") in {tuple(u["column_names"]) for u in uniques}
        config = Config()
        config.set_main_option("script_location", str(db.MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    finally:
        engine.dispose()
    mappings.remember(rt, "tpl_old", ["E-mail"], {"email": "E-mail"})
    assert mappings.recall(rt, "tpl_old", ["email"]) == {"E-mail": "email"}


# --- HTTP --------------------------------------------------------------------------------------


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url=BASE) as made:
        yield made


def _path(setup: OrgSetup, suffix: str = "") -> str:
    return f"/api/v1/templates/{setup.template.id}/mappings{suffix}"


def _submitted(client: TestClient, setup: OrgSetup) -> tuple[str, dict[str, str]]:
    """A submitted import of the template: (its id, the Authorization header vouching)."""
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    created = imports.create_import(rt, setup.org, setup.template.id, "people.csv")
    imports.submit(rt, created.import_id, created.upload_token, 0, 0)
    return created.import_id, {"authorization": f"Bearer {created.upload_token}"}


def _post(client: TestClient, setup: OrgSetup, **overrides: Any) -> Any:
    import_id, auth = _submitted(client, setup)
    body = {
        "publishableKey": setup.org.publishable_key,
        "headers": HEADERS,
        "mapping": CONFIRMED,
        "importId": import_id,
    }
    body.update(overrides)
    return client.post(_path(setup), json=body, headers={"origin": BASE, **auth})


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_remember_and_recall_over_http(client: TestClient, setup: OrgSetup) -> None:
    signature = header_signature(HEADERS)
    key = {"x-loadbay-key": setup.org.publishable_key}
    response = client.get(_path(setup), params={"signature": signature}, headers=key)
    assert response.status_code == 200
    assert response.json() == {"signature": signature, "mapping": None}

    response = _post(client, setup)
    assert response.status_code == 200, response.text
    assert response.json() == {"signature": signature, "uses": 1}
    assert _post(client, setup).json() == {"signature": signature, "uses": 2}

    response = client.get(_path(setup), params={"signature": signature}, headers=key)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"signature": signature, "mapping": REMEMBERED}

    similar = [*HEADERS, "Notes"]
    response = client.post(
        _path(setup, "/recall"),
        json={"publishableKey": setup.org.publishable_key, "headers": similar},
        headers={"origin": BASE},
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"signature": header_signature(similar), "mapping": REMEMBERED}


@sqlite_only
def test_the_key_may_come_as_a_header_a_query_or_in_the_body(
    client: TestClient, setup: OrgSetup
) -> None:
    pk = setup.org.publishable_key
    signature = header_signature(HEADERS)
    assert _post(client, setup).status_code == 200
    for params, headers in [({"key": pk}, {}), ({}, {"x-loadbay-key": pk})]:
        response = client.get(
            _path(setup), params={"signature": signature, **params}, headers=headers
        )
        assert response.json()["mapping"] == REMEMBERED
        import_id, auth = _submitted(client, setup)
        body = {"headers": HEADERS, "mapping": CONFIRMED, "importId": import_id}
        response = client.post(_path(setup), params=params, json=body, headers={**headers, **auth})
        assert response.status_code == 200, response.text


@sqlite_only
@pytest.mark.parametrize("method", ["get", "post", "recall"])
def test_an_unknown_key_or_another_organisations_template_is_a_404(
    client: TestClient, runtime: Runtime, setup: OrgSetup, demo_org: DemoOrgFactory, method: str
) -> None:
    other = demo_org(runtime, origins=[HOST])
    cases = [
        ("pk_nope", setup, "Unknown publishable key. Check the key in your embed code."),
        (setup.org.publishable_key, other, f"Template {other.template.id} does not exist."),
    ]
    for key, target, message in cases:
        if method == "get":
            response = client.get(_path(target), params={"signature": "0" * 64, "key": key})
        else:
            suffix = "/recall" if method == "recall" else ""
            body = {"publishableKey": key, "headers": HEADERS, "mapping": CONFIRMED}
            response = client.post(_path(target, suffix), json=body)
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "not-found", "message": message}}
    assert _memories(runtime) == []


@sqlite_only
@pytest.mark.parametrize("method", ["get", "post", "recall"])
def test_calls_from_another_origin_are_forbidden(
    client: TestClient, runtime: Runtime, setup: OrgSetup, method: str
) -> None:
    foreign = {"origin": HOST, "x-loadbay-key": setup.org.publishable_key}
    if method == "get":
        response = client.get(_path(setup), params={"signature": "0" * 64}, headers=foreign)
    else:
        suffix = "/recall" if method == "recall" else ""
        body = {"headers": HEADERS, "mapping": CONFIRMED}
        response = client.post(_path(setup, suffix), json=body, headers=foreign)
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": "Requests must come from the loadbay importer page.",
    }
    assert _memories(runtime) == []


@sqlite_only
@pytest.mark.parametrize("signature", ["", "abc", "G" * 64, "A" * 64, "0" * 63, "0" * 65], ids=repr)
def test_a_malformed_signature_is_a_422(
    client: TestClient, setup: OrgSetup, signature: str
) -> None:
    response = client.get(
        _path(setup), params={"signature": signature, "key": setup.org.publishable_key}
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "signature must be the 64 lower-case hex digits of header_signature()."
    )


@sqlite_only
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"headers": "Name"}, "headers must be a list of the file's column headers (strings)."),
        ({"headers": None}, "headers must be a list of the file's column headers (strings)."),
        (
            {"mapping": {"email": "Mail"}},
            'Field "email" is mapped to a column the headers do not have.',
        ),
        ({"mapping": None}, "mapping must be an object of field name -> column header, not empty."),
    ],
)
def test_a_bad_body_is_a_422(
    client: TestClient, runtime: Runtime, setup: OrgSetup, body: dict[str, Any], message: str
) -> None:
    response = _post(client, setup, **body)
    assert response.status_code == 422
    assert response.json() == {"error": {"code": "invalid", "message": message}}
    assert _memories(runtime) == []


@sqlite_only
def test_a_body_that_is_not_json_is_a_422(client: TestClient, setup: OrgSetup) -> None:
    for suffix in ("", "/recall"):
        response = client.post(
            _path(setup, suffix),
            content=b"{nope",
            headers={
                "content-type": "application/json",
                "x-loadbay-key": setup.org.publishable_key,
            },
        )
        assert response.status_code == 422
        assert response.json()["error"]["message"] == "The request body must be JSON."


@sqlite_only
def test_remembering_needs_a_submitted_import_of_the_template_once(
    client: TestClient, runtime: Runtime, setup: OrgSetup, demo_org: DemoOrgFactory
) -> None:
    """The publishable key is public: only a submitted import may add one memory."""
    body = {"publishableKey": setup.org.publishable_key, "headers": HEADERS, "mapping": CONFIRMED}
    response = client.post(_path(setup), json=body)
    assert (response.status_code, response.json()["error"]["message"]) == (
        401,
        "Missing upload token.",
    )
    created = imports.create_import(runtime, setup.org, setup.template.id, "p.csv")
    auth = {"authorization": f"Bearer {created.upload_token}"}
    body["importId"] = created.import_id
    response = client.post(_path(setup), json=body, headers=auth)
    assert (response.status_code, response.json()["error"]["message"]) == (
        409,
        "Submit the import before remembering its mapping.",
    )
    imports.submit(runtime, created.import_id, created.upload_token, 0, 0)
    assert client.post(_path(setup), json=body, headers=auth).json()["uses"] == 1
    again = client.post(_path(setup), json=body, headers=auth)
    assert (again.status_code, again.json()["error"]["message"]) == (
        409,
        f"The mapping of import {created.import_id} was already remembered.",
    )
    wrong = {**auth, "authorization": "Bearer not-the-token"}
    assert client.post(_path(setup), json=body, headers=wrong).status_code == 401
    other = demo_org(runtime, schema=None)
    other_import, other_auth = _submitted(client, other)
    misplaced = {**body, "importId": other_import}
    response = client.post(_path(setup), json=misplaced, headers=other_auth)
    assert response.status_code == 404
    assert [m.uses for m in _memories(runtime)] == [1]


@sqlite_only
def test_a_refused_mapping_does_not_use_up_the_imports_claim(
    client: TestClient, setup: OrgSetup
) -> None:
    import_id, auth = _submitted(client, setup)
    body = {
        "publishableKey": setup.org.publishable_key,
        "headers": HEADERS,
        "mapping": {"email": "Not a header"},
        "importId": import_id,
    }
    assert client.post(_path(setup), json=body, headers=auth).status_code == 422
    body["mapping"] = CONFIRMED
    assert client.post(_path(setup), json=body, headers=auth).json()["uses"] == 1
