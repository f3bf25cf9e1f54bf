"""The controller end to end against the stand-in API server over HTTP, in-process (threads).

Nothing here calls reconcile: the tests change objects (the workload's pod template, the RolloutSpec) and
watch the controller's informers, queue, workers and timers bring the cluster to the expected end. The
specs use short durations (200 ms measurement intervals, a 300 ms pause, no scale-down delay) and the
stand-in makes pods ready 50 ms after they start, so a rollout takes about a second.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from kubernetes import client

from ebbtide.adapters.kubernetes.adapter import revision_of
from ebbtide.adapters.kubernetes.apiclient import resource_of
from ebbtide.adapters.kubernetes.controller import Controller, ControllerConfig
from ebbtide.adapters.kubernetes.reconcile import GROUP, VERSION, _specs, reconcile
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement
from ebbtide.core.state import RolloutState

from .fixtures import (  # NAME: imported from here by tests/cli
    NAME,
    NS,
    Table,
    errors_template,
    get,
    install,
    replicas,
    rollout_spec,
    selectors,
    set_image,
    standin,
    strategy,
    template,
    workload,
)
from .standin import Behaviour, StandIn

REPLICAS = 4

SPECS = [
    errors_template("200ms", 2),
    strategy(
        "steps",
        {"setWeight": 25},
        {"verification": {"templateNames": ["errors"]}},
        {"setWeight": 50},
        {"pause": {"duration": "300ms"}},
    ),
    rollout_spec(
        "steps", rollbackWindow={"revisions": 2}, scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0
    ),
]


V1, V2 = revision_of(template("orders:1")), revision_of(template("orders:2"))


@contextlib.contextmanager
def standin_cluster(rollout_spec: Mapping[str, Any] | None = None) -> Iterator[StandIn]:
    """The CRDs, the namespace, two Services, the specs and the workload at ``orders:1``; pods ready after
    50 ms."""
    with standin() as api:
        api.workloads.default = Behaviour(ready_after=0.05)
        client.CoreV1Api(api.client).create_namespace({"metadata": {"name": "ebbtide-system"}})

        def edit(doc: dict[str, Any]) -> None:
            if doc["kind"] == "RolloutSpec" and rollout_spec:
                doc["spec"].update(rollout_spec)

        install(api.client, NS, SPECS, edit=edit, workload=workload(template("orders:1"), replicas=REPLICAS))
        yield api


def config(identity: str = "a", **changes: Any) -> ControllerConfig:
    base: dict[str, Any] = {
        "namespaces": (NS,),
        "workers": 2,
        "resync": 5.0,
        "leader_elect": False,
        "identity": identity,
        "lease_duration": 30.0,
        "renew_deadline": 20.0,
        "retry_period": 0.05,
        "metrics_address": "127.0.0.1",
        "metrics_port": 0,
        "backoff": 0.02,
        "max_backoff": 0.5,
        "informer_backoff": 0.05,
    }
    return ControllerConfig(**(base | changes))


@contextlib.contextmanager
def controller(api: StandIn, table: Table, cfg: ControllerConfig | None = None) -> Iterator[Controller]:
    ctl = Controller(api.configuration, cfg or config(), measurements_for=lambda ns, name: table)
    with ctl:
        yield ctl


# ----- reading the cluster (independently of the controller: the API server's objects) ---------------
def state_of(api: StandIn) -> RolloutState | None:
    raw = (get(api).get("status") or {}).get("engineState")
    return None if raw is None else RolloutState.from_json(json.dumps(raw))


def reasons(api: StandIn) -> list[str]:
    return [e.reason for e in client.CoreV1Api(api.client).list_namespaced_event(NS).items]


def wait_for(
    api: StandIn,
    done: Callable[[RolloutState], bool],
    timeout: float = 15.0,
    each: Callable[[RolloutState], None] | None = None,
) -> RolloutState:
    """Poll the workload's persisted state until ``done`` (``each`` sees every state polled). On a timeout,
    or when ``each`` fails, the message lists the distinct states polled (a flaky run says what it saw)."""
    deadline = time.monotonic() + timeout
    last = None
    seen: list[str] = []
    try:
        while time.monotonic() < deadline:
            last = state_of(api)
            if last is not None:
                brief = _brief(last)
                if not seen or seen[-1] != brief:
                    seen.append(brief)
                if each is not None:
                    each(last)
                if done(last):
                    return last
            time.sleep(0.02)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstates polled:\n  " + "\n  ".join(seen)) from None
    raise AssertionError(f"not reached in {timeout}s: {last}\nstates polled:\n  " + "\n  ".join(seen))


def _brief(s: RolloutState) -> str:
    return (
        f"{s.phase} stable={s.stable} desired={s.desired} canary={s.canary} initiator={s.initiator} "
        f"weights={s.weights} replicas={s.replicas} rollback={s.rollback is not None} degraded={s.degraded}"
    )


def live(rev: str) -> Callable[[RolloutState], bool]:
    return lambda s: s.phase == "live" and s.stable == rev and s.ready.get(rev) == REPLICAS


def settled(rev: str) -> Callable[[RolloutState], bool]:
    """Live on ``rev`` and every other revision scaled away."""
    return lambda s: (
        live(rev)(s) and not s.scale_downs and all(n == 0 for r, n in s.replicas.items() if r != rev)
    )


def metrics_text(ctl: Controller) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{ctl.http.port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
    return text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        metric, _, value = line.rpartition(" ")
        if metric == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    return 0.0


def quiet_writes(api: StandIn, agent: str, quiet: float = 0.3, timeout: float = 10.0) -> int:
    """The writes of ``agent`` once none came for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last = writes_by_agent(api)[agent]
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = writes_by_agent(api)[agent]
        if now == last:
            return now
        last = now
    raise AssertionError(f"{agent} kept writing for {timeout}s")


def writes_by_agent(api: StandIn, *, leases: bool = False) -> Counter[str]:
    """Writes the API server received, per User-Agent (the controller's carries its identity)."""
    out: Counter[str] = Counter()
    for (method, path, _), agent in zip(api.server.requests, api.server.agents, strict=True):
        if method in ("POST", "PUT", "PATCH", "DELETE") and (resource_of(path) == "leases") == leases:
            out[agent] += 1
    return out


def reads_by_agent(api: StandIn, since: int = 0) -> Counter[str]:
    """The controller's reads other than its informers' watches: a ``get`` of one object, or a ``list``."""
    out: Counter[str] = Counter()
    requests = list(zip(api.server.requests, api.server.agents, strict=True))[since:]
    for (method, path, _), agent in requests:
        if method == "GET" and agent.startswith("ebbtide-controller/") and "watch=true" not in path:
            last = path.split("?")[0].rstrip("/").split("/")[-1]
            out["list" if last == resource_of(path) else "get"] += 1
    return out


# ----- reads from the informer caches (issue 9, performance) -----------------------------------------
def test_a_rollout_and_its_rollback_send_no_read_to_the_api_server() -> None:
    """After the caches sync, every reconcile reads from them: the API server sees writes and watches."""
    with standin_cluster() as api:
        table = Table({V1: 0.01, V2: 0.5})
        with controller(api, table) as ctl:
            wait_for(api, settled(V1))
            start = len(api.server.requests)
            lists = sum(informer.lists for informer in ctl.informers)
            set_image(api, "orders:2")
            wait_for(api, lambda s: s.degraded and settled(V1)(s))
            assert reads_by_agent(api, start) == Counter(
                {"list": sum(informer.lists for informer in ctl.informers) - lists}
            )  # only the informers' own re-lists, if a watch was cut
            assert writes_by_agent(api)[f"ebbtide-controller/{ctl.config.identity}"] > 0


def test_a_reconcile_right_after_a_write_reads_that_write_not_the_cache_before_it() -> None:
    """Caches listed once and never watched: only what the writes returned keeps them current. A second
    reconcile at once finds its own status (no 409 on a stale resourceVersion), its own ReplicaSet (no
    second create) and writes nothing."""
    with standin_cluster() as api:
        table = Table({V1: 0.01, V2: 0.01})
        ctl = Controller(api.configuration, config(), measurements_for=lambda ns, name: table)
        try:
            for informer in ctl.informers:
                informer._relist()  # synced, with no watch behind it
            first = reconcile(ctl.client, NS, NAME, time.time(), measurements=table, reads=ctl.reads)
            assert first.written and first.attempts == 1
            writes = len(api.server.requests)
            second = reconcile(ctl.client, NS, NAME, time.time(), measurements=table, reads=ctl.reads)
            assert second.attempts == 1 and not second.written
            assert [m for m, _, _ in api.server.requests[writes:]] == []  # no read, no write
            assert ctl.reads.workload(NS, NAME)["status"]["engineState"]["desired"] == V1
        finally:
            ctl.client.close()  # type: ignore[no-untyped-call]
            ctl._watch_client.close()  # type: ignore[no-untyped-call]


# ----- the four scenarios of the issue ---------------------------------------------------------------
def test_a_healthy_canary_rolls_out_to_live() -> None:
    with standin_cluster() as api:
        table = Table({V1: 0.01, V2: 0.01})
        with controller(api, table) as ctl:
            wait_for(api, settled(V1))
            set_image(api, "orders:2")
            seen: list[tuple[dict[str, int], dict[str, str | None]]] = []
            wait_for(api, settled(V2), each=lambda s: seen.append((s.weights, selectors(api))))
            assert replicas(api) == {V1: 0, V2: REPLICAS}
            assert selectors(api) == {"orders-stable": V2, "orders-canary": V2}
            assert {w.get(V2) for w, _ in seen} >= {25, 50}  # the steps were taken, one after the other
            assert table.asked and all(s.revision == V2 for s in table.asked)
            assert reasons(api).count("rollout-started") == 1 and "rollout-finished" in reasons(api)
            text = metrics_text(ctl)
            assert sample(text, "ebbtide_rollouts", phase="live") == 1
            assert sample(text, "ebbtide_rollbacks_total", reason="verification", mode="immediate") == 0


def test_a_failed_verification_rolls_back_at_once_and_the_canary_never_serves_again() -> None:
    with standin_cluster() as api:
        table = Table({V1: 0.01, V2: 0.5})
        with controller(api, table) as ctl:
            wait_for(api, settled(V1))
            set_image(api, "orders:2")
            rolled_back = False

            def check(s: RolloutState) -> None:
                nonlocal rolled_back
                rolled_back = rolled_back or s.rollback is not None or s.degraded
                if rolled_back:
                    assert s.weights.get(V2, 0) == 0

            end = wait_for(api, lambda s: s.degraded and settled(V1)(s), each=check)
            assert end.desired == V2 and end.weights == {V1: 100}
            assert selectors(api) == {"orders-stable": V1, "orders-canary": V1}
            assert replicas(api) == {V1: REPLICAS, V2: 0}
            assert "rollout-failed" in reasons(api) and "rollout-rolled-back" in reasons(api)
            text = metrics_text(ctl)
            assert sample(text, "ebbtide_rollbacks_total", reason="verification", mode="immediate") == 1


def test_a_new_rollout_rollback_climbs_back_and_the_failed_revision_never_gains_traffic() -> None:
    policy = {"failurePolicy": {"action": "rollback", "rollback": {"mode": "newRollout"}}}
    with standin_cluster(policy) as api:
        table = Table({V1: 0.01, V2: 0.5})
        with controller(api, table) as ctl:
            wait_for(api, settled(V1))
            set_image(api, "orders:2")
            # the rollback has started: the failure policy's new rollout of V1 (canary == V1) lasts as long as
            # the pause (300 ms) and is over at once after it, so a poller held up under load may first see
            # its end (live on V1, canary None): either counts
            wait_for(api, lambda s: s.initiator == "failure-policy")
            most = 100

            def v2_never_gains(s: RolloutState) -> None:
                nonlocal most
                share = s.weights.get(V2, 0)
                assert share <= most, f"the failed revision gained traffic: {most} -> {share}"
                most = share

            wait_for(api, settled(V1), each=v2_never_gains)
            assert selectors(api) == {"orders-stable": V1, "orders-canary": V1}
            text = metrics_text(ctl)
            assert sample(text, "ebbtide_rollbacks_total", reason="verification", mode="newRollout") == 1


def test_a_manual_rollback_of_a_live_version() -> None:
    with standin_cluster() as api:
        table = Table({V1: 0.01, V2: 0.01})
        with controller(api, table) as ctl:
            wait_for(api, settled(V1))
            set_image(api, "orders:2")
            wait_for(api, settled(V2))
            asked = len(table.asked)
            api.workloads.by_image["orders:1"] = Behaviour(ready_per_sync=0)  # held in progress until seen
            set_image(api, "orders:1")  # V1 is within the rollback window: a rollback, no steps
            seen: list[RolloutState] = []
            wait_for(api, lambda s: s.rollback is not None, each=seen.append)
            del api.workloads.by_image["orders:1"]
            end = wait_for(api, settled(V1), each=seen.append)
            assert end.desired == V1 and not end.degraded and end.weights == {V1: 100}
            assert any(s.rollback is not None and s.rollback.manual and s.rollback.target == V1 for s in seen)
            assert len(table.asked) == asked  # no verification on the way back
            assert replicas(api) == {V1: REPLICAS, V2: 0}
            assert selectors(api) == {"orders-stable": V1, "orders-canary": V1}
            text = metrics_text(ctl)
            assert sample(text, "ebbtide_rollbacks_total", reason="manual", mode="immediate") == 1


# ----- faults ----------------------------------------------------------------------------------------
def _outcome(api: StandIn) -> tuple[object, ...]:
    s = state_of(api)
    assert s is not None
    history = tuple((r.revision, r.reached_live) for r in s.history)
    return (s.phase, s.degraded, s.stable, s.desired, s.weights, s.replicas, history)


def _with_faults(api: StandIn, stop: threading.Event) -> None:
    """A 409 on every other write; every watch cut at once and then every 50 ms (a rollback that writes
    the status once per transition can be over in 200 ms)."""
    api.faults.conflict_every(2)
    api.faults.drop_watches()
    while not stop.wait(0.05):
        api.faults.drop_watches()


@pytest.mark.parametrize("values", [{V1: 0.01, V2: 0.01}, {V1: 0.01, V2: 0.5}], ids=["healthy", "rollback"])
def test_409s_on_every_other_write_and_dropped_watches_end_as_without_faults(
    values: dict[str, float],
) -> None:
    ends = []
    for faulty in (False, True):
        with standin_cluster() as api:
            table = Table(values)
            with controller(api, table):
                wait_for(api, settled(V1))
                set_image(api, "orders:2")  # before the faults: the faults are for the controller's writes
                stop = threading.Event()
                chaos = threading.Thread(target=_with_faults, args=(api, stop)) if faulty else None
                if chaos is not None:
                    chaos.start()
                try:
                    wait_for(api, lambda s: s.desired == V2 and not s.scale_downs and s.phase == "live", 30)
                    wait_for(api, settled(s_stable := state_of(api).stable or ""), 30)  # type: ignore[union-attr]
                finally:
                    stop.set()
                    if chaos is not None:
                        chaos.join()
                if faulty:
                    assert (
                        len([c for c, status in api.faults.injected if status == 409]) >= 4
                    )  # of ~10 writes
                    assert api.faults.drops >= 2
                ends.append((_outcome(api), replicas(api), selectors(api), s_stable))
    assert ends[0] == ends[1]


@pytest.mark.parametrize("kill_at", ["replicasets", "ebbtidedeployments/status", "events"])
def test_a_controller_killed_mid_rollback_and_a_new_one_completes_it(kill_at: str) -> None:
    """The first controller dies at its first write to ``kill_at`` once the failing measurement came back
    (from then on none of its writes reach the cluster, and it is stopped); a second one, started afresh,
    completes the rollback from the persisted status, and once a rollback is persisted the failed revision
    never serves again."""
    with standin_cluster() as api:
        failed = threading.Event()
        dead = threading.Event()

        class Failing(Table):
            def measure(self, start: StartMeasurement, now: float) -> Measurement:
                result = super().measure(start, now)
                if start.revision == V2:
                    failed.set()
                return result

        def gate(verb: str, resource: str) -> bool:
            if failed.is_set() and resource == kill_at:
                dead.set()
            return not dead.is_set()

        table = Failing({V1: 0.01, V2: 0.5})
        first = Controller(api.configuration, config("first"), measurements_for=lambda ns, n: table)
        first.client.may_write = gate
        with first:
            wait_for(api, settled(V1))
            set_image(api, "orders:2")
            deadline = time.monotonic() + 10
            while not dead.is_set():
                assert time.monotonic() < deadline, "the kill point was never reached"
                time.sleep(0.01)
        assert not settled(V1)(state_of(api)) or replicas(api)[V2] > 0  # type: ignore[arg-type]
        persisted = False

        def no_traffic_to_v2_once_rolled_back(s: RolloutState) -> None:
            nonlocal persisted
            persisted = persisted or s.rollback is not None or s.degraded
            if persisted:
                assert s.weights.get(V2, 0) == 0
                assert V2 not in selectors(api).values()

        with controller(api, table, config("second")):
            end = wait_for(
                api, lambda s: s.degraded and settled(V1)(s), each=no_traffic_to_v2_once_rolled_back
            )
        assert end.weights == {V1: 100} and replicas(api) == {V1: REPLICAS, V2: 0}
        assert reasons(api).count("rollout-failed") <= 1  # never announced twice (lost when killed before)


# ----- leader election -------------------------------------------------------------------------------
def lease_holder(api: StandIn) -> str | None:
    lease = client.CoordinationV1Api(api.client).read_namespaced_lease("ebbtide-controller", "ebbtide-system")
    holder: str | None = lease.spec.holder_identity
    return holder


def test_only_the_lease_holder_writes_and_a_graceful_stop_hands_over_at_once() -> None:
    with standin_cluster() as api:
        table = Table({V1: 0.01, V2: 0.01})
        elect = {"leader_elect": True}
        a = Controller(api.configuration, config("a", **elect), measurements_for=lambda ns, n: table)
        b = Controller(api.configuration, config("b", **elect), measurements_for=lambda ns, n: table)
        a.start()
        deadline = time.monotonic() + 5
        while not a.is_leader:
            assert time.monotonic() < deadline, "a never took the free Lease"
            time.sleep(0.01)
        b.start()
        try:
            wait_for(api, settled(V1))
            set_image(api, "orders:2")
            wait_for(api, settled(V2))
            assert lease_holder(api) == "a" and not b.is_leader
            writes = writes_by_agent(api)
            assert writes["ebbtide-controller/a"] > 10 and writes["ebbtide-controller/b"] == 0
            assert b.wait_synced(5) and b.ready() is None  # a standby with synced caches is ready
            a.stop()  # graceful: releases the Lease
            a_writes = writes_by_agent(api)["ebbtide-controller/a"]
            deadline = time.monotonic() + 3  # far less than the 30 s the Lease would take to expire
            while not b.is_leader:
                assert time.monotonic() < deadline, "b did not take the released Lease"
                time.sleep(0.01)
            assert lease_holder(api) == "b"
            set_image(api, "orders:1")
            wait_for(api, settled(V1))
            writes = writes_by_agent(api)
            assert writes["ebbtide-controller/b"] > 0 and writes["ebbtide-controller/a"] == a_writes
        finally:
            a.stop()
            b.stop()


def test_a_replica_that_loses_the_lease_stops_writing_at_once() -> None:
    with standin_cluster() as api:
        table = Table({V1: 0.01, V2: 0.01})
        a = Controller(
            api.configuration, config("a", leader_elect=True), measurements_for=lambda ns, n: table
        )
        with a:
            wait_for(api, settled(V1))
            assert a.elector is not None
            a.elector.renew_deadline = 1e-9  # its renewals now come too late: it is never leader for long
            before = quiet_writes(
                api, "ebbtide-controller/a"
            )  # a reconcile under way when it lost may finish
            set_image(api, "orders:2")
            time.sleep(0.5)  # what it would take to start the canary
            assert writes_by_agent(api)["ebbtide-controller/a"] == before
            assert state_of(api).desired == V1  # type: ignore[union-attr]


# ----- probes and metrics ----------------------------------------------------------------------------
def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_healthz_readyz_and_metrics_over_http() -> None:
    with standin_cluster() as api:
        table = Table({V1: 0.01, V2: 0.01})
        with controller(api, table) as ctl:
            wait_for(api, settled(V1))
            base = f"http://127.0.0.1:{ctl.http.port}"
            assert _get(f"{base}/healthz") == (200, "ok\n")
            assert _get(f"{base}/readyz") == (200, "ok\n")
            assert _get(f"{base}/nothing")[0] == 404
            status, text = _get(f"{base}/metrics")
            assert status == 200
            for name in (
                "ebbtide_rollouts",
                "ebbtide_rollbacks_total",
                "ebbtide_reconcile_duration_seconds_bucket",
                "ebbtide_reconcile_errors_total",
                "ebbtide_api_writes_total",
                "ebbtide_workqueue_depth",
                "ebbtide_workqueue_waiting",
                "ebbtide_leader",
            ):
                assert f"# TYPE {name.removesuffix('_bucket').removesuffix('_total')}" in text, name
            assert sample(text, "ebbtide_rollouts", phase="live") == 1
            assert sample(text, "ebbtide_api_writes_total", verb="create", resource="replicasets") == 1
            assert (
                sample(text, "ebbtide_api_writes_total", verb="update", resource="ebbtidedeployments/status")
                >= 1
            )
            assert sample(text, "ebbtide_reconcile_duration_seconds_count") >= 1
        # stopped: the port is closed
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{base}/healthz", timeout=1)


def test_readyz_is_503_until_the_caches_sync() -> None:
    """Pointed at a port nothing listens on, the informers never sync: alive, not ready."""
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # discard: connection refused
    with Controller(configuration, config()) as ctl:
        base = f"http://127.0.0.1:{ctl.http.port}"
        assert _get(f"{base}/healthz") == (200, "ok\n")
        assert _get(f"{base}/readyz") == (503, "informer caches not synced yet\n")


def test_a_changed_strategy_alone_gets_the_workload_reconciled() -> None:
    """A spec object's event queues every workload of its namespace: with a resync far away, only the
    Strategy's watch event can have brought the new plan to the live workload."""
    with standin_cluster() as api, controller(api, Table({V1: 0.01}), config(resync=600.0)):
        wait_for(api, settled(V1))
        client.CustomObjectsApi(api.client).patch_namespaced_custom_object(
            GROUP, VERSION, NS, "strategies", "steps", {"spec": {"canary": {"steps": [{"setWeight": 40}]}}}
        )
        wait_for(api, lambda s: [step.weight for step in s.plan.steps][:1] == [40])


def test_the_spec_set_is_validated_once_per_set_of_versions_and_again_when_one_changes() -> None:
    """1,000 workloads named in one RolloutSpec take milliseconds to validate: the controller keeps the
    validated spec set of a namespace while no spec object changes, and never serves a stale one."""
    with standin_cluster() as api:
        ctl = Controller(api.configuration, config(), measurements_for=lambda ns, name: None)
        try:
            for informer in ctl.informers:
                informer._relist()
            first = _specs(ctl.reads, NS)
            assert _specs(ctl.reads, NS) is first  # nothing changed: not validated again
            custom = client.CustomObjectsApi(api.client)
            changed = custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                NS,
                "strategies",
                "steps",
                {"spec": {"canary": {"steps": [{"setWeight": 40}]}}},
            )
            ctl.reads.wrote("strategies", changed)  # as a watch event would bring it
            second = _specs(ctl.reads, NS)
            assert second is not first
            assert second.strategies["steps"] != first.strategies["steps"]
        finally:
            ctl.client.close()  # type: ignore[no-untyped-call]
            ctl._watch_client.close()  # type: ignore[no-untyped-call]


def test_a_create_refused_with_a_conflict_that_is_not_already_exists_is_sent_again() -> None:
    """From the cache a missing ReplicaSet may only be unseen: a 409 on its create reads it afresh; when
    it really is not there (an injected 409), the create is sent again, within the same reconcile."""
    with standin_cluster() as api:
        table = Table({V1: 0.01, V2: 0.01})
        ctl = Controller(api.configuration, config(), measurements_for=lambda ns, name: table)
        try:
            for informer in ctl.informers:
                informer._relist()
            api.faults.fail_next(1, status=409, verbs=frozenset({"create"}), plural="replicasets")
            outcome = reconcile(ctl.client, NS, NAME, time.time(), measurements=table, reads=ctl.reads)
            assert outcome.written and outcome.attempts == 1
            assert replicas(api) == {V1: REPLICAS}
        finally:
            ctl.client.close()  # type: ignore[no-untyped-call]
            ctl._watch_client.close()  # type: ignore[no-untyped-call]
