"""Properties of the traffic and replica arithmetic (core/traffic.py), checked against plain definitions."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from ebbtide.core.traffic import basic_canary_counts, basic_canary_scale, pod_ratio, positive, split

replicas = st.integers(min_value=1, max_value=60)
weights = st.integers(min_value=0, max_value=100)


@given(replicas, weights, st.integers(min_value=0, max_value=5))
def test_basic_counts_are_the_closest_ratio_within_one_surge_pod(n: int, w: int, surge: int) -> None:
    canary, stable = basic_canary_counts(n, w, surge)
    total = canary + stable
    assert canary >= 0 and stable >= 0
    assert total == n or (surge > 0 and total == n + 1)
    if w == 0:
        assert (canary, stable) == (0, n)
        return
    if w == 100:
        assert (canary, stable) == (n, 0)
        return
    if n >= 2:
        assert canary >= 1 and stable >= 1, "a weight strictly between 0 and 100 runs both revisions"
    # no other split of n (or n + 1 with surge) pods with a pod of each is closer to the weight
    best = abs(100 * canary / total - w)
    for t in (n, n + 1) if surge > 0 else (n,):
        for c in range(1, t):
            assert abs(100 * c / t - w) >= best - 1e-9, (c, t)


def test_basic_counts_examples_users_know() -> None:
    assert basic_canary_counts(4, 20, 1) == (1, 4), "4 replicas at 20%: 1 canary + 4 stable = exactly 20%"
    assert basic_canary_counts(4, 20, 0) == (1, 3), "no surge: the closest with 4 pods"
    assert basic_canary_counts(10, 25, 3) == (3, 8) or basic_canary_counts(10, 25, 3) == (3, 9)
    assert basic_canary_counts(5, 1, 1) == (1, 5), "1% still gets a canary pod (1 of 6 is closest)"
    assert basic_canary_counts(1, 50, 0) == (1, 0)


@st.composite
def cluster(
    draw: st.DrawFn,
) -> tuple[dict[str, int], dict[str, int], dict[str, int], int, int, int, list[str]]:
    n = draw(st.integers(min_value=1, max_value=12))
    surge = draw(st.integers(min_value=0, max_value=3))
    unavailable = draw(st.integers(min_value=0 if surge else 1, max_value=3))
    current = {r: draw(st.integers(min_value=0, max_value=n + surge)) for r in ("a", "b", "c")}
    ready = {r: draw(st.integers(min_value=0, max_value=c)) for r, c in current.items()}
    targets = {r: draw(st.integers(min_value=0, max_value=n)) for r in ("a", "b")}
    order = draw(st.lists(st.sampled_from("abc"), max_size=4))
    return current, ready, targets, n, surge, unavailable, order


@given(cluster())
@example(({"a": 2, "b": 1}, {"a": 2, "b": 1}, {"b": 2}, 2, 1, 0, ["a", "a"]))  # a revision named twice
def test_budgeted_scaling_respects_surge_and_unavailable_and_moves_towards_targets(
    c: tuple[dict[str, int], dict[str, int], dict[str, int], int, int, int, list[str]],
) -> None:
    current, ready, targets, n, surge, unavailable, order = c
    budget = {"replicas": n, "max_surge": surge, "max_unavailable": unavailable}
    new = basic_canary_scale(current, ready, targets, **budget, down_first=order, up_first=order[::-1])
    before_total = sum(current.values())
    after_total = sum(new.values())
    # never more pods asked for than the surge budget allows (or than there already were)
    assert after_total <= max(n + surge, before_total)
    # ready pods kept: the ones not scaled away
    kept_ready = sum(min(ready.get(r, 0), new.get(r, 0)) for r in current)
    before_ready = sum(ready.values())
    assert kept_ready >= min(before_ready, n - unavailable), "ready pods never drop below the floor"
    for r in set(current) | set(new):
        want = targets.get(r, 0)
        have, now = current.get(r, 0), new.get(r, 0)
        assert min(have, want) <= now <= max(have, want), f"{r} moved away from its target"
    # progress: whenever the budget allows a move towards the targets, some move is made
    above = [r for r in current if current[r] > targets.get(r, 0)]
    spare_ready = sum(ready.values()) > n - unavailable
    can_drop = any(current[r] > ready.get(r, 0) for r in above) or (bool(above) and spare_ready)
    can_add = any(current.get(r, 0) < t for r, t in targets.items()) and sum(current.values()) < n + surge
    if can_drop or can_add:
        assert positive(dict(new)) != positive(dict(current)), "stuck although the budget allows a move"
    again = basic_canary_scale(new, ready, targets, **budget, down_first=order, up_first=order[::-1])
    assert again == new, "idempotent"


@given(st.dictionaries(st.sampled_from("abcd"), st.integers(min_value=0, max_value=50)))
def test_pod_ratio_sums_to_100_and_gives_nothing_to_pods_not_ready(ready: dict[str, int]) -> None:
    out = pod_ratio(ready, sorted(ready))
    if sum(ready.values()) == 0:
        assert out == {}
        return
    assert sum(out.values()) == 100
    total = sum(ready.values())
    for r, n in ready.items():
        assert (out.get(r, 0) > 0) <= (n > 0)
        assert abs(out.get(r, 0) - 100 * n / total) < 1, "within a point of the exact ratio"


@given(
    st.dictionaries(st.sampled_from("ab"), st.integers(min_value=0, max_value=100), min_size=1),
    st.dictionaries(st.sampled_from("abc"), st.integers(min_value=1, max_value=100), min_size=1),
    st.dictionaries(st.sampled_from("ab"), st.integers(min_value=0, max_value=100)),
)
def test_a_capped_split_sums_to_100_and_never_moves_a_share_below_what_it_had(
    desired: dict[str, int], prev: dict[str, int], caps: dict[str, int]
) -> None:
    total = sum(desired.values())
    if total != 100 or sum(prev.values()) != 100:
        desired = {"a": 100}
        prev = {"b": 100}
    out = split(desired, prev, caps)
    assert sum(out.values()) == 100
    for r, cap in caps.items():
        if r in desired:
            had, want, got = prev.get(r, 0), desired[r], out.get(r, 0)
            # a capped revision takes no more than its capacity, unless nobody else had traffic to keep
            assert got <= max(cap, had) or all(q in desired for q in prev), (got, cap, had)
            assert got >= min(want, had), "a capped share never falls below what it had"


@st.composite
def splits(draw: st.DrawFn, revisions: tuple[str, ...] = ("a", "b", "c")) -> dict[str, int]:
    """A traffic split: integer shares summing to 100 over some of ``revisions``."""
    revs = draw(st.lists(st.sampled_from(revisions), min_size=1, max_size=len(revisions), unique=True))
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=len(revs) - 1, max_size=len(revs) - 1)))
    shares = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    return dict(zip(revs, shares, strict=True))


@given(splits(), st.one_of(st.just({}), splits()), st.dictionaries(st.sampled_from("abc"), weights))
def test_split_is_idempotent_on_its_own_output(
    desired: dict[str, int], prev: dict[str, int], caps: dict[str, int]
) -> None:
    """Moving again from where a move ended, with the same capacities, stays there: the engine's settle
    evaluates the weights again only when the capacities (or the facts they are clamped by) change."""
    once = split(desired, prev, caps)
    assert split(desired, once, caps) == once
    assert sum(once.values()) == 100 and all(v > 0 for v in once.values())
