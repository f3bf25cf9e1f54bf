"""The semantics contract (docs/semantics.md), checked as hypothesis properties.

One RuleBasedStateMachine drives the engine with arbitrary plans, deploys, replica observations,
measurements, ticks and commands, and checks promises 1-6, 8 and 10 on every decision (each promise is
a named method below). Promise 7 (verification) and 9 (liveness) have their own properties at the end.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ebbtide.core import initial_state, step
from ebbtide.core.effects import Notify, SetTraffic
from ebbtide.core.engine import ROLLOUT_PHASES
from ebbtide.core.events import Command, Deploy, Event, Measurement, ReplicasObserved, SpecChanged, Tick
from ebbtide.core.plan import Plan
from ebbtide.core.state import Decision, RolloutState
from ebbtide.core.testing import REVISIONS, commands, plans, value_for

STATE_BYTES_LIMIT = 4096


class EngineContract(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state: RolloutState = initial_state()
        self.initial: RolloutState = self.state
        self.now = 0.0
        self.log: list[tuple[Event, float, Decision]] = []
        #: revisions in the order they reached live (the model of "last successful")
        self.lives: list[str] = []

    # ----- driving ---------------------------------------------------------------------------------
    @initialize(plan=plans())
    def setup(self, plan: Plan) -> None:
        self.state = initial_state(plan)
        self.initial = self.state
        self.apply(Deploy(revision="v1"))
        assert self.state.phase == "live" and self.state.stable == "v1", "first deploy goes live at once"

    def apply(self, ev: Event) -> Decision:
        before = self.state
        decision = step(before, ev, self.now)
        self.promise_1_deterministic(before, ev, decision)
        self.promise_2_crash_safe(before, ev, decision)
        self.promise_3_rollback_target(before, ev, decision)
        self.promise_4_traffic(before, ev, decision)
        self.promise_5_availability(before, ev, decision)
        self.promise_6_commands(before, ev, decision)
        self.promise_8_policy(before, ev, decision)
        self.promise_10_bounded(decision)
        if before.phase != decision.state.phase:
            event(f"{before.phase} -> {decision.state.phase}")
        if decision.rejected:
            event("rejected command")
        self.state = decision.state
        self.log.append((ev, self.now, decision))
        if self.state.phase == "live" and self.state.stable is not None:
            if not self.lives or self.lives[-1] != self.state.stable:
                self.lives = [r for r in self.lives if r != self.state.stable] + [self.state.stable]
        return decision

    @rule(rev=st.sampled_from(REVISIONS))
    def deploy(self, rev: str) -> None:
        self.apply(Deploy(revision=rev))

    @precondition(lambda self: bool(self.state.replicas or self.state.weights))
    @rule(data=st.data())
    def observe(self, data: st.DataObject) -> None:
        revs = sorted(set(self.state.replicas) | set(self.state.weights))
        rev = data.draw(st.sampled_from(revs))
        desired = self.state.replicas.get(rev, 0)
        ready = data.draw(st.one_of(st.just(desired), st.integers(0, max(desired, 0))))
        ev = ReplicasObserved(revision=rev, desired=desired, ready=ready, available=ready)
        self.apply(ev)
        again = self.apply(ev)
        assert again.effects == (), "promise 6: the same observation twice adds no effects"

    @rule()
    def converge(self) -> None:
        """The cluster catches up: every revision has its desired replicas ready."""
        for rev, n in sorted(self.state.replicas.items()):
            if self.state.ready.get(rev) != n:
                self.apply(ReplicasObserved(revision=rev, desired=n, ready=n, available=n))

    def _in_flight(self) -> list[tuple[Any, Any]]:
        return [(run, m) for run in self.state.verifications for m in run.metrics if m.in_flight]

    @precondition(lambda self: bool(self._in_flight()))
    @rule(data=st.data(), outcome=st.sampled_from(["pass", "pass", "pass", "fail", "fail", "none", "error"]))
    def measure(self, data: st.DataObject, outcome: str) -> None:
        pending = self._in_flight()
        run, metric = data.draw(st.sampled_from(pending))
        mp = next(m for m in self.state.plan.templates[run.template].metrics if m.name == metric.name)
        if outcome == "error":
            ev = Measurement(verification=run.id, metric=metric.name, error="provider timeout")
        elif outcome == "none":
            ev = Measurement(verification=run.id, metric=metric.name, value=None)
        else:
            ev = Measurement(verification=run.id, metric=metric.name, value=value_for(mp, outcome == "pass"))
        self.apply(ev)

    @rule(dt=st.sampled_from([0.0, 1.0, 10.0, 60.0, 700.0]), to_wake=st.booleans())
    def tick(self, dt: float, to_wake: bool) -> None:
        wake = self.log[-1][2].wake_at if self.log else None
        if to_wake and wake is not None and wake > self.now:
            self.now = wake
        else:
            self.now += dt
        self.apply(Tick())

    @rule(cmd=commands())
    def command(self, cmd: Command) -> None:
        self.apply(cmd)

    @rule(plan=plans())
    def spec_change(self, plan: Plan) -> None:
        before = self.state
        after = self.apply(SpecChanged(plan=plan)).state
        if before.phase in ("live", "failed"):
            assert after.plan == plan and after.next_plan is None, "applies at once when nothing runs"
        else:
            assert after.plan == before.plan and after.next_plan == plan, "mid-rollout: kept for the next"

    @precondition(lambda self: bool(self.log))
    @rule()
    def stale_measurement(self) -> None:
        """A result for a verification that no longer runs changes nothing."""
        d = self.apply(Measurement(verification="0-gone-x-0", metric="m", value=1.0))
        assert d.effects == () or all(not isinstance(e, Notify) for e in d.effects)

    # ----- the promises ----------------------------------------------------------------------------
    def promise_1_deterministic(self, before: RolloutState, event: Event, d: Decision) -> None:
        assert step(before, event, self.now) == d

    def promise_2_crash_safe(self, before: RolloutState, event: Event, d: Decision) -> None:
        restored = RolloutState.model_validate_json(before.model_dump_json())
        assert restored == before, "state round-trips through JSON unchanged"
        assert RolloutState.from_json(before.to_json()) == before, "and through the compact persisted form"
        assert step(restored, event, self.now) == d, "the restored state has the same future"

    def promise_3_rollback_target(self, before: RolloutState, event: Event, d: Decision) -> None:
        after = d.state
        started_rollback = after.rollback is not None and (
            before.rollback is None or before.rollback.target != after.rollback.target
        )
        linked = after.initiator == "failure-policy" and after.rollout_id != before.rollout_id
        asked = event.revision if isinstance(event, Command) and event.action == "rollback" else None
        if isinstance(event, Deploy):
            asked = event.revision
        target: str | None = None
        if started_rollback:
            assert after.rollback is not None
            target = after.rollback.target
        elif linked:
            target = after.canary
        elif (
            isinstance(event, Command)
            and event.action == "rollback"
            and after.rollout_id != before.rollout_id
        ):
            target = after.canary  # a rollback through all phases
        if target is None:
            return
        note(f"rollback to {target} (asked {asked}, lives {self.lives})")
        if asked is not None and target == asked:
            return
        if isinstance(event, Command) and event.action == "rollback" and before.phase == "live":
            assert target in self.lives and target != before.stable, "a previous successful revision"
            return
        assert self.lives and target == self.lives[-1], (
            "rollback restores the last revision that reached live"
        )

    def promise_4_traffic(self, before: RolloutState, event: Event, d: Decision) -> None:
        after = d.state
        for weights in [after.weights] + [e.weights for e in d.effects if isinstance(e, SetTraffic)]:
            if weights:
                assert all(isinstance(v, int) and 0 <= v <= 100 for v in weights.values())
                assert sum(weights.values()) == 100, weights
        same_rollout = (
            before.phase in ROLLOUT_PHASES
            and after.phase in ROLLOUT_PHASES
            and before.rollout_id == after.rollout_id
        )
        if same_rollout:
            assert after.canary_weight >= before.canary_weight, "canary weight never decreases mid-rollout"
        if (
            before.phase == "rolling-back"
            and after.phase == "rolling-back"
            and before.rollback
            and after.rollback
        ):
            target = after.rollback.target
            if before.rollback.target == target and after.ready.get(target, 1) > 0:
                for rev, v in after.weights.items():
                    if rev != target:
                        assert v <= before.weights.get(rev, 0), "no revision gains traffic while rolling back"
        if before.phase == "rolling-back" and after.phase == "live" and before.rollback:
            # a deploy of the serving revision retargets the rollback to it
            target = event.revision if isinstance(event, Deploy) else before.rollback.target
            assert after.weights == {target: 100}, "after a completed rollback: 0 elsewhere"

    def promise_5_availability(self, before: RolloutState, event: Event, d: Decision) -> None:
        after = d.state
        for rev, v in after.weights.items():
            if v > 0 and after.ready.get(rev) == 0:
                others = [r for r in after.weights if r != rev and after.ready.get(r, 0) > 0]
                assert not others, f"traffic to {rev} with no ready replicas while {others} are ready"
        if after.phase == "rolling-back" and after.rollback is not None:
            assert after.replicas.get(after.rollback.target) == after.plan.replicas, "target scaled to full"
            for rev, v in after.weights.items():
                if v > 0 and rev != after.rollback.target:
                    assert (
                        after.replicas.get(rev, 0) >= before.replicas.get(rev, 0)
                        or rev not in before.replicas
                    ), "a revision still serving traffic is not scaled down while rolling back"

    def promise_6_commands(self, before: RolloutState, event: Event, d: Decision) -> None:
        if d.rejected is not None:
            assert isinstance(event, Command)
            assert d.state == before and d.effects == (), "a rejected command changes nothing"
            assert d.rejected.strip()

    def promise_8_policy(self, before: RolloutState, event: Event, d: Decision) -> None:
        failed = [e for e in d.effects if isinstance(e, Notify) and e.event == "rollout-failed"]
        after = d.state
        plan = before.plan
        for e in failed:
            reason = str(e.payload.get("reason", ""))
            if reason.startswith("ProgressDeadlineExceeded"):
                rolling_back = after.phase != "paused" or (
                    after.initiator == "failure-policy" and after.pause_reason == "pause-step"
                )  # a newRollout rollback may rest at a timed pause step of its own
                assert rolling_back, "deadline failures roll back under every policy"
        verification_failed = any(str(e.payload.get("reason", "")).startswith("verification") for e in failed)
        if verification_failed and plan.failure_action == "rollback" and plan.rollback_mode == "immediate":
            if after.rollback is not None or after.phase == "live":
                target = after.rollback.target if after.rollback else after.stable
                assert target is not None
                ready = after.ready.get(target)
                if not plan.dynamic_stable_scale and ready is not None and ready >= plan.replicas:
                    assert after.weights == {target: 100}, "immediate: all traffic to the target at once"
        if (
            isinstance(event, Measurement)
            and after.phase == "paused"
            and after.pause_reason == "failure-policy"
        ):
            if before.phase != "paused":
                assert after.weights == before.weights, "pause policy changes no traffic"

    def promise_10_bounded(self, d: Decision) -> None:
        s = d.state
        size = len(s.model_dump_json(exclude={"plan", "next_plan"}))
        assert size <= STATE_BYTES_LIMIT, f"state is {size} bytes"
        assert len(s.history) <= max(s.plan.revision_history_limit, 4)
        assert len(s.verifications) <= len(s.plan.templates) + len(s.plan.background_templates) + 1
        assert len(s.recorded_failures) <= 5

    # ----- invariants on every state ---------------------------------------------------------------
    @invariant()
    def phase_fields_agree(self) -> None:
        s = self.state
        if s.phase == "paused":
            assert s.pause_reason is not None
        if s.phase == "rolling-back":
            assert s.rollback is not None
        if s.phase == "live" and s.stable is not None:
            assert s.canary is None
            assert s.degraded == (s.desired != s.stable)
            assert s.weights == {s.stable: 100}
        if s.phase in ROLLOUT_PHASES:
            assert s.canary is not None

    def teardown(self) -> None:
        """Promise 1, second half: the event log replayed from the start reproduces every decision."""
        state = self.initial
        for logged, now, decision in self.log:
            again = step(state, logged, now)
            assert again == decision
            state = again.state


EngineContract.TestCase.settings = settings(stateful_step_count=60)  # on top of the loaded profile
TestEngineContract = EngineContract.TestCase


# ---------------------------------------------------------------------------------------------------
# promise 9: liveness
# ---------------------------------------------------------------------------------------------------


def _drive_to_live(plan: Plan, readiness: float) -> tuple[RolloutState, float, float]:
    """A perfect cluster: pods ready `readiness` seconds after scaling, every measurement passes."""
    state = initial_state(plan)
    d = step(state, Deploy(revision="v1"), 0.0)
    state = d.state
    pending: list[tuple[float, Any]] = [
        (
            readiness,
            ReplicasObserved(
                revision="v1", desired=plan.replicas, ready=plan.replicas, available=plan.replicas
            ),
        )
    ]
    now = 0.0
    d = step(state, Deploy(revision="v2"), now)
    start = now
    for _ in range(20_000):
        state = d.state
        for e in d.effects:
            if e.kind == "scale":
                pending.append(
                    (
                        now + readiness,
                        ReplicasObserved(
                            revision=e.revision, desired=e.replicas, ready=e.replicas, available=e.replicas
                        ),
                    )
                )
            elif e.kind == "measure":
                pending.append(
                    (
                        now,
                        Measurement(
                            verification=e.verification, metric=e.metric.name, value=value_for(e.metric, True)
                        ),
                    )
                )
        if state.phase == "live" and state.stable == "v2":
            return state, now - start, 0.0
        if d.wake_at is not None:
            pending.append((d.wake_at, Tick()))
        if not pending:
            break
        pending.sort(key=lambda p: p[0])
        t, ev = pending.pop(0)
        now = max(now, t)
        d = step(state, ev, now)
    return state, now - start, 0.0


def _liveness_bound(plan: Plan, readiness: float) -> float:
    total = 0.0
    for s in plan.steps:
        if s.kind == "pause" and s.duration is not None:
            total += s.duration
        elif s.kind == "verification":
            windows = []
            for name in s.templates:
                for m in plan.templates[name].metrics:
                    n = m.count if m.count is not None else 1
                    windows.append(m.initial_delay + (n - 1) * (m.interval or 0.0))
            total += max(windows, default=0.0)
        elif s.kind in ("setWeight", "setCanaryScale"):
            total += readiness
    return total + readiness


@given(plans(indefinite_pauses=False), st.sampled_from([0.0, 5.0, 40.0]))
def test_promise_9_liveness(plan: Plan, readiness: float) -> None:
    state, took, _ = _drive_to_live(plan, readiness)
    assert state.phase == "live" and state.stable == "v2", (
        state.phase,
        state.failure_reason,
        state.pause_reason,
    )
    assert took <= _liveness_bound(plan, readiness) + 1e-6, (took, _liveness_bound(plan, readiness))
