"""The semantics contract (docs/semantics.md), checked as hypothesis properties.

One RuleBasedStateMachine drives the engine with arbitrary plans, deploys, replica observations,
measurements, ticks and commands, and checks promises 1-8 and 10 on every decision (each promise is a named
method below). The oracle is the test's own model (tests/core/model.py): the replicas the effects asked for
and the readiness the test reported, the verification counters folded from the outcomes it sent, the
revisions that reached live as the notifications said. Traffic is judged on the weights actually routed
(SetTraffic effects), never on the state under test; the state is read only to know where the rollout is.

Every decision is also a fixpoint: a Tick, or an unrelated event, at the same ``now`` changes nothing.
Promise 9 (liveness) has its own property at the end; tests/core/test_policy_contract.py pins the
scenarios that matter through the same machine.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import event as _event
from hypothesis import given, settings
from hypothesis import note as _note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ebbtide.core import initial_state, step
from ebbtide.core.effects import Notify, ScaleRevision, SetTraffic, StartMeasurement, StopVerification
from ebbtide.core.engine import ROLLOUT_PHASES, full_step
from ebbtide.core.events import Command, Deploy, Event, Measurement, ReplicasObserved, SpecChanged, Tick
from ebbtide.core.plan import Plan, StepPlan
from ebbtide.core.state import Decision, RolloutState
from ebbtide.core.testing import REVISIONS, commands, plans, value_for

from .model import BAD_VERDICTS, Cluster, Lives, RunModel, Verifications

STATE_BYTES_LIMIT = 4096
#: a superseding deploy or a retry is judged by the availability and capacity rules too (the engine gap
#: that once made this False is fixed and pinned in test_policy_contract.py)
SUPERSEDE_IS_SAFE = True
#: outcome drawn for a measurement of a bad revision / a good one
BAD_OUTCOMES = ("fail", "fail", "fail", "pass", "none", "error")
GOOD_OUTCOMES = ("pass", "pass", "pass", "pass", "fail", "none", "error")
OUTCOME_KIND = {"pass": "successful", "fail": "failed", "none": "inconclusive", "error": "error"}


def note(text: str) -> None:
    """hypothesis.note, also usable when a pinned scenario drives the machine outside a given-test."""
    with contextlib.suppress(InvalidArgument):
        _note(text)


def event(label: str) -> None:
    with contextlib.suppress(InvalidArgument):
        _event(label)


@st.composite
def contract_plans(draw: st.DrawFn) -> Plan:
    """Plans steered to the interesting states: every policy and mode evenly, dynamicStableScale half the
    time, rollback windows, and a verification step in every canary plan (so that verifications fail)."""
    plan = draw(plans())
    steps = list(plan.steps)
    if plan.strategy == "canary" and not any(s.kind == "verification" for s in steps):
        at = draw(st.integers(0, len(steps) - 1))
        steps.insert(at, StepPlan(kind="verification", templates=(next(iter(plan.templates)),)))
    return plan.model_copy(
        update={
            "steps": tuple(steps),
            "failure_action": draw(st.sampled_from(["rollback", "pause", "promote"])),
            "rollback_mode": draw(st.sampled_from(["immediate", "newRollout"])),
            "dynamic_stable_scale": draw(st.booleans()),
            "rollback_window": draw(st.sampled_from([0, 0, 1, 2, 3])),
            "progress_deadline": draw(st.sampled_from([60.0, 600.0, 600.0, 600.0])),
        }
    )


class EngineContract(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state: RolloutState = initial_state()
        self.initial: RolloutState = self.state
        self.now = 0.0
        self.log: list[tuple[Event, float, Decision]] = []
        # ----- the model -----
        self.cluster = Cluster()
        self.runs = Verifications()
        self.lives = Lives()
        self.plan = Plan()
        self.next_plan: Plan | None = None
        #: the weights last routed (SetTraffic)
        self.routed: dict[str, int] = {}
        #: a newRollout rollback in progress: (rollout id, revision restored, revision that failed)
        self.restoring: tuple[int, str, str, int] | None = None
        self.bad: frozenset[str] = frozenset()
        self.reached: set[str] = set()
        #: how the engine should classify the measurement being sent
        self._outcome = "successful"
        self.strict_supersede = SUPERSEDE_IS_SAFE

    # ----- driving ---------------------------------------------------------------------------------
    @initialize(plan=contract_plans(), bad=st.sets(st.sampled_from(REVISIONS[1:]), min_size=1))
    def setup(self, plan: Plan, bad: set[str] | None = None) -> None:
        self.state = initial_state(plan)
        self.initial = self.state
        self.plan = plan
        self.bad = frozenset({"v3", "v5"} if bad is None else bad)
        self.apply(Deploy(revision="v1"))
        assert self.state.phase == "live" and self.state.stable == "v1", "first deploy goes live at once"
        self.lives.reached("v1")
        n = self.cluster.asked.get("v1", 0)
        self.cluster.observed("v1", n)
        self.apply(ReplicasObserved(revision="v1", desired=n, ready=n, available=n))

    def apply(self, ev: Event) -> Decision:
        before = self.state
        decision = step(before, ev, self.now)
        note(f"t={self.now:g} {ev!r} -> {decision.state.phase} {decision.rejected or ''}")
        self.promise_1_deterministic(before, ev, decision)
        self.promise_2_crash_safe(before, ev, decision)
        self.fixpoint(decision)
        routed_before = dict(self.routed)
        expected = self.model_step(before, ev, decision)
        self.promise_3_rollback_target(before, ev, decision, routed_before)
        self.promise_4_traffic(before, ev, decision, routed_before)
        self.promise_5_availability(before, ev, decision, routed_before)
        self.promise_6_commands(before, ev, decision)
        self.promise_7_8_verification_and_policy(before, ev, decision, routed_before, expected)
        self.promise_10_bounded(decision)
        self.model_after(before, ev, decision)
        self.state = decision.state
        self.log.append((ev, self.now, decision))
        self._coverage(before, decision)
        return decision

    def _advance(self, dt: float) -> None:
        self.now += dt

    @rule(rev=st.sampled_from(REVISIONS), dt=st.sampled_from([0.0, 0.0, 30.0, 700.0]))
    def deploy(self, rev: str, dt: float) -> None:
        self._advance(dt)
        self.apply(Deploy(revision=rev))

    @rule(data=st.data())
    def observe(self, data: st.DataObject) -> None:
        revs = sorted(self.cluster.asked)
        rev = data.draw(st.sampled_from(revs))
        asked = self.cluster.asked[rev]
        ready = data.draw(st.one_of(st.just(asked), st.just(0), st.integers(0, asked)))
        ev = ReplicasObserved(revision=rev, desired=asked, ready=ready, available=ready)
        self.cluster.observed(rev, ready)
        self.apply(ev)
        again = self.apply(ev)
        assert again.effects == (), "promise 6: the same observation twice adds no effects"

    @rule()
    def converge(self) -> None:
        """The cluster catches up: every revision has the replicas asked for ready."""
        for _ in range(10):  # an observation may make the engine scale another revision: look again
            behind = [(r, n) for r, n in sorted(self.cluster.asked.items()) if self.cluster.ready.get(r) != n]
            if not behind:
                return
            rev, n = behind[0]
            self.cluster.observed(rev, n)
            self.apply(ReplicasObserved(revision=rev, desired=n, ready=n, available=n))

    @rule(data=st.data())
    def measure(self, data: st.DataObject) -> None:
        pending = self.runs.in_flight()
        if not pending:
            # nothing to answer: the cluster catches up, or the next timer fires
            if any(self.cluster.ready.get(r) != n for r, n in self.cluster.asked.items()):
                self.converge()
            else:
                self.tick(0.0, to_wake=True)
            return
        run, metric = data.draw(st.sampled_from(pending))
        outcome = data.draw(st.sampled_from(BAD_OUTCOMES if self.state.canary in self.bad else GOOD_OUTCOMES))
        if outcome == "error":
            ev = Measurement(verification=run.id, metric=metric.plan.name, error="provider timeout")
        elif outcome == "none":
            ev = Measurement(verification=run.id, metric=metric.plan.name, value=None)
        else:
            ev = Measurement(
                verification=run.id, metric=metric.plan.name, value=value_for(metric.plan, outcome == "pass")
            )
        self._outcome = OUTCOME_KIND[outcome]
        self.apply(ev)

    @rule()
    def fail_all(self) -> None:
        """Every measurement in flight fails (a bad revision, for sure): verdicts trip, policies act."""
        for run, metric in self.runs.in_flight():
            if run.over or metric.in_flight_since is None:
                continue
            self._outcome = "failed"
            value = value_for(metric.plan, False)
            self.apply(Measurement(verification=run.id, metric=metric.plan.name, value=value))

    @rule(data=st.data())
    def measure_more(self, data: st.DataObject) -> None:
        """Measurements answered twice as often as other rules fire (verdicts, not timeouts, decide)."""
        self.measure(data)

    @rule(dt=st.sampled_from([0.0, 1.0, 10.0, 60.0, 300.0, 700.0]), to_wake=st.booleans())
    def tick(self, dt: float, to_wake: bool) -> None:
        wake = self.log[-1][2].wake_at if self.log else None
        if to_wake and wake is not None and wake > self.now:
            self.now = wake
        else:
            self.now += dt
        self.apply(Tick())

    @rule(cmd=commands(), dt=st.sampled_from([0.0, 0.0, 60.0, 700.0]))
    def command(self, cmd: Command, dt: float) -> None:
        self._advance(dt)  # commands also arrive with timers due
        self.apply(cmd)

    @rule(plan=contract_plans())
    def spec_change(self, plan: Plan) -> None:
        self.apply(SpecChanged(plan=plan))

    @rule()
    def stale_measurement(self) -> None:
        """A result for a verification that no longer runs changes nothing."""
        before = self.state
        d = self.apply(Measurement(verification="0-gone-x-0", metric="m", value=1.0))
        assert d == step(before, Tick(), self.now), "it acts as a Tick (timers due still fire)"

    # ----- the model -------------------------------------------------------------------------------
    def model_step(self, before: RolloutState, ev: Event, d: Decision) -> dict[str, Any]:
        """Fold the event into the model and return what it predicts for this decision."""
        expected: dict[str, Any] = {"bad": [], "inconclusive": []}
        if d.rejected is not None:
            return expected
        touched: list[RunModel] = []
        for run_id in self._stopped_by_event(before, ev, d):
            self.runs.runs[run_id].over = True
        if isinstance(ev, Measurement):
            run = self.runs.result(
                ev.verification, ev.metric, getattr(self, "_outcome", "successful"), self.now
            )
            self._outcome = "successful"
            if run is not None:
                touched.append(run)
        touched += self.runs.expire(self.now)
        for run in touched:
            if run.over:
                continue
            verdict = run.verdict()  # a verdict is taken when a result (or a timeout) comes in
            run.over = verdict != "Running"
            if verdict in BAD_VERDICTS:
                expected["bad"].append(run)
            elif verdict == "Inconclusive":
                expected["inconclusive"].append(run)
        return expected

    def _stopped_by_event(self, before: RolloutState, ev: Event, d: Decision) -> list[str]:
        """The runs a command or deploy stops before any timer is looked at (and that must be stopped)."""
        active = self.runs.active()
        stop_all = False
        if isinstance(ev, Command) and before.phase in ROLLOUT_PHASES:
            if ev.action in ("pause", "promote", "promoteFull"):
                ids = [r.id for r in active if not r.background]
                self._assert_stopped(ev.action, ids, d)
                return ids
            stop_all = ev.action in ("abort", "rollback")
        if isinstance(ev, Deploy) and before.phase in ROLLOUT_PHASES:
            # the same revision again changes nothing; any other supersedes (or rolls back to the stable)
            stop_all = ev.revision not in (before.canary, before.desired)
        if not stop_all:
            return []
        ids = [r.id for r in active]
        self._assert_stopped(type(ev).__name__, ids, d)
        return ids

    @staticmethod
    def _assert_stopped(what: str, ids: list[str], d: Decision) -> None:
        stopped = {e.verification for e in d.effects if isinstance(e, StopVerification)}
        for run_id in ids:
            assert run_id in stopped, f"{what} stops the running verification {run_id}"

    def model_after(self, before: RolloutState, ev: Event, d: Decision) -> None:
        """Bring the model up to date with what the engine did (effects and notifications)."""
        after = d.state
        if d.rejected is None:
            self._plan_for_event(before, ev, d)
        for e in d.effects:
            if isinstance(e, ScaleRevision):
                self.cluster.scaled(e.revision, e.replicas)
            elif isinstance(e, SetTraffic):
                self.routed = dict(e.weights)
            elif isinstance(e, StopVerification) and e.verification in self.runs.runs:
                self.runs.runs[e.verification].over = True
            elif isinstance(e, Notify) and e.event == "rollout-started":
                self.lives.started(str(e.payload["revision"]))
            elif isinstance(e, Notify) and e.event in ("rollout-finished", "rollout-rolled-back"):
                self.lives.reached(str(e.payload["revision"]))
                if self.next_plan is not None:  # a rollout ended: a spec change received meanwhile applies
                    self.plan, self.next_plan = self.next_plan, None
        if d.rejected is not None:
            return
        keep = {after.stable, after.canary, after.desired, after.rollback.target if after.rollback else None}
        self.lives.trim(self.plan.revision_history_limit, keep)
        if self.restoring is not None and (after.rollout_id != self.restoring[0] or after.phase == "live"):
            self.restoring = None

    def _plan_for_event(self, before: RolloutState, ev: Event, d: Decision) -> None:
        """The plan in force: a spec change applies at once when nothing runs, else when the rollout ends;
        a deploy that starts a rollout takes the latest spec."""
        after = d.state
        if isinstance(ev, SpecChanged):
            if before.phase in ("live", "failed"):
                self.plan, self.next_plan = ev.plan, None
            else:
                self.next_plan = ev.plan
        elif isinstance(ev, Deploy):
            new_rollout = after.rollout_id != before.rollout_id and after.canary == ev.revision
            if (before.phase == "live" and ev.revision != before.desired) or (
                before.phase != "live" and new_rollout
            ):
                self.plan, self.next_plan = self.next_plan or self.plan, None

    # ----- every decision is a fixpoint ------------------------------------------------------------
    def fixpoint(self, d: Decision) -> None:
        if d.rejected is not None:
            return  # a rejected command leaves the state as it was (promise 6), timers and all
        for nothing in (Tick(), Measurement(verification="0-none-x-0", metric="m", value=1.0)):
            again = full_step(d.state, nothing, self.now)  # without the Tick fast path
            assert again.state == d.state and again.effects == (), (
                f"not a fixpoint: {type(nothing).__name__} at the same now changes "
                f"{again.effects or 'the state'}"
            )

    # ----- the promises ----------------------------------------------------------------------------
    def promise_1_deterministic(self, before: RolloutState, event: Event, d: Decision) -> None:
        assert step(before, event, self.now) == d

    def promise_2_crash_safe(self, before: RolloutState, event: Event, d: Decision) -> None:
        restored = RolloutState.from_json(before.to_json())
        assert restored == before, "state round-trips through JSON unchanged"
        assert RolloutState.from_json(before.to_json()) == before, "and through the compact persisted form"
        assert step(restored, event, self.now) == d, "the restored state has the same future"

    def _expected_target(self, before: RolloutState) -> str | None:
        if self.restoring is not None:
            return self.restoring[1]  # a newRollout rollback: the revision it restores
        return self.lives.last_excluding(before.canary)

    def _notified(self, d: Decision, name: str) -> list[dict[str, Any]]:
        return [e.payload for e in d.effects if isinstance(e, Notify) and e.event == name]

    def promise_3_rollback_target(
        self, before: RolloutState, ev: Event, d: Decision, routed: dict[str, int]
    ) -> None:
        after = d.state
        if d.rejected is not None:
            return
        failed = self._notified(d, "rollout-failed")
        aborted = (
            isinstance(ev, Command)
            and ev.action in ("abort", "rollback")
            and before.phase
            in (
                *ROLLOUT_PHASES,
                "failed",
            )
        )
        if failed or (aborted and before.phase in ROLLOUT_PHASES):
            target = self._expected_target(before)
            note(f"rollback expected to {target} (lives {self.lives.order}, restoring {self.restoring})")
            if target is None:
                assert after.phase == "failed", "nothing to roll back to: the rollout rests failed"
                return
            newrollout = (
                failed
                and self.restoring is None
                and self.plan.rollback_mode == "newRollout"
                and target != before.canary
            )
            if newrollout:
                started = [
                    p for p in self._notified(d, "rollout-started") if p.get("initiator") == "failure-policy"
                ]
                assert (
                    started and after.initiator == "failure-policy" and after.rollout_id != before.rollout_id
                ), f"newRollout: a linked rollout of {target} starts"
                # it runs on, or already finished (the target held every step's share)
                assert (after.phase in ROLLOUT_PHASES and after.canary == target) or (
                    after.phase == "live" and after.stable == target
                ), f"newRollout: the linked rollout takes {target} back, got {after.phase} {after.canary}"
                self.restoring = (
                    after.rollout_id,
                    target,
                    str(before.canary),
                    routed.get(str(before.canary), 0),
                )
            else:
                got = after.rollback.target if after.rollback is not None else after.stable
                assert after.phase in ("rolling-back", "live") and got == target, (
                    f"immediate rollback to {target}, got {after.phase} to {got}"
                )
                self._immediate_traffic(target, d, routed)
        elif aborted and before.phase == "failed" and isinstance(ev, Command):
            if ev.action == "rollback" and ev.revision is not None:
                return
            target = self._expected_target(before)
            got = after.rollback.target if after.rollback is not None else after.stable
            if target is None and before.initiator == "failure-policy":
                target = before.canary  # a failed newRollout rollback: the revision it was restoring
            assert got == target, f"a rollback after a failure restores {target}, got {got}"
        if isinstance(ev, Command) and ev.action == "rollback" and before.phase == "live":
            target = ev.revision or self.lives.last_excluding(before.stable)
            fast = target == before.stable or target in self.lives.window(
                before.stable, self.plan.rollback_window
            )
            if fast:
                assert after.phase in ("rolling-back", "live"), f"rollback to {target} is fast-tracked"
                got = after.rollback.target if after.rollback is not None else after.stable
                assert got == target
            else:
                started = self._notified(d, "rollout-started")
                assert started and (
                    (after.phase in ROLLOUT_PHASES and after.canary == target)
                    or (after.phase == "live" and after.stable == target)  # every step passed at once
                ), f"rollback to {target} outside the window runs through all phases"
        if isinstance(ev, Deploy) and before.phase in (*ROLLOUT_PHASES, "rolling-back", "failed"):
            if after.rollout_id != before.rollout_id and after.canary == ev.revision:
                base = self.lives.last_excluding(ev.revision)
                if base is not None:
                    assert after.stable == base, (
                        f"a superseding deploy starts against the last successful revision {base}"
                    )

    def _immediate_traffic(self, target: str, d: Decision, routed: dict[str, int]) -> None:
        """Immediate mode: the target takes the traffic in this decision, as far as its capacity allows."""
        now = self._routed_after(d, routed)
        if self.cluster.ready.get(target, 0) == 0:
            return  # no pods ready: the traffic stays where pods are (promise 5)
        cap = self.cluster.capacity(target, self.plan.replicas)
        want = min(100, max(routed.get(target, 0), cap))
        assert now.get(target, 0) >= want, (
            f"immediate rollback: {target} takes {want}% at once (ready capacity {cap}%), routed {now}"
        )

    @staticmethod
    def _routed_after(d: Decision, routed: dict[str, int]) -> dict[str, int]:
        out = routed
        for e in d.effects:
            if isinstance(e, SetTraffic):
                out = dict(e.weights)
        return out

    @staticmethod
    def _splits(d: Decision, routed: dict[str, int]) -> list[tuple[dict[str, int], dict[str, int]]]:
        """Each traffic split of the decision, paired with the split routed just before it."""
        out, prev = [], routed
        for e in d.effects:
            if isinstance(e, SetTraffic):
                out.append((prev, dict(e.weights)))
                prev = dict(e.weights)
        return out

    def promise_4_traffic(self, before: RolloutState, ev: Event, d: Decision, routed: dict[str, int]) -> None:
        after = d.state
        same_rollout = (
            before.phase in ROLLOUT_PHASES
            and after.phase in ROLLOUT_PHASES
            and before.rollout_id == after.rollout_id
        )
        rolling_back = (
            before.phase == "rolling-back"
            and after.phase == "rolling-back"
            and before.rollback is not None
            and after.rollback is not None
            and before.rollback.target == after.rollback.target
        )
        for prev, now in self._splits(d, routed):
            assert all(isinstance(v, int) and 0 <= v <= 100 for v in now.values())
            assert sum(now.values()) == 100, now
            dead = {r for r in prev if self.cluster.ready.get(r, 0) == 0}
            emergency = (
                prev.get(before.canary or "", 0) > after.canary_weight
            )  # it carried a dead stable's share
            if same_rollout and before.canary is not None and before.canary not in dead and not emergency:
                assert now.get(before.canary, 0) >= prev.get(before.canary, 0), (
                    "the canary's routed weight never decreases mid-rollout"
                )
            if rolling_back and after.rollback is not None and after.rollback.target not in dead:
                target = after.rollback.target
                assert now.get(target, 0) >= prev.get(target, 0), "traffic never moves back during a rollback"
                for rev, v in now.items():
                    if rev != target:
                        assert v <= prev.get(rev, 0), "no revision gains traffic while rolling back"
            if (
                self.restoring is not None
                and after.rollout_id == self.restoring[0]
                and after.phase in ROLLOUT_PHASES
            ):
                failed, share = self.restoring[2], self.restoring[3]
                lost_pods = any(self.cluster.ready.get(r, 0) == 0 for r in prev if now.get(r, 0) < prev[r])
                assert lost_pods or now.get(failed, 0) <= share, (
                    f"the failed revision never gains traffic (had {share}%)"
                )
        if before.phase == "rolling-back" and after.phase == "live" and before.rollback:
            assert self._routed_after(d, routed) == {after.stable: 100}, (
                "after a completed rollback: 0 elsewhere"
            )

    def promise_5_availability(
        self, before: RolloutState, ev: Event, d: Decision, routed: dict[str, int]
    ) -> None:
        ready = self.cluster.ready
        n = self.plan.replicas
        if (
            (isinstance(ev, Deploy) or (isinstance(ev, Command) and ev.action == "retry"))
            and before.phase != "live"
            and d.state.rollout_id != before.rollout_id
            and not self.strict_supersede
        ):
            return  # known engine gap, pinned by test_policy_contract.py::test_supersede_*
        for prev, now in self._splits(d, routed):
            alive = [r for r in now if ready.get(r, 0) > 0]
            for rev, v in now.items():
                if v > 0 and ready.get(rev, 0) == 0:
                    assert not alive, f"traffic to {rev} with no ready replicas while {alive} are ready"
            was_alive = [r for r in prev if prev[r] > 0 and ready.get(r, 0) > 0]
            assert alive or not was_alive, f"traffic moved from ready {was_alive} to pods not ready: {now}"
            if not prev or any(ready.get(r, 0) == 0 for r in prev if now.get(r, 0) < prev[r]):
                continue  # traffic taken from a revision that lost its pods goes wherever pods are
            if d.state.phase != "rolling-back":
                continue  # ahead-of-capacity is judged on the way back (a rollout climbs step by step)
            for rev, v in now.items():
                cap = self.cluster.capacity(rev, n)
                assert v <= max(prev.get(rev, 0), cap), (
                    f"{rev} given {v}% ahead of its ready capacity {cap}% (had {prev.get(rev, 0)}%)"
                )
        after = d.state
        if after.phase == "rolling-back" and after.rollback is not None:
            target = after.rollback.target
            asked = dict(self.cluster.asked)
            for e in d.effects:
                if isinstance(e, ScaleRevision):
                    asked[e.revision] = e.replicas
            assert asked.get(target) == n, "the rollback target is scaled to full"
            for rev, v in self._routed_after(d, routed).items():
                if v > 0 and rev != target:
                    assert asked.get(rev, 0) > 0, f"{rev} still serves {v}%: it keeps its pods"

    def promise_6_commands(self, before: RolloutState, ev: Event, d: Decision) -> None:
        if d.rejected is not None:
            assert isinstance(ev, Command)
            assert d.state == before and d.effects == (), "a rejected command changes nothing"
            assert d.rejected.strip()
        if not isinstance(ev, Command):
            return
        a, phase, accepted = ev.action, before.phase, d.rejected is None
        rollout = phase in ROLLOUT_PHASES
        if a == "abort":
            if phase == "live":
                assert accepted and d == step(before, Tick(), self.now), "abort on live is a no-op"
            elif phase == "rolling-back":
                assert not accepted, "abort while rolling back is rejected"
            else:
                has_target = self._expected_target(before) is not None
                assert accepted == has_target, (
                    f"abort in {phase} {'must be accepted' if has_target else 'has no target'} ({d.rejected})"
                )
        elif a == "pause":
            timed = (
                phase == "paused" and before.pause_reason == "pause-step" and before.pause_until is not None
            )
            ok = phase in ("in-progress", "verifying") or timed
            assert accepted == ok, f"pause in {phase} ({before.pause_reason}): {d.rejected}"
        elif a == "resume":
            ok = (
                phase == "paused" and before.pause_reason != "pause-step"
            )  # promote moves on from a pause step
            assert accepted == ok, f"resume in {phase} ({before.pause_reason}): {d.rejected}"
        elif a == "promoteFull":
            assert accepted == rollout, f"promoteFull in {phase}: {d.rejected}"
        elif a == "promote":
            if not rollout:
                assert not accepted, f"promote in {phase} is rejected"
        elif a == "retry":
            if accepted:
                assert phase == "failed" or (phase == "live" and before.degraded), f"retry in {phase}"
        elif a == "rollback" and phase == "rolling-back":
            assert not accepted, "rollback while rolling back is rejected"
        elif a == "rollback" and rollout:
            ok = ev.revision is None or ev.revision == self._expected_target(before)
            assert accepted == (ok and self._expected_target(before) is not None), (
                f"rollback {ev.revision} mid-rollout: {d.rejected}"
            )
        elif a == "rollback" and phase == "live":
            if ev.revision == before.stable or (
                ev.revision is None and self.lives.last_excluding(before.stable) is None
            ):
                assert not accepted, f"rollback to {ev.revision} from live with nothing to go back to"
            elif ev.revision is None:
                assert accepted, "rollback to the previous successful revision is accepted"

    def promise_7_8_verification_and_policy(
        self,
        before: RolloutState,
        ev: Event,
        d: Decision,
        routed: dict[str, int],
        expected: dict[str, Any],
    ) -> None:
        after = d.state
        self._discover_runs(d)
        self._check_measurements(before, d)
        if d.rejected is not None:
            return
        failed = self._notified(d, "rollout-failed")
        paused = self._notified(d, "rollout-paused")
        policy_pause = [p for p in paused if p.get("reason") == "failure-policy"]
        inconclusive = [p for p in paused if p.get("reason") == "inconclusive"]
        recorded = (
            after.recorded_failures != before.recorded_failures and after.rollout_id == before.rollout_id
        )
        reasons = [str(p.get("reason", "")) for p in failed] + [
            str(p.get("message", "")) for p in policy_pause
        ]
        if recorded:
            reasons.append(after.recorded_failures[-1] if after.recorded_failures else "")
        if (
            after.failure_reason != before.failure_reason
            and after.failure_reason
            and before.phase in ROLLOUT_PHASES
        ):
            reasons.append(after.failure_reason)
        deadline = any("ProgressDeadlineExceeded" in r for r in reasons)
        verification = any(r.startswith("verification") for r in reasons)
        if deadline:
            assert any("ProgressDeadlineExceeded" in str(p.get("reason", "")) for p in failed), (
                "deadline failures roll back under every policy"
            )
            assert not any("ProgressDeadlineExceeded" in str(p.get("message", "")) for p in policy_pause)
            event("deadline failure")
            return
        in_rollout = before.phase in ROLLOUT_PHASES
        bad = expected["bad"] if in_rollout else []
        if verification or failed:
            assert bad, f"a failure the verification rules do not explain: {reasons}"
        if inconclusive:
            assert expected["inconclusive"], "an inconclusive pause the verification rules do not explain"
        if expected["inconclusive"] and in_rollout and before.phase != "paused" and not bad:
            assert inconclusive, "an inconclusive verdict pauses the rollout"
        if not bad:
            return
        action = "rollback" if self.restoring is not None else self.plan.failure_action
        event(f"verification failure under {action}")
        if action == "rollback":
            assert failed, f"rollback policy: the failure is notified and rolled back ({reasons})"
        elif action == "pause":
            assert not failed, "pause policy never rolls back"
            assert policy_pause or before.phase == "paused", "pause policy pauses the rollout"
            assert after.phase == "paused"
            now = self._routed_after(d, routed)
            losers = [r for r, share in routed.items() if now.get(r, 0) < share]
            # no traffic change, but for availability: traffic leaves a revision that has no ready pods
            assert all(self.cluster.reported.get(r, 0) == 0 for r in losers), (
                f"pause policy changes no traffic: {routed} -> {now}"
            )
        else:
            assert not failed and not policy_pause, "promote policy goes on"
            templates = {run.template.name for run in bad}
            assert recorded and any(f"'{t}'" in after.recorded_failures[-1] for t in templates), (
                f"promote policy records the latest failure last: {after.recorded_failures}"
            )

    def _discover_runs(self, d: Decision) -> None:
        for run in d.state.verifications:
            if run.id not in self.runs.runs:
                template = d.state.plan.templates[run.template]  # checked against the model's plan
                self.runs.start(run.id, template, run.background, self.now)

    def _check_measurements(self, before: RolloutState, d: Decision) -> None:
        """Measurements are asked exactly when due: not before initialDelay / interval, not past count."""
        asked = set()
        for e in d.effects:
            if not isinstance(e, StartMeasurement):
                continue
            run = self.runs.runs.get(e.verification)
            assert run is not None and not run.over, f"a measurement for a run that is over: {e.verification}"
            m = run.metrics[e.metric.name]
            assert m.phase == "Running", f"{e.metric.name} already has its verdict ({m.phase}): no more"
            assert m.in_flight_since is None, f"{e.metric.name} is already being measured"
            assert m.due is not None and m.due <= self.now, (
                f"{e.metric.name} measured at {self.now:g}, due at {m.due} (initialDelay / interval)"
            )
            m.in_flight_since = self.now
            asked.add((run.id, m.plan.name))
        after = d.state
        if after.phase not in ROLLOUT_PHASES or d.rejected is not None:
            return
        stopped = {e.verification for e in d.effects if isinstance(e, StopVerification)}
        for run, m in self.runs.due_now(self.now):
            if run.id in stopped:
                continue
            if after.phase == "paused" and after.pause_reason == "manual" and not run.background:
                continue
            assert (run.id, m.plan.name) in asked, f"{m.plan.name} of {run.id} is due at {m.due}: measure it"

    def promise_10_bounded(self, d: Decision) -> None:
        s = d.state
        size = len(s.to_json(exclude={"plan", "next_plan"}, exclude_defaults=False))
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

    @invariant()
    def plan_in_force(self) -> None:
        assert self.state.plan == self.plan, "the plan in force (a spec change applies when the rollout ends)"
        assert self.state.next_plan == self.next_plan

    @invariant()
    def routed_is_the_state(self) -> None:
        if self.log:
            assert self.state.weights == self.routed, "the state's weights are the ones routed"

    def _coverage(self, before: RolloutState, d: Decision) -> None:
        s = d.state
        label = s.phase if s.phase != "paused" else f"paused ({s.pause_reason})"
        self.reached.add(label)
        if s.initiator == "failure-policy" and s.phase in ROLLOUT_PHASES:
            self.reached.add("newRollout rollback")
        if s.recorded_failures:
            self.reached.add("failure recorded by the promote policy")
        if any(isinstance(e, Notify) and e.event == "rollout-failed" for e in d.effects):
            self.reached.add("rollout-failed")

    def teardown(self) -> None:
        """Promise 1, second half: the event log replayed from the start reproduces every decision."""
        for label in sorted(self.reached):
            event(f"reached {label}")
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
