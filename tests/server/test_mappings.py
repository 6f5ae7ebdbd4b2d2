"""Remembered column mappings: storage on both stores, the HTTP API, the migration."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text, update
from starlette.testclient import TestClient

from pipeline.matching import header_signature, normalise
from server import db, imports, mappings, retention
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
SWAPPED = {"full_name": "E-mail", "email": "Name"}  # what the poisoning scripts taught
ENOUGH = 3  # server/mappings.py PROPOSE_AFTER, checked below
sqlite_only = pytest.mark.parametrize("store", ["sqlite"])


@pytest.fixture
def setup(runtime: Runtime, demo_org: DemoOrgFactory) -> OrgSetup:
    return demo_org(runtime, origins=[HOST])


def _memories(rt: Runtime) -> list[db.MappingMemory]:
    with rt.sessions() as session:
        return list(session.scalars(select(db.MappingMemory).order_by(db.MappingMemory.id)))


def _teach(
    rt: Runtime,
    template_id: str,
    headers: Sequence[str],
    mapping: dict[str, str],
    addresses: int = ENOUGH,
    first: int = 1,
) -> mappings.Remembered:
    """The mapping confirmed from `addresses` distinct addresses (198.51.100.<first>...)."""
    kept = None
    for n in range(first, first + addresses):
        kept = mappings.remember(rt, template_id, headers, mapping, f"198.51.100.{n}")
    assert kept is not None
    return kept


# --- remember() and recall() on SQLite and PostgreSQL ------------------------------------------


def test_a_mapping_confirmed_from_enough_addresses_is_recalled(
    runtime: Runtime, setup: OrgSetup
) -> None:
    template_id = setup.template.id
    assert mappings.recall(runtime, template_id, HEADERS) is None
    kept = _teach(runtime, template_id, HEADERS, CONFIRMED)
    assert kept == mappings.Remembered(addresses=3, proposed=True)
    assert mappings.recall(runtime, template_id, HEADERS) == REMEMBERED
    # Headers that normalise alike are the same layout; the answer is in the request's labels.
    spelled = ["NAME ", "email", "tel.", "LAND", "betrag"]
    assert mappings.recall(runtime, template_id, spelled) == {
        "NAME ": "full_name",
        "email": "email",
        "tel.": "phone",
        "betrag": "amount",
    }


def test_a_memory_is_proposed_only_after_three_distinct_addresses(
    runtime: Runtime, setup: OrgSetup
) -> None:
    """Issue #15: three scripted imports with the public key taught the next user a mapping.
    Imports from one address count once, however many there are."""
    assert mappings.PROPOSE_AFTER == 3
    template_id = setup.template.id
    for _ in range(5):  # one machine, five submitted imports
        kept = mappings.remember(runtime, template_id, HEADERS, CONFIRMED, "203.0.113.9")
        assert kept == mappings.Remembered(addresses=1, proposed=False)
    assert mappings.recall(runtime, template_id, HEADERS) is None
    kept = mappings.remember(runtime, template_id, HEADERS, CONFIRMED, "2001:db8::1")
    assert kept == mappings.Remembered(addresses=2, proposed=False)
    assert mappings.recall(runtime, template_id, HEADERS) is None
    kept = mappings.remember(runtime, template_id, HEADERS, CONFIRMED, "192.0.2.44")
    assert kept == mappings.Remembered(addresses=3, proposed=True)
    assert mappings.recall(runtime, template_id, HEADERS) == REMEMBERED
    assert len(_memories(runtime)) == 3  # one row per address, not per import


def test_a_disagreeing_confirmation_starts_a_competing_count(
    runtime: Runtime, setup: OrgSetup
) -> None:
    """A swapped mapping (email <-> name) does not add to the stored one, nor erase it: it
    counts on its own, and is proposed only if more addresses confirm it than the other."""
    template_id = setup.template.id
    _teach(runtime, template_id, HEADERS, CONFIRMED, addresses=4)
    # Three addresses teach the swap: a memory of its own, outnumbered.
    assert _teach(runtime, template_id, HEADERS, SWAPPED, first=50).addresses == 3
    assert mappings.recall(runtime, template_id, HEADERS) == REMEMBERED
    # An address that confirmed one mapping may confirm the other too: each counts it once.
    assert (
        mappings.remember(runtime, template_id, HEADERS, CONFIRMED, "198.51.100.50").addresses == 5
    )
    # Only when the other mapping has more addresses (or as many, confirmed later) does it win:
    # what most users confirmed is what is proposed.
    _teach(runtime, template_id, HEADERS, SWAPPED, addresses=3, first=60)
    assert mappings.recall(runtime, template_id, HEADERS) == {
        "E-mail": "full_name",
        "Name": "email",
    }


def test_what_is_stored_is_keyed_digests_never_labels_or_addresses(
    runtime: Runtime, setup: OrgSetup
) -> None:
    """Issue #15: for a file with no header row the "headers" are its first row, cells. None
    of them, mapped or not, nor the confirming address, may be stored readable or as an
    unkeyed digest (a dictionary of likely values would reverse it)."""
    cells = ["Amélie Poulain", "amelie@example.fr", "+33 1 42 68 53 00", "FR", "Pelargonium"]
    confirmed = {"full_name": cells[0], "email": cells[1], "phone": cells[2]}
    mappings.remember(runtime, setup.template.id, cells, confirmed, "203.0.113.77")
    with runtime.sessions() as session:
        dump = repr(session.execute(text("SELECT * FROM mapping_memories")).all())
    unkeyed = {
        hashlib.sha256(text_.encode()).hexdigest()[:16]
        for cell in [*cells, "203.0.113.77"]
        for text_ in (cell, normalise(cell))
    } | {header_signature(cells)[:16]}
    for cell in [*cells, "203.0.113.77"]:
        for spelling in {cell, cell.lower(), normalise(cell), json.dumps(cell)[1:-1]}:
            assert spelling not in dump
    assert not any(digest in dump for digest in unkeyed)
    [memory] = _memories(runtime)
    assert memory.signature != header_signature(cells)
    assert sorted(memory.mapping.values()) == ["email", "full_name", "phone"]
    assert not set(memory.mapping) & {*cells, *map(normalise, cells)}
    assert len(memory.header_digests) == 5


@pytest.mark.parametrize(
    ("hosts", "counted"),
    [
        (["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2::abcd"], 1),  # one /64
        (["2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:1:4::1"], 3),
        (["192.0.2.1", "::ffff:192.0.2.1", "192.0.2.1"], 1),  # IPv4, also as mapped IPv6
    ],
    ids=["one-ipv6-network", "three-ipv6-networks", "ipv4-mapped"],
)
@sqlite_only
def test_an_ipv6_network_counts_as_one_address(
    runtime: Runtime, setup: OrgSetup, hosts: list[str], counted: int
) -> None:
    """One machine has a whole /64 to hop across: its addresses count once."""
    for host in hosts:
        kept = mappings.remember(runtime, setup.template.id, HEADERS, CONFIRMED, host)
    assert kept.addresses == counted


def test_digests_are_keyed_per_organisation_and_template(
    runtime: Runtime, setup: OrgSetup, demo_org: DemoOrgFactory
) -> None:
    other = demo_org(runtime, origins=[HOST])
    mappings.remember(runtime, setup.template.id, HEADERS, CONFIRMED, "198.51.100.1")
    mappings.remember(runtime, other.template.id, HEADERS, CONFIRMED, "198.51.100.1")
    ours, theirs = _memories(runtime)
    assert ours.signature != theirs.signature
    assert ours.address != theirs.address
    assert not set(ours.header_digests) & set(theirs.header_digests)
    assert not set(ours.mapping) & set(theirs.mapping)


def test_recall_answers_only_labels_the_request_holds(runtime: Runtime, setup: OrgSetup) -> None:
    _teach(runtime, setup.template.id, HEADERS, CONFIRMED)
    asked = ["name", "E-mail", "Tel", "X", "Y"]  # 3 of 5 shared: not similar enough
    assert mappings.recall(runtime, setup.template.id, asked) is None
    asked = ["name", "E-MAIL", "Tel", "Land"]  # 4 of 5: similar; no Betrag asked, none answered
    answer = mappings.recall(runtime, setup.template.id, asked)
    assert answer == {"name": "full_name", "E-MAIL": "email", "Tel": "phone"}
    assert set(answer) <= set(asked)


def test_confirming_again_refreshes_the_memory(runtime: Runtime, setup: OrgSetup) -> None:
    """Every row of a memory carries its last confirmation, by whichever address."""
    template_id = setup.template.id
    _teach(runtime, template_id, HEADERS, CONFIRMED)
    earlier = db.utcnow() - dt.timedelta(days=3)
    with runtime.sessions.begin() as session:
        session.execute(update(db.MappingMemory).values(confirmed_at=earlier))
    mappings.remember(runtime, template_id, HEADERS, CONFIRMED, "198.51.100.2")  # counted already
    after = {m.confirmed_at for m in _memories(runtime)}
    assert len(after) == 1 and after.pop() > earlier + dt.timedelta(days=2)


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
    _teach(runtime, setup.template.id, HEADERS, CONFIRMED)
    assert mappings.recall(runtime, setup.template.id, headers) == expected


def test_the_most_confirmed_similar_memory_wins(runtime: Runtime, setup: OrgSetup) -> None:
    template_id = setup.template.id
    once = ["Name", "E-mail", "Tel", "Land", "Betrag", "A"]
    twice = ["Name", "E-mail", "Tel", "Land", "Betrag", "B"]
    _teach(runtime, template_id, once, {"full_name": "Name"})
    _teach(runtime, template_id, twice, {"email": "Name"}, addresses=4)
    # Both share 5 of the 7 headers of this file (under 80%: nothing)...
    assert mappings.recall(runtime, template_id, [*HEADERS, "C", "D"]) is None
    # ...and 5 of 6 with this one, where the memory with more addresses wins...
    assert mappings.recall(runtime, template_id, HEADERS) == {"Name": "email"}
    # ...then, when both have as many, the one confirmed last.
    _teach(runtime, template_id, once, {"full_name": "Name"}, addresses=1, first=9)
    assert mappings.recall(runtime, template_id, HEADERS) == {"Name": "full_name"}
    # A memory of exactly this layout comes before any similar one, even with fewer addresses.
    _teach(runtime, template_id, HEADERS, {"phone": "Tel"})
    assert mappings.recall(runtime, template_id, HEADERS) == {"Tel": "phone"}


def test_memories_belong_to_their_template(
    runtime: Runtime, setup: OrgSetup, demo_org: DemoOrgFactory
) -> None:
    other = demo_org(runtime, origins=[HOST])
    _teach(runtime, setup.template.id, HEADERS, CONFIRMED)
    assert mappings.recall(runtime, other.template.id, HEADERS) is None
    _teach(runtime, other.template.id, HEADERS, {"email": "Name"})
    assert mappings.recall(runtime, setup.template.id, HEADERS) == REMEMBERED
    assert mappings.recall(runtime, other.template.id, HEADERS) == {"Name": "email"}


def test_the_least_recently_confirmed_layouts_are_forgotten(
    runtime: Runtime, setup: OrgSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mappings, "MEMORIES_PER_TEMPLATE", 3)
    layouts = [[f"Column {i}", "Name"] for i in range(4)]
    name = {"full_name": "Name"}
    for headers, addresses in zip(layouts[:3], (1, 2, 4), strict=True):
        _teach(runtime, setup.template.id, headers, name, addresses)
    _teach(runtime, setup.template.id, layouts[0], name, addresses=1)  # again: refreshed
    _teach(runtime, setup.template.id, layouts[3], name, addresses=3)  # a fourth: one goes
    counts: dict[str, int] = {}
    for memory in _memories(runtime):
        counts[memory.signature] = counts.get(memory.signature, 0) + 1
    assert sorted(counts.values()) == [1, 3, 4]  # layout 1 (2 addresses) was forgotten


def test_concurrent_confirmations_are_all_counted(runtime: Runtime, setup: OrgSetup) -> None:
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def confirm(n: int) -> None:
        barrier.wait()
        try:  # six addresses, two of them twice at the same moment
            mappings.remember(runtime, setup.template.id, HEADERS, CONFIRMED, f"10.0.0.{n % 6}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=confirm, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert len(_memories(runtime)) == 6
    assert (
        mappings.remember(runtime, setup.template.id, HEADERS, CONFIRMED, "10.0.0.1").addresses == 6
    )


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
        mappings.remember(runtime, setup.template.id, headers, mapping, "198.51.100.1")
    assert caught.value.message == message
    assert _memories(runtime) == []


@sqlite_only
def test_an_unknown_template_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="^Template tpl_nope does not exist.$"):
        mappings.remember(runtime, "tpl_nope", HEADERS, CONFIRMED, "198.51.100.1")


# --- the migrations ----------------------------------------------------------------------------


@pytest.fixture
def database_at(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Any]]:
    """(url, migrate_to): an empty database of this store; migrate_to(revision) brings it
    there and, on the first call, adds an organisation and a template."""
    if store == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        schema = None
    else:
        pg = request.getfixturevalue("postgres_database")
        schema = f"migrate_{secrets.token_hex(4)}"
        with pg.connect() as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{pg.url}?options=-csearch_path%3D{schema}"
    yield url, schema
    if schema is not None:
        with request.getfixturevalue("postgres_database").connect() as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _old_store(url: str, revision: str, runtime_factory: RuntimeFactory) -> None:
    """A store at `revision` holding an organisation (with a real wrapped key) and a template."""
    db.migrate(url, revision)
    vault = runtime_factory().vault  # the same master key as the runtime the test makes later
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organisations (id, name, publishable_key, allowed_origins,"
                " wrapped_key, created_at) VALUES ('org_old', 'Old', 'pk_old', '[]', :k, :t)"
            ),
            {"k": vault.new_org_key("org_old"), "t": db.utcnow()},
        )
        conn.execute(
            text(
                "INSERT INTO templates (id, org_id, name, schema, created_at)"
                " VALUES ('tpl_old', 'org_old', 'old', :s, :t)"
            ),
            {"s": '{"fields": [{"name": "email"}]}', "t": db.utcnow()},
        )
    engine.dispose()


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_the_migrations_bring_an_old_store_to_the_keyed_table(
    database_at: tuple[str, Any], runtime_factory: RuntimeFactory
) -> None:
    url, _ = database_at
    _old_store(url, "0001", runtime_factory)
    engine = create_engine(url)
    try:
        assert "mapping_memories" not in inspect(engine).get_table_names()
        rt = runtime_factory(database_url=url)  # migrates to the head
        inspector = inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("mapping_memories")}
        assert columns == {
            "id",
            "template_id",
            "signature",
            "variant",
            "address",
            "header_digests",
            "mapping",
            "confirmed_at",
        }
        uniques = inspector.get_unique_constraints("mapping_memories")
        assert ("template_id", "signature", "variant", "address") in {
            tuple(u["column_names"]) for u in uniques
        }
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            assert version == _head()
    finally:
        engine.dispose()
    _teach(rt, "tpl_old", ["E-mail"], {"email": "E-mail"})
    assert mappings.recall(rt, "tpl_old", ["email"]) == {"email": "email"}


def test_migration_0007_drops_the_readable_memories(
    database_at: tuple[str, Any], runtime_factory: RuntimeFactory
) -> None:
    """Issue #15: rows written before 0007 hold labels (cell values, for a file without a
    header row) in plain text; the migration deletes them, and on SQLite zeroes their pages."""
    url, _ = database_at
    _old_store(url, "0006", runtime_factory)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO mapping_memories (template_id, signature, header_digests,"
                    " mapping, uses, updated_at) VALUES ('tpl_old', :s, '[]', :m, 3, :t)"
                ),
                {
                    "s": "0" * 64,
                    "m": '{"PLAINTEXT-amelie@example.fr": "email"}',
                    "t": db.utcnow(),
                },
            )
        runtime_factory(database_url=url)  # migrates to the head
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM mapping_memories")).scalar() == 0
    finally:
        engine.dispose()
    if url.startswith("sqlite:///"):
        assert b"PLAINTEXT-amelie" not in Path(url.removeprefix("sqlite:///")).read_bytes()


def test_migration_0007_downgrades_to_the_old_table(
    database_at: tuple[str, Any], runtime_factory: RuntimeFactory
) -> None:
    url, _ = database_at
    _old_store(url, "0007", runtime_factory)
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    from alembic import command

    command.downgrade(config, "0006")
    engine = create_engine(url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("mapping_memories")}
        assert {"uses", "updated_at"} <= columns and "address" not in columns
    finally:
        engine.dispose()
    db.migrate(url)


# --- HTTP --------------------------------------------------------------------------------------


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url=BASE, client=("198.51.100.1", 50000)) as made:
        yield made


def _from(client: TestClient, address: str) -> TestClient:
    """Another client of the same app, connecting from `address`."""
    return TestClient(client.app, base_url=BASE, client=(address, 50000))


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


def _recall(client: TestClient, setup: OrgSetup, headers: list[str]) -> Any:
    return client.post(
        _path(setup, "/recall"),
        json={"publishableKey": setup.org.publishable_key, "headers": headers},
        headers={"origin": BASE},
    )


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_remember_and_recall_over_http(client: TestClient, setup: OrgSetup) -> None:
    assert _recall(client, setup, HEADERS).json()["mapping"] is None
    for n, address in enumerate(["198.51.100.1", "2001:db8::7", "192.0.2.1"], start=1):
        response = _post(_from(client, address), setup)
        assert response.status_code == 200, response.text
        assert response.json() == {"addresses": n, "proposed": n == 3}

    similar = [*HEADERS, "Notes"]
    response = _recall(client, setup, similar)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"mapping": REMEMBERED}


@sqlite_only
def test_scripted_imports_from_one_address_teach_nothing(
    client: TestClient, runtime: Runtime, setup: OrgSetup
) -> None:
    """Issue #15: three scripted imports with the public key taught a swapped mapping (email
    <-> name) that the next user was offered. From one address they count once."""
    answers = [_post(client, setup, mapping=SWAPPED) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert _recall(_from(client, "203.0.113.50"), setup, HEADERS).json()["mapping"] is None
    assert answers[-1].json() == {"addresses": 1, "proposed": False}
    # Three real users who confirm the right mapping are what the next user is offered.
    for address in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]:
        _post(_from(client, address), setup)
    assert _recall(client, setup, HEADERS).json()["mapping"] == REMEMBERED


@sqlite_only
def test_no_label_or_address_is_stored_readable(
    client: TestClient, runtime: Runtime, setup: OrgSetup
) -> None:
    """Issue #15: for a file without a header row the "headers" are its first row: cells.
    None of them, mapped or not, nor the address, is stored readable or unkeyed-digested."""
    cells = ["Amélie Poulain", "amelie@example.fr", "+33 1 42 68 53 00", "FR", "Pelargonium"]
    confirmed = {"full_name": cells[0], "email": cells[1], "phone": cells[2]}
    response = _post(_from(client, "203.0.113.77"), setup, headers=cells, mapping=confirmed)
    assert response.status_code == 200, response.text
    with runtime.sessions() as session:
        rows = session.execute(text("SELECT * FROM mapping_memories")).all()
    dump = " ".join(str(value) for row in rows for value in row)
    for value in [*cells, "203.0.113.77"]:
        for spelling in {value, value.lower(), normalise(value), json.dumps(value)[1:-1]}:
            assert spelling not in dump
    for value in [*cells, "203.0.113.77"]:
        for spelling in {value, normalise(value)}:  # what a dictionary attack would try
            assert hashlib.sha256(spelling.encode()).hexdigest()[:16] not in dump
    assert header_signature(cells)[:16] not in dump


@sqlite_only
def test_retention_deletes_memories_not_confirmed_within_its_period(
    client: TestClient, runtime: Runtime, setup: OrgSetup
) -> None:
    """Issue #15: memories outlived the imports that taught them, purged or not. The hourly
    purge deletes a memory nobody confirmed for `retention_days`."""
    for address in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]:
        _post(_from(client, address), setup)
    retention.purge_expired(runtime)  # confirmed today: kept
    assert _recall(client, setup, HEADERS).json()["mapping"] == REMEMBERED
    days = runtime.settings.retention_days
    retention.purge_expired(runtime, db.utcnow() + dt.timedelta(days=days - 1))
    assert _recall(client, setup, HEADERS).json()["mapping"] == REMEMBERED
    retention.purge_expired(runtime, db.utcnow() + dt.timedelta(days=days, seconds=1))
    assert _recall(client, setup, HEADERS).json()["mapping"] is None
    assert _memories(runtime) == []


def test_confirming_keeps_a_memory_past_the_first_retention_period(
    runtime: Runtime, setup: OrgSetup
) -> None:
    template_id = setup.template.id
    days = runtime.settings.retention_days
    old_layout = ["Vorname", "Mail"]
    _teach(runtime, template_id, old_layout, {"full_name": "Vorname"})
    _teach(runtime, template_id, HEADERS, CONFIRMED)
    with runtime.sessions.begin() as session:
        session.execute(
            update(db.MappingMemory).values(
                confirmed_at=db.utcnow() - dt.timedelta(days=days, seconds=1)
            )
        )
    mappings.remember(runtime, template_id, HEADERS, CONFIRMED, "198.51.100.1")  # again
    retention.purge_expired(runtime)
    assert mappings.recall(runtime, template_id, old_layout) is None
    assert mappings.recall(runtime, template_id, HEADERS) == REMEMBERED
    assert len(_memories(runtime)) == 3


@sqlite_only
def test_the_old_lookup_by_signature_is_gone(client: TestClient, setup: OrgSetup) -> None:
    """An unkeyed signature cannot be answered with labels the request does not hold (and
    would let anyone test guesses against it)."""
    _post(client, setup)
    response = client.get(
        _path(setup),
        params={"signature": header_signature(HEADERS), "key": setup.org.publishable_key},
    )
    assert response.status_code == 405


@sqlite_only
def test_the_key_may_come_as_a_header_a_query_or_in_the_body(
    client: TestClient, setup: OrgSetup
) -> None:
    pk = setup.org.publishable_key
    for params, headers in [({"key": pk}, {}), ({}, {"x-loadbay-key": pk})]:
        import_id, auth = _submitted(client, setup)
        body = {"headers": HEADERS, "mapping": CONFIRMED, "importId": import_id}
        response = client.post(_path(setup), params=params, json=body, headers={**headers, **auth})
        assert response.status_code == 200, response.text
        response = client.post(
            _path(setup, "/recall"), params=params, json={"headers": HEADERS}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"mapping": None}  # one address so far: not proposed


@sqlite_only
@pytest.mark.parametrize("method", ["post", "recall"])
def test_an_unknown_key_or_another_organisations_template_is_a_404(
    client: TestClient, runtime: Runtime, setup: OrgSetup, demo_org: DemoOrgFactory, method: str
) -> None:
    other = demo_org(runtime, origins=[HOST])
    cases = [
        ("pk_nope", setup, "Unknown publishable key. Check the key in your embed code."),
        (setup.org.publishable_key, other, f"Template {other.template.id} does not exist."),
    ]
    for key, target, message in cases:
        suffix = "/recall" if method == "recall" else ""
        body = {"publishableKey": key, "headers": HEADERS, "mapping": CONFIRMED}
        response = client.post(_path(target, suffix), json=body)
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "not-found", "message": message}}
    assert _memories(runtime) == []


@sqlite_only
@pytest.mark.parametrize("method", ["post", "recall"])
def test_calls_from_another_origin_are_forbidden(
    client: TestClient, runtime: Runtime, setup: OrgSetup, method: str
) -> None:
    foreign = {"origin": HOST, "x-loadbay-key": setup.org.publishable_key}
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
    assert client.post(_path(setup), json=body, headers=auth).json()["addresses"] == 1
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
    assert len(_memories(runtime)) == 1


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
    assert client.post(_path(setup), json=body, headers=auth).json()["addresses"] == 1


def test_a_memory_is_kept_for_its_templates_retention_not_the_operators(
    runtime: Runtime, demo_org: DemoOrgFactory
) -> None:
    """A template that keeps its imports 3 days (the operator's default is longer) forgets
    its mapping memories after 3 days; another organisation's default (10 days) rules its
    templates without their own; the operator's rules the rest."""
    from tests.conftest import CONTACTS_SCHEMA

    short = json.loads(json.dumps(CONTACTS_SCHEMA))
    short.setdefault("x-loadbay", {})["retentionDays"] = 3
    three = demo_org(runtime, schema=short).template.id
    ten_org = demo_org(runtime)
    with runtime.sessions.begin() as session:
        session.get(db.Organisation, ten_org.org.id).retention_days = 10  # type: ignore[union-attr]
    ten = ten_org.template.id
    operator = demo_org(runtime).template.id
    assert runtime.settings.retention_days > 10
    for template_id in (three, ten, operator):
        _teach(runtime, template_id, HEADERS, CONFIRMED)

    def remembered() -> list[bool]:
        return [mappings.recall(runtime, t, HEADERS) is not None for t in (three, ten, operator)]

    now = db.utcnow()
    retention.purge_expired(runtime, now + dt.timedelta(days=2))
    assert remembered() == [True, True, True]
    retention.purge_expired(runtime, now + dt.timedelta(days=3, seconds=1))
    assert remembered() == [False, True, True]
    retention.purge_expired(runtime, now + dt.timedelta(days=10, seconds=1))
    assert remembered() == [False, False, True]
    days = runtime.settings.retention_days
    retention.purge_expired(runtime, now + dt.timedelta(days=days, seconds=1))
    assert remembered() == [False, False, False]
