"""The host-page destination's own contract: its settings, and that no worker can deliver
it (only the page's acknowledgement does: tests/server/test_handoff.py)."""

from __future__ import annotations

from typing import Any

import pytest

import destinations
from destinations.base import DestinationContext
from destinations.errors import ConfigurationError, RetryableDeliveryError
from destinations.host_page import DEFAULT_MAX_ROWS, KIND, LIMIT_MAX_ROWS, WAITING, HostPage
from destinations.testing import sample_batch


def test_it_is_registered_as_a_relayed_kind() -> None:
    spec = destinations.spec("host-page")
    assert spec.kind == KIND == "host-page"
    assert spec.relayed is True
    assert not any(destinations.spec(k).relayed for k in destinations.kinds() if k != KIND)
    assert spec.json_schema()["properties"]["max_rows"]["default"] == DEFAULT_MAX_ROWS


def test_max_rows_defaults_and_is_kept() -> None:
    context = DestinationContext()
    made = destinations.create(KIND, {}, context)
    assert isinstance(made, HostPage)
    assert made.config.max_rows == DEFAULT_MAX_ROWS
    capped = destinations.validate(KIND, {"max_rows": 250}, context)
    assert isinstance(capped, HostPage)
    assert capped.config.max_rows == 250


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"max_rows": 0}, "from 1 to 100,000"),
        ({"max_rows": LIMIT_MAX_ROWS + 1}, "from 1 to 100,000"),
        ({"max_rows": "ten"}, '"max_rows" setting of a host-page destination must be an integer'),
        ({"url": "https://example.com"}, "Unknown setting 'url'"),
    ],
)
def test_bad_settings_say_what_to_fix(config: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        destinations.validate(KIND, config, DestinationContext())


def test_a_worker_never_delivers_it() -> None:
    destination = destinations.create(KIND, {"max_rows": 10}, DestinationContext())
    with pytest.raises(RetryableDeliveryError) as caught:
        destination.write(sample_batch(0))
    assert str(caught.value) == WAITING
    assert destination.finish(object()) is None  # type: ignore[arg-type]
