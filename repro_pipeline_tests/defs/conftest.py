"""Fixtures of the Dagster layer's tests."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance on temporary SQLite storage."""
    with dg.instance_for_test() as test_instance:
        yield test_instance
