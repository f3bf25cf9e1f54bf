"""Rehearsing an external verification's fallback: a scripted verifier that answers in time, late, never or
wrong (examples/scenarios/external-verification-never-answers.yaml and variants of it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ebbtide.core.spec import SpecError
from ebbtide.core.verification import NO_ANSWER
from ebbtide.sim.outcome import Outcome
from ebbtide.sim.runner import load_scenario, simulate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "scenarios" / "external-verification-never-answers.yaml"
SPECS = ROOT / "examples" / "specs" / "external-verification.yaml"
DEPLOY_AT = 60.0
TIMEOUT = 600.0


def outcome(
    tmp_path: Path, verifier: str = "{metric: qa-suite, answer: never, after: 3m}", bad: str = ""
) -> Outcome:
    text = EXAMPLE.read_text().replace("../specs/external-verification.yaml", str(SPECS))
    text = text.replace("{metric: qa-suite, answer: never, after: 3m}", verifier)
    if bad:
        text = text.replace("    v2:\n", f"    v2:\n      misbehaveAt: {{time: {bad}}}\n")
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    (result,) = simulate(load_scenario(path), runs=1, seed=1)
    return result.outcome


def test_the_example_rolls_back_at_the_timeout_although_v2_is_healthy() -> None:
    (result,) = simulate(load_scenario(EXAMPLE), runs=1, seed=1)
    out = result.outcome
    assert out.result == "rolled-back" and out.live_revision == "v1" and out.false_rollback
    assert out.rollback_reason is not None and NO_ANSWER in out.rollback_reason
    assert out.time_to_rollback == 0.0  # immediate: v1 serves everything in the same decision
    assert out.detected_at is not None and DEPLOY_AT + TIMEOUT <= out.detected_at < DEPLOY_AT + TIMEOUT + 60
    started = [n for n in result.notifications if n["event"] == "start-external-verification"]
    assert len(started) == 1


def test_an_answer_in_time_promotes(tmp_path: Path) -> None:
    out = outcome(tmp_path, "{metric: qa-suite, answer: correct, after: 3m}")
    assert out.result == "promoted" and out.live_revision == "v2"


def test_a_late_answer_does_not_save_the_rollout(tmp_path: Path) -> None:
    out = outcome(tmp_path, "{metric: qa-suite, answer: passed, after: 15m}")
    assert out.result == "rolled-back" and NO_ANSWER in (out.rollback_reason or "")


def test_a_wrong_answer_rolls_back_a_healthy_release(tmp_path: Path) -> None:
    out = outcome(tmp_path, "{answer: wrong, after: 1m}")
    assert out.result == "rolled-back" and out.false_rollback
    assert "'failed'" in (out.rollback_reason or "")


def test_a_correct_verifier_catches_a_bad_release(tmp_path: Path) -> None:
    out = outcome(tmp_path, "{answer: correct, after: 1m}", bad="0s")
    assert out.result == "rolled-back" and not out.false_rollback


@pytest.mark.parametrize(
    ("verifiers", "field", "reason"),
    [
        (
            "[]",
            "spec.externalVerifiers",
            "metric 'qa-suite' of template 'qa-sign-off' is an external verification",
        ),
        ("[{metric: qa, answer: passed}]", "spec.externalVerifiers[0].metric", "'qa' is not an external"),
        ("[{answer: maybe}]", "spec.externalVerifiers[0].answer", ""),
        ("[{answer: passed, after: soon}]", "spec.externalVerifiers[0].after", ""),
    ],
)
def test_bad_verifiers_are_located(tmp_path: Path, verifiers: str, field: str, reason: str) -> None:
    text = EXAMPLE.read_text().replace("../specs/external-verification.yaml", str(SPECS))
    text = text.replace("  externalVerifiers:\n    - {metric: qa-suite, answer: never, after: 3m}\n", "")
    text = text.replace("  traffic:", f"  externalVerifiers: {verifiers}\n  traffic:")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    found = [p for p in info.value.problems if p.field == field]
    assert found, info.value.problems
    assert found[0].file == str(path) and reason in found[0].reason
