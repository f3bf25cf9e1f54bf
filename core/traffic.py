"""Traffic and replica arithmetic: pure functions over integers (no state, no effects).

Two ways to give a canary its share, as in Argo Rollouts:

- **With a traffic router** (Istio, NGINX, SMI, ALB, Gateway API, ...) the router splits requests by weight,
  so the canary runs ``ceil(replicas * weight%)`` pods and the split moves only as far as ready capacity
  allows (:func:`split`).
- **Without one** (a *basic canary*, Argo's default) the Service sends requests to every ready pod of both
  revisions alike, so the weight *is* the pod ratio: :func:`basic_canary_counts` picks the pod counts whose
  ratio is closest to the weight, :func:`basic_canary_scale` moves there within the surge/unavailable budget
  (never more than ``replicas + maxSurge`` pods asked for, never fewer than ``replicas - maxUnavailable``
  ready), and :func:`pod_ratio` reports the split the ready pods give.

Properties of each function: tests/core/test_traffic.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def ceil_pct(replicas: int, weight: int) -> int:
    """The pods a ``weight``% share of ``replicas`` needs, rounded up."""
    return math.ceil(replicas * weight / 100.0)


def positive(counts: dict[str, int]) -> dict[str, int]:
    """The entries above zero (the dict itself when there is nothing to drop: callers pass a fresh dict)."""
    for v in counts.values():
        if v <= 0:
            return {k: v for k, v in counts.items() if v > 0}
    return counts


def split(desired: dict[str, int], prev: Mapping[str, int], caps: Mapping[str, int]) -> dict[str, int]:
    """Move traffic towards ``desired``, but a capped revision takes no more than its ready capacity (and
    never less than it already had); the shortfall stays with the revisions that had it."""
    out: dict[str, int] = {}
    short = 100
    for rev, want in desired.items():
        cap = caps.get(rev)
        if cap is not None:  # min(want, max(cap, had)), spelt out: this runs on every settle pass
            had = prev.get(rev, 0)
            cap = cap if cap > had else had
            want = cap if cap < want else want
        out[rev] = want
        short -= want
    if short <= 0:  # the common case: every wanted share fits its capacity
        for want in out.values():  # (:func:`positive`, inlined: this runs on every settle pass)
            if want <= 0:
                return {r: v for r, v in out.items() if v > 0}
        return out
    # the shortfall stays with the revisions that had it: first those leaving, then the wanted ones
    for leaving in (True, False):
        for rev in sorted(prev):
            if short <= 0:
                break
            have = out.get(rev, 0)
            if prev[rev] > have and (rev not in desired) == leaving:
                give = min(short, prev[rev] - have)
                out[rev] = have + give
                short -= give
    if short > 0:
        first = next(iter(desired))
        out[first] += short
    return positive(out)


# --------------------------------------------------------------------------------------- basic canary


def basic_canary_counts(replicas: int, weight: int, max_surge: int) -> tuple[int, int]:
    """(canary, stable) pod counts whose ratio is closest to ``weight``%.

    The total is ``replicas``, or one more when ``max_surge`` allows it and that gets closer (4 replicas at
    20%: 1 canary + 4 stable is exactly 20%, where 1 + 3 would be 25%). A weight strictly between 0 and 100
    runs at least one pod of each revision whenever ``replicas`` >= 2 (a user asking for 1% expects a canary
    pod). Ties prefer fewer pods, then the larger canary."""
    if replicas <= 0:
        return 0, 0
    if weight <= 0:
        return 0, replicas
    if weight >= 100:
        return replicas, 0
    totals = (replicas, replicas + 1) if max_surge > 0 else (replicas,)
    best: tuple[float, int, int] | None = None
    for strict in (True, False):  # first only options with a pod of each revision
        for total in totals:
            exact = total * weight / 100.0
            for canary in sorted({math.floor(exact), math.ceil(exact)}, reverse=True):
                if strict and not 1 <= canary <= total - 1:
                    continue
                if not 0 <= canary <= total:
                    continue
                key = (abs(100.0 * canary / total - weight), total, -canary)
                if best is None or key < best:
                    best = key
        if best is not None:
            break
    assert best is not None  # the non-strict pass always finds one
    _, total, neg_canary = best
    return -neg_canary, total - -neg_canary


def basic_canary_scale(
    current: Mapping[str, int],
    ready: Mapping[str, int],
    targets: Mapping[str, int],
    *,
    replicas: int,
    max_surge: int,
    max_unavailable: int,
    down_first: Iterable[str] = (),
    up_first: Iterable[str] = (),
) -> dict[str, int]:
    """One budgeted move from the pod counts asked for (``current``) towards ``targets`` (a revision missing
    from ``targets`` goes to 0).

    - Scale down first: pods that are not ready go at once (they carry nothing); ready pods go only while the
      ready pods left stay at or above ``replicas - max_unavailable``. Revisions in ``down_first`` give first.
    - Then scale up while the pods asked for stay at or below ``replicas + max_surge``; revisions in
      ``up_first`` take first.

    Applying it again with the same inputs changes nothing (the ready pods it counts are capped at the pods
    asked for), so a reconcile that runs it twice converges to the same counts."""
    new = {rev: n for rev, n in current.items() if n > 0}
    avail = {rev: min(ready.get(rev, 0), n) for rev, n in new.items()}
    ready_left = sum(avail.values())
    floor = replicas - max_unavailable
    for rev in _ordered(new, down_first):
        want = targets.get(rev, 0)
        if new[rev] <= want:
            continue
        unready = new[rev] - avail[rev]
        new[rev] -= min(unready, new[rev] - want)
        drop = max(0, min(new[rev] - want, ready_left - floor))
        new[rev] -= drop
        avail[rev] -= drop
        ready_left -= drop
    room = replicas + max_surge - sum(new.values())
    for rev in _ordered(targets, up_first):
        have = new.get(rev, 0)
        add = max(0, min(room, targets[rev] - have))
        if add:
            new[rev] = have + add
            room -= add
    return positive(new)


def _ordered(revisions: Iterable[str], first: Iterable[str]) -> list[str]:
    revs = list(revisions)
    head = list(dict.fromkeys(r for r in first if r in revs))
    return head + sorted(r for r in revs if r not in head)


def pod_ratio(ready: Mapping[str, int], order: Iterable[str]) -> dict[str, int]:
    """The traffic split a Service gives when it balances over every ready pod alike: integer percentages
    summing to 100 (largest remainder, ties to the revision earlier in ``order``); {} with no ready pod."""
    revs = [r for r in order if ready.get(r, 0) > 0]
    total = sum(ready[r] for r in revs)
    if total <= 0:
        return {}
    exact = {r: 100 * ready[r] / total for r in revs}
    out = {r: math.floor(exact[r]) for r in revs}
    short = 100 - sum(out.values())
    by_remainder = sorted(revs, key=lambda r: (-(exact[r] - out[r]), revs.index(r)))
    for r in by_remainder[:short]:
        out[r] += 1
    return positive(out)
