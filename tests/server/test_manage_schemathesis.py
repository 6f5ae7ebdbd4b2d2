"""Schemathesis against the management API's own OpenAPI document: generated requests
(valid and not) for every operation, with a live secret key; no answer is a 500 and every
answer matches the document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from sqlalchemy import select

from server import db, imports, keys, uploads
from server.app import create_app
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, Receiver

EXAMPLES = 25
# Missing and wrong credentials are walked in test_manage.py (every request here carries
# the key); and a schema-valid request may still be refused with 422 by the domain (an
# opaque cursor this API never gave out, a Table Schema the engine cannot enforce).
EXCLUDED = [checks.ignored_auth, checks.positive_data_acceptance]


@pytest.fixture
def store() -> str:
    return "sqlite"


@pytest.fixture
def org_ids(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory, receiver: Receiver
) -> Any:
    """A secret key, and real ids (template, import, delivery) for the path parameters."""
    setup = demo_org(runtime, webhook_urls=[receiver.url])
    created = imports.create_import(runtime, setup.org, setup.template.id, "contacts.csv")
    body = batch_factory("Full name,Email\nAda Lovelace,ada@example.com\n")
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    imports.submit(runtime, created.import_id, created.upload_token, 1, 1)
    with runtime.sessions() as session:
        delivery_id = session.scalar(select(db.Delivery.id))
    secret = keys.create_key(runtime, setup.org.id, "schemathesis").secret
    return secret, {
        "/api/v1/templates/": setup.template.id,
        "/api/v1/destinations/": setup.destination.id,
        "/api/v1/imports/": created.import_id,
        "/api/v1/deliveries/": str(delivery_id),
    }


def test_every_operation_answers_within_its_schema(runtime: Runtime, org_ids: Any) -> None:
    # Driven by hand rather than through schemathesis.pytest (whose fixture loader does
    # not run under this pytest): one Hypothesis run per operation. Half the cases name a
    # real template, destination, import or delivery, so answers other than 404 are met.
    secret, ids = org_ids
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(runtime))
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {o.label for o in operations}
    assert len(operations) >= 22, labels  # every management operation (the document aside)
    headers = {"authorization": f"Bearer {secret}"}
    for operation in operations:
        real = next((v for k, v in ids.items() if operation.path.startswith(k)), None)

        def named(drawn: tuple[Any, bool], real: str | None = real) -> Any:
            case, use_real = drawn
            if real is not None and use_real and case.path_parameters:
                case.path_parameters = {**case.path_parameters, "id": real}
            return case

        strategy = st.tuples(operation.as_strategy(), st.booleans()).map(named)

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)

        run()
