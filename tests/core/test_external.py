"""External verification (Ocean CD v1): the rollout waits for an outside answer, passed or failed, up to a
timeout; then the fallback acts (fail: the failure policy, here an immediate rollback; continue: as passed).
A late answer after the fallback fired changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ebbtide.core import step
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement
from ebbtide.core.plan import EXTERNAL_FAILURE, EXTERNAL_SUCCESS, MetricPlan, Plan, plan_problems
from ebbtide.core.spec import SpecError, compile_plan, load_text

from .helpers import SILENT, Harness, canary_plan, template, verify, weight

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "specs" / "external-verification.yaml"
TIMEOUT = 600.0  # the example's 10m


def example_plan(fallback: str = "fail", timeout: str = "10m") -> Plan:
    text = EXAMPLE.read_text().replace("fallback: fail", f"fallback: {fallback}")
    text = text.replace("timeout: 10m", f"timeout: {timeout}")
    return compile_plan(load_text(text, "external.yaml"))


def answering(answer: Any, after: float = 0.0) -> Any:
    """The verifier: silent for the external metric (the test answers by hand), GOOD for others."""
    return lambda rev, metric, now: SILENT if metric == "qa-suite" else 0.01


class Run:
    """v1 live, v2 deployed and waiting in its external verification step."""

    def __init__(self, plan: Plan) -> None:
        self.h = Harness(plan, measure=answering(None)).live("v1")
        self.h.deploy("v2")
        self.h.run_for(30)
        started = [p for _, n, p in self.h.notifications() if n == "start-external-verification"]
        assert len(started) == 1, self.h.notified()
        self.run_id = started[0]["verification"]
        self.asked_at = next(
            r.t
            for r in self.h.log
            for e in r.decision.effects
            if isinstance(e, StartMeasurement) and e.metric.name == "qa-suite"
        )

    def answer(self, status: str) -> None:
        self.h.send(Measurement(verification=self.run_id, metric="qa-suite", value=status))


def test_the_compiled_metric_waits_for_its_timeout_and_falls_back() -> None:
    mp = example_plan().templates["qa-sign-off"].metrics[0]
    assert (mp.timeout, mp.on_timeout) == (TIMEOUT, "failed")
    assert (mp.success_condition, mp.failure_condition) == (EXTERNAL_SUCCESS, EXTERNAL_FAILURE)
    assert mp.provider == {"external": {"timeout": TIMEOUT, "fallback": "fail"}}
    assert example_plan("continue").templates["qa-sign-off"].metrics[0].on_timeout == "successful"
    default = compile_plan(load_text(EXAMPLE.read_text().replace("timeout: 10m\n", "")))
    assert default.templates["qa-sign-off"].metrics[0].timeout == 300.0


def test_no_answer_in_time_rolls_back_immediately() -> None:
    r = Run(example_plan())
    assert r.h.state.phase == "verifying" and r.h.state.weights == {"v1": 75, "v2": 25}
    r.h.run_until(r.asked_at + TIMEOUT - 1)
    assert r.h.state.phase == "verifying"  # still waiting one second before the deadline
    r.h.run_until(r.asked_at + TIMEOUT)
    deadline = [x for x in r.h.log if x.t == r.asked_at + TIMEOUT]
    assert deadline, "the engine woke at the deadline"
    # the decision at the deadline fails the rollout and moves all traffic back to v1 at once
    assert "rollout-failed" in r.h.notified(since=r.asked_at + TIMEOUT)
    assert r.h.weights(since=r.asked_at + TIMEOUT)[0] == {"v1": 100}
    assert r.h.state.weights == {"v1": 100} and r.h.state.stable == "v1" and r.h.state.degraded
    reason = r.h.payload("rollout-failed")["reason"]
    assert "qa-suite" in reason and "no answer in time" in reason


def test_no_answer_with_fallback_continue_promotes() -> None:
    r = Run(example_plan("continue"))
    r.h.run_until(r.asked_at + TIMEOUT + 400)
    assert r.h.state.phase == "live" and r.h.state.stable == "v2"
    assert "rollout-failed" not in r.h.notified()


@pytest.mark.parametrize("fallback", ["fail", "continue"])
def test_an_answer_in_time_decides_whatever_the_fallback(fallback: str) -> None:
    passed = Run(example_plan(fallback))
    passed.h.run_for(120)
    passed.answer("passed")
    passed.h.run_for(400)
    assert passed.h.state.phase == "live" and passed.h.state.stable == "v2"

    failed = Run(example_plan(fallback))
    failed.h.run_for(120)
    failed.answer("failed")
    assert failed.h.state.weights == {"v1": 100} and failed.h.state.degraded
    assert "'failed'" in failed.h.payload("rollout-failed")["reason"]


def test_a_late_answer_after_the_fallback_changes_nothing() -> None:
    r = Run(example_plan())
    r.h.run_until(r.asked_at + TIMEOUT + 5)
    before = r.h.state
    for status in ("passed", "failed"):
        d = step(before, Measurement(verification=r.run_id, metric="qa-suite", value=status), r.h.now)
        assert d.effects == () and d.rejected is None
        assert d.state.to_json() == before.to_json()


def test_the_answer_waits_past_the_default_measurement_timeout() -> None:
    """Without the external timeout the engine would count an error after 60 s and ask again."""
    r = Run(example_plan(timeout="1h"))
    r.h.run_until(r.asked_at + 3000)
    asked = [e for x in r.h.log for e in x.decision.effects if isinstance(e, StartMeasurement)]
    assert len(asked) == 1 and r.h.state.phase == "verifying"
    r.answer("passed")
    r.h.run_for(400)
    assert r.h.state.phase == "live"


def test_timeout_fields_leave_other_dumps_as_they_were() -> None:
    plain = MetricPlan(name="m")
    assert "timeout" not in plain.model_dump() and "on_timeout" not in plain.model_dump_json()
    ext = example_plan().templates["qa-sign-off"].metrics[0]
    assert ext.model_dump()["timeout"] == TIMEOUT
    assert MetricPlan.model_validate_json(ext.model_dump_json()) == ext


def test_a_hand_built_fallback_needs_the_external_conditions() -> None:
    bad = MetricPlan(name="m", timeout=30.0, on_timeout="failed")
    with pytest.raises(ValueError, match="on_timeout 'failed' is an external verification's fallback"):
        canary_plan(weight(20), verify(), templates={"t": template(bad)})
    zero = canary_plan(weight(20), verify()).model_copy(
        update={"templates": {"t": template(MetricPlan(name="m", timeout=0.0))}}
    )
    assert any("timeout must be positive" in p for p in plan_problems(zero))


TEMPLATE = """
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: t}
spec:
  metrics:
    - name: qa
      %s
      provider:
        external: %s
"""


@pytest.mark.parametrize(
    ("extra", "external", "field", "reason"),
    [
        ("successCondition: result > 1", "{}", "spec.metrics[0].successCondition", "does not apply"),
        ("interval: 1m", "{}", "spec.metrics[0].interval", "does not apply"),
        ("failureLimit: 2", "{}", "spec.metrics[0].failureLimit", "does not apply"),
        ("", "{timeout: 0s}", "spec.metrics[0].provider.external.timeout", "greater than 0"),
        ("", "{fallback: retry}", "spec.metrics[0].provider.external.fallback", "'fail' or 'continue'"),
        ("", "{timeout: soon}", "spec.metrics[0].provider.external.timeout", ""),
        ("", "{answer: passed}", "spec.metrics[0].provider.external.answer", ""),
    ],
)
def test_bad_external_fields_are_located(extra: str, external: str, field: str, reason: str) -> None:
    with pytest.raises(SpecError) as exc:
        load_text(TEMPLATE % (extra, external), "t.yaml")
    found = [p for p in exc.value.problems if p.field == field]
    assert found, exc.value.problems
    assert found[0].file == "t.yaml" and found[0].document == 1 and reason in found[0].reason
