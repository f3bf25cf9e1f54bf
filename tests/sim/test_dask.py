"""The Dask executor: the same results as one process, streamed, and no run lost with a worker.

Each test starts its own LocalCluster on this machine (threads in this process, or worker processes
listening on 127.0.0.1 only) and closes it.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from ebbtide.sim.dask_executor import DaskExecutor, DaskUnavailable
from ebbtide.sim.outcome import Aggregator
from ebbtide.sim.runner import aggregate, load_scenario, simulate
from ebbtide.sim.scenario import Scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


@pytest.fixture(scope="module")
def failing() -> Scenario:
    return load_scenario(EXAMPLES / "fails-at-40.yaml")


@pytest.fixture(scope="module")
def flaky() -> Scenario:
    return load_scenario(EXAMPLES / "flaky-metric.yaml")


def test_results_identical_to_one_process(failing: Scenario, flaky: Scenario) -> None:
    """Every run (timeline included) and every aggregate, for two scenarios through one cluster."""
    with DaskExecutor(workers=2, processes=False) as executor:
        assert executor.workers == 2
        for scenario in (failing, flaky):
            alone = [r.to_dict() for r in simulate(scenario, runs=30, seed=4, keep_timelines=True)]
            spread = simulate(scenario, runs=30, seed=4, keep_timelines=True, executor=executor, chunk_size=4)
            assert [r.to_dict() for r in spread] == alone
            one = aggregate(simulate(scenario, runs=60, seed=9, start=5))
            two = aggregate(simulate(scenario, runs=60, seed=9, start=5, executor=executor, chunk_size=7))
            assert two.to_json() == one.to_json()


def test_results_are_streamed_in_a_bounded_window(flaky: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks are handed on in run order while later ones run, never more than the window ahead."""
    import ebbtide.sim.chunks as chunks

    started: list[int] = []  # the runs started on the (in-process) workers, in any order
    real = chunks.run_once

    def spy(prepared, index, *args):  # type: ignore[no-untyped-def]
        started.append(index)
        return real(prepared, index, *args)

    monkeypatch.setattr(chunks, "run_once", spy)
    window, size = 3, 2
    ahead: list[int] = []
    with DaskExecutor(workers=2, processes=False, window=window) as executor:
        seen = []
        for result in simulate(flaky, runs=40, seed=1, executor=executor, chunk_size=size):
            seen.append(result.index)
            ahead.append(max(started) - result.index)  # how far the cluster is ahead of the consumer
    assert seen == list(range(40)) and sorted(started) == list(range(40))
    assert max(ahead) < (window + 1) * size  # bounded: the window, and the chunk being handed on
    assert max(ahead[:10]) >= size  # streamed: later chunks ran while the first were handed on


def hold_runs_from(first: int, gate: str) -> None:
    """Run on each worker process: a run of index ``first`` or later waits until the file ``gate`` exists
    (two minutes at most), so chunks after the first stay running until the test has killed a worker."""
    import os
    import time

    import ebbtide.sim.chunks as chunks

    real = chunks.run_once

    def held(prepared, index, *args):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 120
        while index >= first and not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.01)
        return real(prepared, index, *args)

    chunks.run_once = held


def test_a_worker_lost_mid_sweep_reruns_its_runs(failing: Scenario, tmp_path: Path) -> None:
    """Kill -9 a worker process while it runs chunks of the sweep: they run again, nothing is lost."""
    runs, seed, size = 160, 3, 20
    expected = list(simulate(failing, runs=runs, seed=seed))
    gate = tmp_path / "go"
    with DaskExecutor(workers=2, window=4) as executor:
        client = executor.client
        # the chunks after the first wait for the gate: a worker is certainly busy with one when it is killed
        # (without this, on a loaded machine the chunks sometimes all finished before the kill)
        client.run(hold_runs_from, size, str(gate))
        agg = Aggregator()
        got = []
        lost: list[str] = []
        try:
            for result in simulate(failing, runs=runs, seed=seed, executor=executor, chunk_size=size):
                agg.add(result)
                got.append(result.outcome)
                if result.index == size - 1:  # the first chunk is in: the others are held running
                    busy = busy_workers(client)
                    victim = next(iter(busy))
                    pid = client.run(os.getpid, workers=[victim])[victim]
                    os.kill(pid, signal.SIGKILL)
                    lost = [str(k) for k in busy[victim]]
                    gate.touch()
        finally:
            gate.touch()
        assert lost and all(k.startswith("ebbtide-") for k in lost)  # it died holding chunks of the sweep
        # the scheduler took the chunk back from the dead worker and ran it again on another one
        story = client.story(lost[0])
        assert sum(1 for t in story if t[0] == "scheduler" and t[3] == "processing") >= 2
    assert got == [r.outcome for r in expected]
    assert agg.summary().to_json() == aggregate(expected).to_json()


def busy_workers(client: Any) -> dict[str, Any]:
    """The workers the scheduler has given chunks to (waiting, on a loaded machine, for it to say so)."""
    deadline = time.monotonic() + 60
    while not (busy := {w: keys for w, keys in client.processing().items() if keys}):
        assert time.monotonic() < deadline, "no worker was given a held chunk"
        time.sleep(0.05)
    return busy


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    with (
        pytest.raises(DaskUnavailable, match=re.escape("tcp://127.0.0.1:9")),
        DaskExecutor("tcp://127.0.0.1:9", timeout=1),
    ):
        pass
