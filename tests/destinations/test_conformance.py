"""The shared conformance suite, over every registered kind (harnesses in conftest.py)."""

from __future__ import annotations

from destinations.testing import Conformance


class TestConformance(Conformance):
    pass
