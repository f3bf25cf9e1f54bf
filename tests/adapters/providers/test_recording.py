"""Recordings: the reading rules, located errors, and the RecordingProvider wrapping real providers."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebbtide.adapters.driver import Driver
from ebbtide.adapters.memory import ClusterConfig, MemoryCluster
from ebbtide.adapters.providers import PrometheusProvider
from ebbtide.adapters.providers.recording import (
    FORMAT,
    RecordingError,
    RecordingProvider,
    parse_recording,
)
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.engine import initial_state
from ebbtide.core.events import Deploy, Measurement
from ebbtide.core.plan import MetricPlan
from tests.adapters.providers.conftest import PromServer, start_of
from tests.adapters.providers.test_dispatch import SIGNALS, canary, drive


def lines(*docs: dict[str, object]) -> str:
    return "\n".join(json.dumps(d) for d in docs) + "\n"


def start(name: str = "m", condition: str | None = "result < 1") -> StartMeasurement:
    plan = MetricPlan(name=name, success_condition=condition, provider={"prometheus": {"query": "q"}})
    return StartMeasurement(verification="v1", template="t", metric=plan, revision="r2", stable="r1")


TEXT = lines(
    {"recording": FORMAT, "start": 1000, "end": 1300},
    {"t": 1060, "metric": "m", "value": 0.1},
    {"t": 1120, "metric": "m", "error": "timeout"},
    {"t": 1180, "metric": "m", "value": None},
    {"t": 1240, "metric": "m", "value": 0.4},
    {"t": 1060, "metric": "m", "role": "stable", "value": 0.9},
)


@pytest.mark.parametrize(
    ("now", "value", "error"),
    [
        (0, None, None),  # before the first sample: no data
        (59.9, None, None),
        (60, 0.1, None),  # a sample's own time
        (119, 0.1, None),  # between samples: the last at or before
        (120, None, "timeout"),  # a recorded error
        (200, None, None),  # a recorded null: no data
        (250, 0.4, None),
        (300, 0.4, None),  # the header's end
        (300.5, None, None),  # past the end: no data
    ],
)
def test_the_answer_at_a_run_time_is_the_last_sample_at_or_before_it(
    now: float, value: float | None, error: str | None
) -> None:
    answer = parse_recording(TEXT).answer(start(), now)
    assert answer == Measurement(verification="v1", metric="m", value=value, error=error)


def test_roles_offsets_vectors_and_unknown_metrics() -> None:
    rec = parse_recording(TEXT)
    assert rec.answer(start(), 60, role="stable") == Measurement(verification="v1", metric="m", value=0.9)
    assert rec.only("m", offset=180).answer(start(), 60) == Measurement(
        verification="v1", metric="m", value=0.4
    )
    assert rec.answer(start(condition="result[0] < 1"), 60) == Measurement(
        verification="v1", metric="m", value=[0.1]
    )
    assert rec.answer(start(), 60, vector=False) == Measurement(verification="v1", metric="m", value=0.1)
    assert rec.answer(start("other"), 60) is None


@given(
    st.lists(st.integers(0, 10_000), min_size=1, max_size=30, unique=True),
    st.integers(-100, 10_100),
)
def test_any_time_reads_the_latest_earlier_sample(times: list[int], now: int) -> None:
    """Oracle: a linear scan for the latest sample time at or before ``now`` (the value is its time)."""
    text = lines(*({"t": t, "metric": "m", "value": t} for t in times))
    earlier = [t for t in times if t <= now]
    expected = max(earlier) if earlier and now <= max(times) else None
    assert parse_recording(text).answer(start(), now).value == expected  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ('{"t": 1, "metric": "m", "value": 1}\nnot json\n', "line 2", "not a JSON object"),
        ('{"t": "soon", "metric": "m"}\n', "line 1", "t must be a number"),
        ('{"t": 1, "value": 1}\n', "line 1", "metric"),
        ('{"t": 1, "metric": "m", "role": "baseline"}\n', "line 1", "canary or stable"),
        ('{"t": 1, "metric": "m", "value": 1, "error": "x"}\n', "line 1", "not both"),
        ('{"t": 1, "metric": "m", "colour": 1}\n', "line 1", "unknown field 'colour'"),
        ('{"t": 1, "metric": "m"}\n{"recording": "' + FORMAT + '"}\n', "line 2", "first line"),
        ('{"recording": "v0"}\n{"t": 1, "metric": "m"}\n', "line 1", "recording must be"),
        ('{"t": 5, "metric": "m"}\n\n{"t": 5, "metric": "m"}\n', "line 3", "two samples at t=5"),
        ("", "", "no samples"),
    ],
)
def test_bad_recordings_are_located(text: str, where: str, reason: str) -> None:
    with pytest.raises(RecordingError) as info:
        parse_recording(text, "rec.jsonl")
    assert any(w == where and reason in r for w, r in info.value.problems), info.value.problems
    assert "rec.jsonl" in str(info.value)


# ----------------------------------------------------------------------------------------------------------
# the recorder
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Polled:
    """A provider answering later: ``poll`` returns the answers of the measurements started since."""

    answers: dict[str, float]
    waiting: list[StartMeasurement] = field(default_factory=list)

    def measure(self, start: StartMeasurement, now: float) -> Measurement | None:
        self.waiting.append(start)
        return None

    def poll(self) -> list[Measurement]:
        out = [
            Measurement(verification=s.verification, metric=s.metric.name, value=self.answers[s.metric.name])
            for s in self.waiting
        ]
        self.waiting.clear()
        return out


def test_polled_answers_are_recorded_at_the_time_they_were_asked() -> None:
    out = io.StringIO()
    rec = RecordingProvider(Polled({"m": 0.25}), out, role="stable")
    assert rec.measure(start(), 30.0) is None
    assert rec.poll() == [Measurement(verification="v1", metric="m", value=0.25)]
    recording = parse_recording(out.getvalue())
    assert recording.answer(start(), 30.0, role="stable") == Measurement(
        verification="v1", metric="m", value=0.25
    )
    assert recording.tracks[("m", "stable")].query == "q"


def test_a_recorded_prometheus_run_replays_to_the_same_decisions(prometheus: PromServer) -> None:
    """A ProvidedCluster run measured by the real Prometheus (through the recorder), then the same rollout
    in a memory cluster answered by the recording alone: same measurements, same outcome."""
    for condition, stable in (("result[0] < 0.01", "v2"), ("result[0] < 0.001", "v1")):
        plan = canary(condition)
        out = io.StringIO()
        real = drive(
            plan, RecordingProvider(PrometheusProvider(prometheus.address, origin=prometheus.at), out), None
        )
        recording = parse_recording(out.getvalue())
        replayed = Driver(
            MemoryCluster(SIGNALS.model_copy(update={"recordings": (recording,)}), seed=1),
            initial_state(plan),
        )
        replayed.send(Deploy(revision="v1"), 0.0)
        now = 0.0
        for _ in range(1000):
            if now == 60.0 and replayed.state.desired != "v2":
                replayed.send(Deploy(revision="v2"), now)
            t = replayed.next_time(now)
            if t is None or t > 3600:
                if now >= 60.0:
                    break
                t = 60.0
            now = t
            replayed.pump(now)
        measured = [[e for _, e in d.log if isinstance(e, Measurement)] for d in (real, replayed)]
        assert measured[0] and measured[0] == measured[1]
        assert real.state.stable == replayed.state.stable == stable


def test_the_recorder_writes_errors_of_the_wrapped_provider() -> None:
    out = io.StringIO()
    down = PrometheusProvider("http://127.0.0.1:9", timeout=2)
    answer = RecordingProvider(down, out).measure(start_of({"prometheus": {"query": "up"}}), 5.0)
    assert answer is not None and answer.error is not None
    recording = parse_recording(out.getvalue())
    replay = recording.answer(start_of({"prometheus": {"query": "up"}}), 5.0)
    assert replay is not None and replay.error == answer.error


def test_a_config_without_recordings_measures_signals() -> None:
    assert ClusterConfig().recordings == ()
