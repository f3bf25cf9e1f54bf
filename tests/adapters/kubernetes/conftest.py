import time
from collections.abc import Callable, Iterator

import pytest

from .standin import StandIn


@pytest.fixture
def api() -> Iterator[StandIn]:
    with StandIn(bookmark_every=0.05, tick=0.01) as standin:
        yield standin


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``check()`` holds (the stand-in's pods become ready on a background thread)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.01)
