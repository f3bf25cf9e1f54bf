"""Mutation check: does the test suite catch realistic slips in the engine? (Not run by CI.)

Each slip below is a small text patch to one source file (old text -> new text). For every slip the script
copies the tree to a temporary directory, applies that one patch, runs pytest there (the whole suite or the
tests named with ``--tests``) with a time limit, and reports whether the suite caught it (a test failed or
timed out) or the slip survived. A patch whose old text is no longer in the source is reported as
``n/a`` (the code moved on: update the slip).

    python bench/mutation.py                                  # every slip, whole suite
    python bench/mutation.py --tests tests/core/test_contract.py tests/core/test_policy_contract.py
    python bench/mutation.py --only split-share-falls --only swap-rollback-modes -v
    python bench/mutation.py --list

Run before a release; the figures are recorded in docs/testing.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: left out of the copy (everything else is copied: tests read docs, examples, the README)
SKIP = {".git", ".venv", ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache", "ebbtide.egg-info"}
TREE = (
    "core",
    "adapters",
    "sim",
    "cli",
    "server",
    "tests",
    "typing_root",
    "examples",
    "docs",
    "pyproject.toml",
)


@dataclass(frozen=True)
class Slip:
    name: str
    what: str
    #: (file, old text, new text); every patch of a slip is applied
    patches: tuple[tuple[str, str, str], ...]


E = "core/engine.py"
V = "core/verification.py"
S = "core/spec.py"

SLIPS: tuple[Slip, ...] = (
    # ----- the slips issue 6 lists -------------------------------------------------------------------
    Slip(
        "split-share-falls",
        "a capacity-capped split lets a revision's share fall below what it already had",
        (("core/traffic.py", "min(want, max(cap, prev.get(rev, 0)))", "min(want, cap)"),),
    ),
    Slip(
        "promote-full-keeps-verification",
        "promoteFull leaves the running phase verification going",
        (
            (
                E,
                "        _stop_runs(w, background_too=False)\n"
                '        w.notify("rollout-promoted", step=w.step_index, full=True)',
                '        w.notify("rollout-promoted", step=w.step_index, full=True)',
            ),
        ),
    ),
    Slip(
        "rollback-window-plus-one",
        "rollbackWindow counts one revision too many",
        ((E, "return target in previous[:window]", "return target in previous[: window + 1]"),),
    ),
    Slip(
        "rolled-back-not-last-successful",
        'a completed rollback does not make its target the "last successful" revision',
        (
            (
                E,
                "    w.degraded = w.desired != target\n"
                '    _history_touch(w, target, "live", reached_live=True)',
                '    w.degraded = w.desired != target\n    _history_status(w, target, "live")',
            ),
        ),
    ),
    Slip(
        "supersede-keeps-stable",
        "a superseding deploy does not reset the stable to the last successful revision",
        (
            (
                E,
                "    if base is not None:\n        w.stable = base",
                "    if base is not None and w.stable is None:\n        w.stable = base",
            ),
        ),
    ),
    Slip(
        "new-rollout-abort-older",
        "abort or failure of a newRollout rollback aims at an older revision, not the one it restores",
        (
            (
                E,
                '    if w.initiator == "failure-policy" and w.canary is not None:\n        return w.canary',
                '    if w.initiator == "failure-policy" and w.canary is None:\n        return w.canary',
            ),
        ),
    ),
    Slip(
        "spec-change-never-applied",
        "a spec change received mid-rollout is never applied when the rollout ends (wrong guard)",
        (
            (
                E,
                '        w.notify("rollout-rolled-back", revision=rev, reason=w.failure_reason)\n'
                "    if w.next_plan is not None:\n        w.plan = w.next_plan",
                '        w.notify("rollout-rolled-back", revision=rev, reason=w.failure_reason)\n'
                "    if w.next_plan is not None and w.canary is not None:\n        w.plan = w.next_plan",
            ),
        ),
    ),
    Slip(
        "promote-keeps-first-failures",
        "the promote policy keeps the first recorded failures instead of the latest",
        (
            (
                E,
                "(*w.recorded_failures, reason)[-RECORDED_FAILURES:]",
                "(*w.recorded_failures, reason)[:RECORDED_FAILURES]",
            ),
        ),
    ),
    Slip(
        "compile-drops-rollback-window",
        "spec compilation drops rollbackWindow",
        ((S, "rollback_window=r.spec.rollback_window.revisions if", "rollback_window=0 if"),),
    ),
    Slip(
        "compile-drops-dynamic-stable-scale",
        "spec compilation drops dynamicStableScale",
        ((S, "dynamic_stable_scale=r.spec.dynamic_stable_scale,", "dynamic_stable_scale=False,"),),
    ),
    Slip(
        "compile-consecutive-error-limit-0-is-4",
        "spec compilation turns consecutiveErrorLimit: 0 into the default 4",
        (
            (
                S,
                "                    if m.consecutive_error_limit is not None\n                    else 4",
                "                    if m.consecutive_error_limit\n                    else 4",
            ),
        ),
    ),
    Slip(
        "swap-rollback-modes",
        "immediate and newRollout modes swapped",
        (
            (
                E,
                'if plan.rollback_mode == "newRollout" and target != w.canary:',
                'if plan.rollback_mode == "immediate" and target != w.canary:',
            ),
        ),
    ),
    Slip(
        "pause-policy-rolls-back",
        "the pause policy rolls back",
        ((E, '    if action == "pause":\n', '    if action == "paused":\n'),),
    ),
    Slip(
        "dry-run-counted",
        "dry-run metrics change the verdict",
        (
            (
                V,
                "            if not dry and (worst is None or key < worst):",
                "            if worst is None or key < worst:",
            ),
        ),
    ),
    Slip(
        "initial-delay-ignored",
        "initialDelay ignored: the first measurement is taken at once",
        ((V, "next_at=now + m.initial_delay", "next_at=now"),),
    ),
    Slip(
        "rejected-command-changes-state",
        "promote stops every verification before it is rejected, and the rejection keeps the change",
        (
            (
                E,
                "return Decision(state=state, effects=(), wake_at=wake_at(state, now), rejected=reason)",
                "return Decision(state=w.freeze(state), effects=tuple(w.effects), wake_at=None, "
                "rejected=reason)",
            ),
            (
                E,
                "        st = _current_step(w)\n        if st is not None and st.kind in",
                "        _stop_runs(w, background_too=True)\n        st = _current_step(w)\n"
                "        if st is not None and st.kind in",
            ),
        ),
    ),
    Slip(
        "abort-live-rolls-back",
        "abort on a live (fully promoted) rollout rolls back",
        ((E, '            return None if w.canary is None else "nothing to abort"', "            pass"),),
    ),
    # ----- more slips of the same kinds ----------------------------------------------------------------
    Slip(
        "failure-limit-not-strict",
        "failureLimit trips at the limit, not strictly above",
        ((V, "if failed > metric.failure_limit:", "if failed >= metric.failure_limit:"),),
    ),
    Slip(
        "inconclusive-limit-not-strict",
        "inconclusiveLimit trips at the limit",
        (
            (
                V,
                "if inconclusive > metric.inconclusive_limit:",
                "if inconclusive >= metric.inconclusive_limit:",
            ),
        ),
    ),
    Slip(
        "error-limit-off-by-one",
        "consecutiveErrorLimit trips one error late",
        (
            (
                V,
                "if consecutive_error > metric.consecutive_error_limit:",
                "if consecutive_error > metric.consecutive_error_limit + 1:",
            ),
        ),
    ),
    Slip(
        "deadline-follows-policy",
        "a progress-deadline failure follows the failure policy instead of rolling back",
        ((E, 'action = "rollback" if deadline or w.initiator', 'action = "rollback" if w.initiator'),),
    ),
    Slip(
        "count-one-extra",
        "a metric takes one measurement more than its count",
        ((V, "if want is not None and count >= want:", "if want is not None and count > want:"),),
    ),
    Slip(
        "interval-ignored",
        "the next measurement is due at once instead of after the interval",
        ((V, "            next_at = now + (metric.interval or 0.0)", "            next_at = now"),),
    ),
    Slip(
        "rollback-ignores-capacity",
        "a rollback routes to its target ahead of the target's ready capacity",
        ((E, "        caps = {target: _share(w, target)}", "        caps = {}"),),
    ),
    Slip(
        "new-rollout-restarts-from-zero",
        "a newRollout rollback starts its target from 0%: the failed revision gains traffic",
        (
            (
                E,
                "original=w.rollout_id, share=max(0, min(100, share)))",
                "original=w.rollout_id, share=0)",
            ),
        ),
    ),
    Slip(
        "rollback-target-may-be-canary",
        "the rollback target may be the revision being rolled out",
        (
            (
                E,
                "    return w.last_successful_excluding(w.canary)\n",
                "    return w.last_successful_excluding(None)\n",
            ),
        ),
    ),
    Slip(
        "serving-revision-scaled-down",
        "a rollback scales down a revision that still serves traffic",
        (
            (
                E,
                "out[rev] = count  # still serving: keep it until the target carries its share",
                "pass",
            ),
        ),
    ),
    Slip(
        "pause-command-from-paused",
        "pause while paused is accepted and turns a failure-policy pause into a manual one",
        (
            (
                E,
                '        if w.phase == "paused" and not _at_timed_pause(w):\n'
                '            return f"already paused ({w.pause_reason})"\n',
                "",
            ),
        ),
    ),
    Slip(
        "fast-track-ignores-stable",
        "a rollback to the stable revision is not fast-tracked",
        ((E, "    if target == w.stable:\n        return True\n    window", "    window"),),
    ),
)


def _copy_tree(root: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    for src in sorted(root.iterdir()):
        if src.name in SKIP:
            continue
        name = src.name
        if src.is_dir():
            shutil.copytree(src, dest / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)


def _apply(tree: Path, slip: Slip) -> str | None:
    """Apply the slip's patches; return why it does not apply, or None."""
    for file, old, new in slip.patches:
        path = tree / file
        text = path.read_text()
        if text.count(old) != 1:
            return f"{file}: the text to patch occurs {text.count(old)} times"
        path.write_text(text.replace(old, new))
    return None


def _run(
    tree: Path,
    tests: list[str],
    timeout: float,
    verbose: bool,
    profile: str = "mutation",
    extra: tuple[str, ...] = (),
) -> tuple[str, float]:
    # the CI examples without shrinking (tests/conftest.py): a caught slip is reported at once
    env = dict(os.environ, PYTHONPATH=str(tree / "typing_root"), HYPOTHESIS_PROFILE=profile)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *extra, *tests]
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "caught (timeout)", time.monotonic() - start
    took = time.monotonic() - start
    if verbose:
        print(done.stdout[-3000:], done.stderr[-2000:], sep="\n")
    if done.returncode == 0:
        return "SURVIVED", took
    if done.returncode in (1, 3):  # tests failed (3: internal error counts as caught only with a failure)
        failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
        first = failed[0][7:].split(" ")[0].rsplit("/", 1)[-1] if failed else "error"
        return f"caught ({first})", took
    return f"error (pytest exit {done.returncode})", took


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tests", nargs="*", default=["tests"], help="test paths to run (default: tests)")
    ap.add_argument("--only", action="append", default=[], help="run only this slip (repeatable)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per slip (a hang counts as caught)")
    ap.add_argument("--list", action="store_true", help="list the slips and exit")
    ap.add_argument(
        "--root", type=Path, default=ROOT, help="the source tree to mutate (default: this checkout)"
    )
    ap.add_argument("--workers", type=int, default=0, help="pytest-xdist workers (default: none)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    slips = [s for s in SLIPS if not args.only or s.name in args.only]
    if args.list:
        for s in slips:
            print(f"{s.name:40} {s.what}")
        return 0
    with tempfile.TemporaryDirectory(prefix="ebbtide-mutation-") as tmp:
        clean = Path(tmp) / "clean"
        _copy_tree(args.root, clean)
        extra = ("-n", str(args.workers)) if args.workers else ()
        baseline, took = _run(clean, args.tests, args.timeout, args.verbose, profile="ci", extra=extra)
        print(f"{'(unmutated)':40} {baseline:45} {took:6.1f}s", flush=True)
        if baseline != "SURVIVED":
            print("the suite fails without any slip: fix that first", file=sys.stderr)
            return 2
        caught = applicable = 0
        for s in slips:
            tree = Path(tmp) / s.name
            _copy_tree(args.root, tree)
            why = _apply(tree, s)
            if why is not None:
                print(f"{s.name:40} {'n/a: ' + why}", flush=True)
                shutil.rmtree(tree)
                continue
            outcome, took = _run(tree, args.tests, args.timeout, args.verbose, extra=extra)
            applicable += 1
            caught += outcome.startswith("caught")
            print(f"{s.name:40} {outcome:70} {took:6.1f}s", flush=True)
            shutil.rmtree(tree)
        print(f"caught {caught} of {applicable} slips ({' '.join(args.tests)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
