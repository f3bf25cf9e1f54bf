"""A run's outcome agrees with its timeline.

The oracle reads only the timeline (states, rollout initiators, stable and canary revisions), never the
notifications or the engine state the tracker reads: the two derivations must agree for every run.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ebbtide.sim.outcome import Outcome
from ebbtide.sim.runner import aggregate, load_scenario, replay_run, simulate

from .scenarios import FAILING, HEALTHY, TEMPLATE, load, rollout_spec, strategy

COMMANDS = ("promote", "promoteFull", "pause", "resume", "abort", "retry", "rollback")


def came_back(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Did the transition ``before -> after`` into live bring back an older revision?"""
    if before["state"] == "rolling-back" or before["initiator"] in ("rollback", "failure-policy"):
        return True
    if (
        before["state"] == "live"
    ):  # live -> live: the first deploy (promoted) or an instant fast-track rollback
        return before["stable"] is not None
    return after["stable"] != before["canary"]  # a forward rollout ended, but not with its canary live


def expected(timeline: list[dict[str, Any]]) -> dict[str, Any]:
    """result, rolled_back and whether a rollback reason is due, from the timeline alone."""
    settled = "promoted" if timeline[0]["state"] == "live" and timeline[0]["stable"] else None
    rolled_back = False
    for before, after in pairwise(timeline):
        if after["state"] == "rolling-back" or after["initiator"] in ("rollback", "failure-policy"):
            rolled_back = True
        into_live = after["state"] == "live" and (
            before["state"] != "live" or before["stable"] != after["stable"]
        )
        if into_live and after["stable"] is not None:
            back = came_back(before, after)
            rolled_back = rolled_back or back
            settled = "rolled-back" if back else "promoted"
    final = timeline[-1]["state"]
    if final == "live":
        result = settled or "unfinished"
    elif final in ("failed", "paused"):
        result = final
    else:
        result = "unfinished"
    return {"result": result, "rolled_back": rolled_back}


def check(outcome: Outcome, timeline: list[dict[str, Any]]) -> None:
    want = expected(timeline)
    assert outcome.final_state == timeline[-1]["state"]
    assert outcome.result == want["result"], timeline
    assert outcome.rolled_back == want["rolled_back"], timeline
    assert (outcome.rollback_reason is not None) == outcome.rolled_back
    assert outcome.live_revision == timeline[-1]["stable"]
    assert outcome.degraded == timeline[-1]["degraded"]


# ----- the cases a user recognises -------------------------------------------------------------------------
def test_a_completed_manual_rollback_is_a_rollback(tmp_path: Path) -> None:
    sc = load(
        tmp_path,
        revisions={"v1": HEALTHY, "v2": HEALTHY},
        actions=[{"at": "1m", "action": "deploy", "revision": "v2"}, {"at": "30m", "action": "rollback"}],
    )
    r = replay_run(sc, 1, 0)
    assert r.outcome.live_revision == "v1"
    assert r.outcome.rolled_back and r.outcome.result == "rolled-back"
    assert r.outcome.rollback_reason == "rollback to revision v1 requested"
    assert r.outcome.failure_reason is None and r.outcome.detected_at is None
    check(r.outcome, r.timeline)


def test_rolled_back_then_retried_to_promotion_is_promoted(tmp_path: Path) -> None:
    fixed = dict(FAILING, attempts=[{"misbehaveAt": None}])  # the retry of v2 is healthy
    sc = load(
        tmp_path,
        revisions={"v1": HEALTHY, "v2": fixed},
        actions=[{"at": "1m", "action": "deploy", "revision": "v2"}, {"at": "30m", "action": "retry"}],
    )
    r = replay_run(sc, 1, 0)
    o = r.outcome
    assert o.live_revision == "v2" and not o.degraded
    assert o.result == "promoted" and o.rolled_back  # it did roll back on the way
    assert o.rollback_reason is not None and "success-rate" in o.rollback_reason
    assert o.time_to_detect is not None and o.time_to_live is not None
    check(o, r.timeline)


def test_pause_policy_failure_is_no_rollback(tmp_path: Path) -> None:
    sc = load(tmp_path, specs=[TEMPLATE, strategy(), rollout_spec(policy="pause")])
    o = replay_run(sc, 1, 0).outcome
    assert o.result == "paused" and not o.rolled_back
    assert o.rollback_reason is None
    assert o.failure_reason is not None and "success-rate" in o.failure_reason


def test_promote_policy_records_failures_apart_from_rollbacks(tmp_path: Path) -> None:
    sc = load(tmp_path, specs=[TEMPLATE, strategy(), rollout_spec(policy="promote")])
    o = replay_run(sc, 1, 0).outcome
    assert o.result == "promoted" and o.live_revision == "v2"
    assert not o.rolled_back and o.rollback_reason is None
    assert len(o.recorded_failures) >= 1 and all("success-rate" in f for f in o.recorded_failures)
    assert o.failure_reason == o.recorded_failures[0]


# ----- the property -----------------------------------------------------------------------------------------
behaviours = st.sampled_from(
    [
        HEALTHY,
        FAILING,
        dict(FAILING, attempts=[{"misbehaveAt": None}]),
        dict(HEALTHY, attempts=[{"misbehaveAt": {"weight": 20}}]),
        {"readiness": {"delay": "10s"}, "crashLoop": True, "signals": {"sr": 0.99}},
    ]
)
actions = st.lists(st.tuples(st.integers(61, 3000), st.sampled_from(COMMANDS)), max_size=5)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    policy=st.sampled_from(
        [("rollback", "immediate"), ("rollback", "newRollout"), ("pause", ""), ("promote", "")]
    ),
    v2=behaviours,
    script=actions,
    redeploy=st.tuples(st.sampled_from([None, "v1", "v2"]), st.integers(61, 3000)),
    seed=st.integers(0, 3),
)
def test_outcome_agrees_with_the_timeline(
    tmp_path: Path,
    policy: tuple[str, str],
    v2: dict[str, Any],
    script: list[tuple[int, str]],
    redeploy: tuple[str | None, int],
    seed: int,
) -> None:
    acts: list[dict[str, Any]] = [{"at": "1m", "action": "deploy", "revision": "v2"}]
    acts += [{"at": at, "action": name} for at, name in script]
    if redeploy[0] is not None:
        acts.append({"at": redeploy[1], "action": "deploy", "revision": redeploy[0]})
    sc = load(
        tmp_path,
        specs=[TEMPLATE, strategy(), rollout_spec(policy=policy[0], mode=policy[1] or "immediate")],
        revisions={"v1": HEALTHY, "v2": v2},
        actions=acts,
        duration="1h",
    )
    r = replay_run(sc, seed, 0)
    event(f"result {r.outcome.result}, rolled back {r.outcome.rolled_back}")
    check(r.outcome, r.timeline)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_bundled_scenarios_outcomes_agree_with_their_timelines(example: str) -> None:
    scenario = load_scenario(EXAMPLES / example)
    for r in simulate(scenario, runs=5, seed=3, keep_timelines=True):
        check(r.outcome, r.timeline)


def test_the_aggregate_counts_failures_apart_from_rollbacks(tmp_path: Path) -> None:
    sc = load(tmp_path, specs=[TEMPLATE, strategy(), rollout_spec(policy="pause")])
    s = aggregate(simulate(sc, runs=4, seed=1))
    assert s.results["paused"] == 4 and s.rollback_reasons == {}
    assert list(s.failure_reasons.values()) == [4]
    assert next(iter(s.failure_reasons)).startswith("verification 'health' failed")


def test_every_recorded_failure_is_kept_past_the_engines_bound(tmp_path: Path) -> None:
    # the engine keeps the latest five recorded failures; the outcome keeps them all, in order
    many = strategy([{"setWeight": 20}] + [{"verification": {"templateNames": ["health"]}}] * 7)
    sc = load(tmp_path, specs=[TEMPLATE, many, rollout_spec(policy="promote")])
    o = replay_run(sc, 1, 0).outcome
    assert o.result == "promoted" and len(o.recorded_failures) > 5
    assert o.failure_reason == o.recorded_failures[0]
