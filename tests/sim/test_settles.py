"""The memory cluster's promise that lets the driver skip an observation (``MemoryCluster.observe_settles``):
once observed at ``now``, it reports nothing more at ``now`` until an effect is applied.

The oracles: the cluster itself, asked again at the end of every pump of every example scenario's runs (it
must have nothing to say), and the runs with the promise withdrawn (the driver then observes until empty).
"""

from __future__ import annotations

from typing import Any

import pytest

from ebbtide.adapters.driver import Driver
from ebbtide.adapters.memory import MemoryCluster
from ebbtide.sim.loop import Prepared, run_once
from ebbtide.sim.runner import derive_seed
from tests.sim.examples import scenarios


def runs(prepared: Prepared, n: int) -> list[dict[str, Any]]:
    return [run_once(prepared, i, derive_seed(11, i), True, True).to_dict() for i in range(n)]


def test_nothing_is_left_to_observe_when_a_pump_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    pumps: list[float] = []
    real = Driver.pump

    def checked(self: Driver, now: float) -> int:
        handled = real(self, now)
        assert self._settles
        left = self.adapter.observe(now)
        assert left == [], f"t={now}: {left!r} still to report"
        pumps.append(now)
        return handled

    monkeypatch.setattr(Driver, "pump", checked)
    for _, prepared in scenarios():
        runs(prepared, 4)
    assert len(pumps) > 1000


@pytest.mark.parametrize(("name", "prepared"), scenarios(), ids=[n for n, _ in scenarios()])
def test_runs_are_the_runs_without_the_promise(
    name: str, prepared: Prepared, monkeypatch: pytest.MonkeyPatch
) -> None:
    observed: list[int] = []
    real = MemoryCluster.observe

    def counting(self: MemoryCluster, now: float) -> Any:
        observed.append(1)
        return real(self, now)

    monkeypatch.setattr(MemoryCluster, "observe", counting)
    monkeypatch.setattr(MemoryCluster, "observe_settles", True)
    with_it, asked_with = runs(prepared, 4), len(observed)
    monkeypatch.setattr(MemoryCluster, "observe_settles", False)
    assert with_it == runs(prepared, 4), name
    assert asked_with < len(observed) - asked_with, name  # the promise saved observations


def test_a_cluster_that_observes_otherwise_promises_nothing() -> None:
    class Polled(MemoryCluster):
        def observe(self, now: float) -> Any:
            return super().observe(now)

    assert MemoryCluster().observe_settles and not Polled().observe_settles
