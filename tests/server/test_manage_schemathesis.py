"""Schemathesis against the management API's own OpenAPI document: generated requests
(valid and not) for every operation, with a live secret key; no answer is a 500 and every
answer matches the document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from server import keys
from server.app import create_app
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import DemoOrgFactory

EXAMPLES = 25
# Missing and wrong credentials are walked in test_manage.py (every request here carries
# the key); and a schema-valid request may still be refused with 422 by the domain (an
# opaque cursor this API never gave out, a Table Schema the engine cannot enforce).
EXCLUDED = [checks.ignored_auth, checks.positive_data_acceptance]


@pytest.fixture
def store() -> str:
    return "sqlite"


@pytest.fixture
def secret(runtime: Runtime, demo_org: DemoOrgFactory) -> str:
    org = demo_org(runtime).org
    return keys.create_key(runtime, org.id, "schemathesis").secret


def test_every_operation_answers_within_its_schema(runtime: Runtime, secret: str) -> None:
    # Driven by hand rather than through schemathesis.pytest (whose fixture loader does
    # not run under this pytest): one Hypothesis run per operation.
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(runtime))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16  # every management operation (the document may be left out)
    headers = {"authorization": f"Bearer {secret}"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)

        run()
