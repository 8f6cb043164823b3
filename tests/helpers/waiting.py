"""Waiting on a real scheduler: poll a condition, fail only after a generous bound."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

#: Seconds a job on a real scheduler may take: generous, the test machines are small and
#: busy with the other schedulers' tests. A bound, never a timed assertion.
TIMEOUT = 240


def wait_for(
    predicate: Callable[[], object], what: str, timeout: float = TIMEOUT, interval: float = 0.5
) -> None:
    """Call ``predicate`` every ``interval`` seconds until it is true; after ``timeout``
    seconds fail the test, saying what it was ``waiting for``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
