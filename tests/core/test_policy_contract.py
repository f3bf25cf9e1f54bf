"""Pinned scenarios through the stateful contract's oracle (tests/core/test_contract.py).

Each scenario drives :class:`EngineContract` rule by rule, so every decision is judged by the same model
(cluster readiness, verification counters, revision history, policies, commands, fixpoints) as the
generated runs; the scenario then asserts the outcome users recognise. They pin the states that generated
runs reach only now and then (issue 6: failure policies and modes, dynamicStableScale at 100%, rollback
windows, rollbacks to scaled-down revisions, abort after full promotion, a spec change mid-rollout), so
that ``pytest tests/core`` and ``pytest tests`` check them alike, whatever Hypothesis draws.
"""

from __future__ import annotations

import pytest

from ebbtide.core.events import Command, Deploy, Measurement, ReplicasObserved, SpecChanged, Tick
from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan
from ebbtide.core.testing import value_for

from .test_contract import EngineContract

CHECK = MetricPlan(name="ok", success_condition="result >= 0.5")


def plan(*steps: StepPlan, templates: tuple[str, ...] = ("t",), **kw: object) -> Plan:
    tpls = {
        t: TemplatePlan(name=t, metrics=(CHECK.model_copy(update={"name": f"{t}-ok"}),)) for t in templates
    }
    kw.setdefault("replicas", 4)
    kw.setdefault("scale_down_delay", 0.0)
    kw.setdefault("abort_scale_down_delay", 0.0)
    return Plan(steps=steps, templates=tpls, **kw)  # type: ignore[arg-type]


def w(n: int) -> StepPlan:
    return StepPlan(kind="setWeight", weight=n)


def verify(*names: str) -> StepPlan:
    return StepPlan(kind="verification", templates=names or ("t",))


class Run:
    """A scenario: the contract machine, driven by hand."""

    def __init__(self, p: Plan, bad: frozenset[str] = frozenset(), strict: bool = False) -> None:
        self.m = EngineContract()
        self.m.strict_supersede = strict
        self.m.setup(p, set(bad))

    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.m.state

    def deploy(self, rev: str) -> Run:
        self.m.deploy(rev, 0.0)
        return self

    def ready(self) -> Run:
        self.m.converge()
        return self

    def observe(self, rev: str, ready: int) -> Run:
        self.m.cluster.observed(rev, ready)
        asked = self.m.cluster.asked[rev]
        self.m.apply(ReplicasObserved(revision=rev, desired=asked, ready=ready, available=ready))
        return self

    def answer(self, passing: bool) -> Run:
        """Answer every measurement in flight."""
        for run, metric in self.m.runs.in_flight():
            self.m._outcome = "successful" if passing else "failed"
            value = value_for(metric.plan, passing)
            self.m.apply(Measurement(verification=run.id, metric=metric.plan.name, value=value))
        return self

    def command(self, action: str, revision: str | None = None) -> Run:
        self.m.command(Command(action=action, revision=revision), 0.0)  # type: ignore[arg-type]
        return self

    def tick(self, dt: float) -> Run:
        self.m.tick(dt, to_wake=False)
        return self

    def spec(self, p: Plan) -> Run:
        self.m.spec_change(p)
        return self

    def routed(self) -> dict[str, int]:
        return dict(self.m.routed)

    def done(self) -> None:
        self.m.teardown()


CANARY = (w(25), verify(), w(50), verify(), w(100))


@pytest.mark.parametrize("dynamic", [False, True])
@pytest.mark.parametrize("mode", ["immediate", "newRollout"])
@pytest.mark.parametrize("action", ["rollback", "pause", "promote"])
def test_a_failed_verification_goes_through_the_policy(action: str, mode: str, dynamic: bool) -> None:
    r = Run(plan(*CANARY, failure_action=action, rollback_mode=mode, dynamic_stable_scale=dynamic))
    r.deploy("v2").ready().ready()
    assert r.state.phase == "verifying" and r.routed() == {"v1": 75, "v2": 25}
    r.answer(passing=False)
    if action == "pause":
        assert (r.state.phase, r.state.pause_reason) == ("paused", "failure-policy")
        assert r.routed() == {"v1": 75, "v2": 25}
    elif action == "promote":
        assert r.state.phase in ("in-progress", "verifying") and r.state.recorded_failures
    elif mode == "newRollout":
        assert r.state.initiator == "failure-policy" and r.state.canary == "v1"
        assert r.routed().get("v2", 0) <= 25
    else:
        assert (r.routed()["v1"] >= 75 and r.state.rollback is not None) or r.state.phase == "live"
    r.ready().answer(passing=True).ready().answer(passing=True).ready()
    r.done()


@pytest.mark.parametrize("action", ["rollback", "pause", "promote"])
def test_a_deadline_rolls_back_under_every_policy(action: str) -> None:
    r = Run(plan(*CANARY, failure_action=action, progress_deadline=60.0))
    r.deploy("v2").tick(61.0)  # v2's pods never become ready
    assert r.state.stable == "v1" and r.state.phase in ("rolling-back", "live")
    r.done()


def test_abort_after_full_promotion_attempt_with_dynamic_stable_scale() -> None:
    """Section 1: the stable was scaled down as the canary reached 100%; abort moves traffic back only
    as fast as the stable's pods become ready."""
    p = plan(w(50), w(100), verify(), dynamic_stable_scale=True)
    r = Run(p).deploy("v2").ready().ready().ready().ready()
    assert r.state.phase == "verifying" and r.routed() == {"v2": 100} and r.m.cluster.asked["v1"] == 0
    r.command("abort")
    assert r.routed().get("v1", 0) == 0, "v1 has no ready pods yet: v2 keeps the traffic"
    shares = []
    for ready in (1, 2, 1, 3, 4):  # a pod of v1 is lost on the way: its share must not fall back
        r.observe("v1", ready)
        shares.append(r.routed().get("v1", 0))
    assert shares == [25, 50, 50, 75, 100], shares
    assert r.state.phase == "live" and r.routed() == {"v1": 100}
    r.done()


def test_rollback_window_fast_tracks_to_a_scaled_down_revision() -> None:
    r = Run(plan(w(50), w(100), rollback_window=2))
    for rev in ("v2", "v3"):
        r.deploy(rev).ready().ready().ready()
        assert r.state.stable == rev
    r.tick(1.0).command("rollback", "v1")  # v1 was scaled to zero: traffic follows its pods
    assert r.state.phase == "rolling-back" and r.routed() == {"v3": 100}
    r.ready().ready()
    assert r.state.phase == "live" and r.state.stable == "v1"
    r.done()


def test_a_rollback_just_outside_the_window_runs_through_all_phases() -> None:
    r = Run(plan(w(50), w(100), rollback_window=1))
    for rev in ("v2", "v3"):
        r.deploy(rev).ready().ready().ready()
    r.command("rollback", "v1")  # previous successful revisions: v2 (in the window), then v1 (outside)
    assert r.state.phase in ("in-progress", "verifying") and r.state.canary == "v1"
    r.done()


def test_a_completed_rollback_makes_its_target_the_last_successful_revision() -> None:
    r = Run(plan(*CANARY, rollback_window=1), bad=frozenset({"v3"}))
    r.deploy("v2").ready().answer(True).ready().answer(True).ready()
    assert r.state.stable == "v2"
    r.deploy("v1").ready()  # within the window: fast-tracked back to v1
    assert r.state.stable == "v1" and r.state.phase == "live"
    r.deploy("v3").ready().answer(False)
    assert (r.state.rollback is not None and r.state.rollback.target == "v1") or r.state.stable == "v1"
    r.done()


def test_a_superseding_deploy_starts_against_the_last_successful_revision() -> None:
    r = Run(plan(*CANARY, failure_action="rollback", rollback_mode="newRollout"), bad=frozenset({"v2"}))
    r.deploy("v2").ready().answer(False)
    assert r.state.initiator == "failure-policy" and r.state.stable == "v2"
    r.deploy("v3")
    assert r.state.canary == "v3" and r.state.stable == "v1"
    r.done()


@pytest.mark.parametrize("how", ["abort", "failure"])
def test_a_new_rollout_rollback_that_fails_returns_to_the_revision_it_restores(how: str) -> None:
    r = Run(plan(*CANARY, rollback_mode="newRollout", replicas=2), bad=frozenset({"v2", "v1"}))
    r.deploy("v2").ready().ready().answer(False)
    assert r.state.initiator == "failure-policy" and r.state.canary == "v1"
    if how == "abort":
        r.command("abort")
    else:
        r.ready().answer(False)
    assert (r.state.rollback.target if r.state.rollback else r.state.stable) == "v1"
    r.done()


def test_a_spec_change_mid_rollout_applies_when_the_rollout_ends() -> None:
    r = Run(plan(*CANARY))
    r.deploy("v2").ready()
    newer = plan(w(10), w(100), replicas=3)
    r.spec(newer)
    assert r.state.plan != newer and r.state.next_plan == newer
    r.answer(True).ready().answer(True).ready()
    assert r.state.phase == "live" and r.state.plan == newer
    r.done()


def test_the_promote_policy_keeps_the_latest_failures() -> None:
    names = tuple(f"t{i}" for i in range(7))
    steps = (w(10), *(verify(n) for n in names), w(100))
    r = Run(plan(*steps, templates=names, failure_action="promote"), bad=frozenset({"v2"}))
    r.deploy("v2").ready()
    for _ in names:
        r.answer(False)
    assert len(r.state.recorded_failures) == 5 and "'t6'" in r.state.recorded_failures[-1]
    r.done()


def test_commands_are_rightly_accepted_or_rejected() -> None:
    r = Run(plan(*CANARY, failure_action="pause"), bad=frozenset({"v2"}))
    r.command("abort")  # live: a no-op, accepted
    r.deploy("v2").ready().command("pause").command("pause").command("resume").answer(False)
    assert (r.state.phase, r.state.pause_reason) == ("paused", "failure-policy")
    r.command("resume").command("abort")  # a failed revision still serves traffic: abort is accepted
    assert r.state.phase in ("rolling-back", "live") and r.state.stable == "v1"
    r.ready().command("abort").command("retry")
    r.done()


def test_commands_arrive_with_timers_due() -> None:
    r = Run(plan(w(25), StepPlan(kind="pause", duration=60.0), w(100)))
    r.deploy("v2").ready()
    r.m.command(Command(action="pause"), 120.0)  # the pause step ran out before the command arrived
    r.m.command(Command(action="promoteFull"), 0.0)
    r.ready().ready()
    assert r.state.phase == "live" and r.state.stable == "v2"
    r.done()


# ----- engine gaps found by the model (issue 6), pinned until fixed --------------------------------------


def test_supersede_keeps_traffic_on_ready_pods() -> None:
    r = Run(plan(w(25), verify(), w(100), replicas=1), strict=True)
    r.deploy("v2").ready().ready()
    r.observe("v1", 0)  # the stable lost its pods: the canary carries everything
    assert r.routed() == {"v2": 100}
    r.m.deploy("v3", 30.0)  # oracle: no traffic to v1 (no ready pods) while v2 has some
    r.done()


def test_retry_after_a_failed_new_rollout_rollback_routes_to_ready_pods() -> None:
    p = plan(w(1), verify(), w(100), replicas=1, rollback_mode="newRollout", progress_deadline=60.0)
    r = Run(p, strict=True)
    r.deploy("v2").observe("v1", 0).tick(60.0)  # v2 never ready: deadline -> newRollout of v1
    r.tick(60.0).tick(60.0)  # v1 has no ready pods either: the rollback fails, the rollout rests failed
    assert r.state.phase == "failed"
    r.observe("v1", 1).command("retry")  # oracle: no traffic to v2 (scaled to zero) while v1 is ready
    r.done()


def test_a_scaled_down_stable_carries_only_its_remaining_pods() -> None:
    p = plan(w(10), verify(), w(100), replicas=10, dynamic_stable_scale=True)
    r = Run(p).deploy("v2").ready().ready()
    assert r.m.cluster.asked["v1"] == 9
    r.deploy("v1")
    assert r.routed()["v1"] <= 90, r.routed()


def test_a_stale_measurement_changes_nothing() -> None:
    r = Run(plan(*CANARY)).deploy("v2").ready()
    before = r.state
    r.m.stale_measurement()  # the machine's rule asserts it acts as a Tick
    assert r.state.canary == before.canary and r.state.verifications == before.verifications
    r.m.apply(Tick())
    r.m.apply(SpecChanged(plan=r.state.plan))
    r.m.apply(Deploy(revision="v2"))
    r.done()


def test_a_failure_while_paused_by_hand_becomes_a_failure_policy_pause() -> None:
    """Found by a contract search: a manual pause arrives as a background measurement times out; the
    failure under the pause policy is notified and the pause takes its reason (not a silent manual pause)."""
    strict = MetricPlan(name="t-ok", success_condition="result >= 0.5", consecutive_error_limit=0)
    p = plan(w(100), verify(), failure_action="pause", background_templates=("t",))
    p = p.model_copy(update={"templates": {"t": TemplatePlan(name="t", metrics=(strict,))}})
    r = Run(p, bad=frozenset({"v2"}))
    r.deploy("v2").ready()
    assert r.state.phase == "verifying"
    r.m.command(Command(action="pause"), 700.0)  # every measurement in flight has timed out meanwhile
    assert (r.state.phase, r.state.pause_reason) == ("paused", "failure-policy")
    assert r.state.failure_reason
    r.command("abort").ready()
    assert r.state.stable == "v1"
    r.done()


def test_a_new_rollout_rollback_to_a_podless_revision_leaves_traffic_on_ready_pods() -> None:
    """Found by a contract search: the last successful revision lost its pods while another rollout
    carried all traffic; a superseding deploy fails under newRollout and the rollback's new rollout starts
    its target at the full share. The target takes only what its ready pods carry."""
    r = Run(plan(verify(), w(100), failure_action="promote", replicas=1), bad=frozenset({"v2", "v3"}))
    r.deploy("v3").answer(False).ready()  # the promote policy goes on: v3 reaches live
    assert (r.state.phase, r.state.stable) == ("live", "v3")
    r.spec(plan(w(1), verify(), w(100), replicas=1))
    r.deploy("v1").ready()
    r.observe("v3", 0)  # the stable's pods are gone; v1 carries everything
    r.spec(plan(verify(), w(1), w(100), rollback_mode="newRollout", replicas=1))
    r.deploy("v2")
    r.answer(False)  # v2 fails: the rollback's new rollout climbs back to v3, whose pods are gone
    assert r.routed().get("v3", 0) == 0 and r.routed().get("v2", 0) == 0
    r.ready().ready().ready()
    r.done()


def test_a_rejected_promote_leaves_the_background_verification_running() -> None:
    """promote is rejected while a setWeight step waits for canary pods; the rejection changes nothing, so
    the background verification started with the rollout still runs (the oracle checks the whole state)."""
    r = Run(plan(w(25), verify(), w(100), background_templates=("t",)))
    r.deploy("v2")  # v2's pods are not ready: step 0 (setWeight 25) waits for them
    assert r.state.phase == "in-progress" and any(v.background for v in r.state.verifications)
    running = [v.id for v in r.state.verifications]
    r.command("promote")
    assert r.m.log[-1][2].rejected is not None
    assert [v.id for v in r.state.verifications] == running
    r.ready().answer(passing=True)
    r.done()
