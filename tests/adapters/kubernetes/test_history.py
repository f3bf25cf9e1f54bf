"""The revision history: ReplicaSets beyond ``revisionHistoryLimit`` are deleted, never one still in use or a
rollback target within the rollback window (reconcile in a loop against the stand-in, as test_reconcile)."""

from __future__ import annotations

from collections.abc import Callable

from kubernetes import client

from ebbtide.adapters.kubernetes.adapter import revision_of
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION
from ebbtide.core.state import RolloutState

from .standin import StandIn
from .test_reconcile import (
    NAME,
    NS,
    Table,
    live,
    replicas,
    run,
    set_image,
    standin_cluster,
    state_of,
    template,
)

REVS = [revision_of(template(f"orders:{i}")) for i in range(1, 6)]


def settled(rev: str) -> Callable[[RolloutState], bool]:
    return lambda s: live(rev)(s) and not s.scale_downs


def five_rollouts(api: StandIn) -> float:
    """orders:1 live, then orders:2..5 rolled out one after the other, each to live and settled."""
    table = Table(dict.fromkeys(REVS, 0.01))
    now = run(api, 0.0, settled(REVS[0]), table)
    for i in range(2, 6):
        set_image(api, f"orders:{i}")
        now = run(api, now + 5, settled(REVS[i - 1]), table)
    return run(api, now + 5, lambda s: True, table)  # one more pass: the last scale-down's ReplicaSet


def patch_spec(api: StandIn, kind_plural: str, name: str, spec: dict[str, object]) -> None:
    client.CustomObjectsApi(api.client).patch_namespaced_custom_object(
        GROUP, VERSION, NS, kind_plural, name, {"spec": spec}
    )


def test_five_rollouts_with_a_limit_of_two_keep_the_two_newest_revisions() -> None:
    with standin_cluster() as api:
        patch_spec(api, PLURAL, NAME, {"revisionHistoryLimit": 2})
        five_rollouts(api)
        # the limit counts the history, the stable one included: the stable and the one before it
        assert replicas(api) == {REVS[4]: 5, REVS[3]: 0}
        assert [r.revision for r in state_of(api).history] == REVS[3:]


def test_the_rollout_specs_limit_applies_when_the_workload_sets_none() -> None:
    with standin_cluster() as api:
        patch_spec(api, "rolloutspecs", "orders", {"revisionHistoryLimit": 3})
        five_rollouts(api)
        assert replicas(api) == {REVS[4]: 5, REVS[3]: 0, REVS[2]: 0}


def test_the_default_limit_keeps_every_revision_of_five_rollouts() -> None:
    with standin_cluster() as api:
        five_rollouts(api)
        assert replicas(api) == {REVS[4]: 5, **dict.fromkeys(REVS[:4], 0)}


def test_a_rollback_target_within_the_window_is_never_deleted_and_is_rolled_back_to() -> None:
    with standin_cluster() as api:
        patch_spec(api, PLURAL, NAME, {"revisionHistoryLimit": 3})
        patch_spec(api, "rolloutspecs", "orders", {"rollbackWindow": {"revisions": 2}})
        now = five_rollouts(api)
        assert replicas(api) == {REVS[4]: 5, REVS[3]: 0, REVS[2]: 0}
        rss = client.AppsV1Api(api.client)
        uid = rss.read_namespaced_replica_set(f"{NAME}-{REVS[2]}", NS).metadata.uid
        set_image(api, "orders:3")  # a manual rollback to the oldest revision within the window
        seen: list[dict[str, int]] = []
        now = run(api, now + 5, lambda s: s.rollback is not None, Table(dict.fromkeys(REVS, 0.01)))
        assert state_of(api).rollback.fast_track  # within the window: no steps, no verification
        run(
            api,
            now + 5,
            settled(REVS[2]),
            Table(dict.fromkeys(REVS, 0.01)),
            each=lambda _: seen.append(replicas(api)),
        )
        assert all(REVS[2] in r for r in seen)  # the target's ReplicaSet was there at every pass
        reused = rss.read_namespaced_replica_set(f"{NAME}-{REVS[2]}", NS)
        assert reused.metadata.uid == uid and reused.spec.replicas == 5  # its own ReplicaSet, scaled back up
        # the history is now REVS[3], REVS[4], REVS[2] (by when they last reached live): nothing to delete
        assert replicas(api) == {REVS[2]: 5, REVS[3]: 0, REVS[4]: 0}
