"""The controller: informers feed a work queue of workload keys; workers reconcile them, one key at a time.

- **Informers** (:mod:`.informer`: list + watch with bookmarks, 410 Gone re-lists) on the
  EbbtideDeployments (narrowed by ``label_selector``: a shard), the spec kinds, and the ReplicaSets and pods
  the adapter owns, in each watched namespace (``namespaces``; none: the whole cluster). An event becomes
  the key ``(namespace, name)`` of the workload it concerns: a ReplicaSet by its ``ebbtide.dev/workload``
  label, a pod by its owning ReplicaSet, a spec object as every workload of its namespace. Only workloads
  in this shard's cache are ever queued. The Services are cached too (no handler).
- **Reads** (:mod:`.cache`): the workers reconcile from the informers' caches (``self.reads``), not from
  the API server; what a write returns goes into the cache at once.
- **The queue** (:mod:`.workqueue`) deduplicates keys and never hands one key to two workers; a key whose
  reconcile failed (an API error, :class:`ReconcileConflict`) comes back after an exponential backoff
  (reset by a success); ``Outcome.wake_at`` becomes a timer; every ``resync`` seconds all keys are queued.
- **Workers** (``workers`` threads) call :func:`~.reconcile.reconcile` at the wall-clock time (the engine's
  timers are persisted in the status, so a restarted controller carries on from them).
- **Leader election** (:mod:`.leader`, one Lease per shard): only the holder's workers reconcile, and every
  write goes through :class:`~.apiclient.ControllerApiClient`, which refuses it once the Lease is not held
  (so a replica that loses it stops at its next write, mid-reconcile if need be). Gaining the Lease queues
  every key.
- **Shutdown** (:meth:`Controller.stop`): no new work, the running reconciles finish, the Lease is released
  so a standby takes over at once, the informers and the HTTP port close.
- **Metrics and probes** (:mod:`.metrics`, :mod:`.health`) on one HTTP port.
- **Notifications**: with a ``notifier`` (:class:`~ebbtide.adapters.notify.channels.Notifier`), the Notify
  effects of each reconcile whose status was written are delivered (on the notifier's own threads), once.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import kubernetes
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from ebbtide.adapters.base import MeasurementProvider

from . import actions, cache
from .adapter import HASH_LABEL, WORKLOAD_LABEL, Router
from .adoption import refers_to
from .apiclient import ControllerApiClient, NotLeader
from .health import HealthServer
from .informer import IndexFn, Informer, Obj
from .leader import LeaderElector
from .metrics import Metrics
from .reconcile import GROUP, PLURAL, SPEC_PLURALS, VERSION, ReconcileConflict, reconcile
from .routers.services import replica_ratio
from .workqueue import BULK, URGENT, WorkQueue

if TYPE_CHECKING:
    from ebbtide.adapters.notify.channels import Notifier

Key = tuple[str, str]
MeasurementsFor = Callable[[str, str], MeasurementProvider | None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControllerConfig:
    #: the namespaces to watch (empty: all of them)
    namespaces: tuple[str, ...] = ()
    #: only the EbbtideDeployments carrying these labels (a shard)
    label_selector: str | None = None
    workers: int = 2
    #: seconds between two resyncs (every key queued again)
    resync: float = 300.0
    leader_elect: bool = True
    lease_name: str = "ebbtide-controller"
    lease_namespace: str = "ebbtide-system"
    identity: str = socket.gethostname()
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    metrics_address: str = "0.0.0.0"
    metrics_port: int = 8080
    #: first retry of a failed key after this many seconds, doubling up to ``max_backoff``
    backoff: float = 0.05
    max_backoff: float = 300.0
    #: informers: a watch lasts at most this long; a failed list/watch is retried after ``informer_backoff``
    watch_timeout: int = 300
    informer_backoff: float = 1.0


class Controller:
    def __init__(
        self,
        configuration: kubernetes.client.Configuration,
        config: ControllerConfig = ControllerConfig(),
        *,
        measurements_for: MeasurementsFor | None = None,
        router: Router = replica_ratio,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.measurements_for = measurements_for
        #: delivers each persisted reconcile's notifications (webhooks, Slack), when given
        self.notifier: Notifier | None = None
        self.router = router
        self.clock = clock
        self.queue = WorkQueue(base_delay=config.backoff, max_delay=config.max_backoff)
        self.metrics = Metrics(self._phases)
        self.metrics.queue_depth.set_function(lambda: len(self.queue))
        self.metrics.queue_waiting.set_function(self.queue.waiting)
        self._stopping = threading.Event()
        self._leading = threading.Event()
        self._synced = threading.Event()
        agent = f"ebbtide-controller/{config.identity}"
        self.client = ControllerApiClient(configuration, may_write=self._may_write, on_write=self._wrote)
        self.client.user_agent = agent
        self._watch_client = kubernetes.client.ApiClient(configuration)
        self._watch_client.user_agent = agent
        self.elector: LeaderElector | None = None
        if config.leader_elect:
            lease_client = ControllerApiClient(configuration, on_write=self._wrote)
            lease_client.user_agent = agent
            self.elector = LeaderElector(
                kubernetes.client.CoordinationV1Api(lease_client),
                config.lease_namespace,
                config.lease_name,
                config.identity,
                lease_duration=config.lease_duration,
                renew_deadline=config.renew_deadline,
            )
        self.workloads: list[Informer] = []
        self.replicasets: list[Informer] = []
        self.informers: list[Informer] = []
        #: the informers by the plural they cache: what the workers read instead of the API server
        self.caches: dict[str, list[Informer]] = {}
        self._build_informers()
        self.reads = cache.CachedReads(self.caches, cache.ApiReads(self.client))
        self.http = HealthServer(
            config.metrics_address,
            config.metrics_port,
            healthy=self.healthy,
            ready=self.ready,
            registry=self.metrics.registry,
        )
        self._threads: list[threading.Thread] = []
        self._workers: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Controller:
        self.http.start()
        for informer in self.informers:
            self._thread(informer.run, "informer")
        self._thread(self._wait_synced, "sync")
        if self.elector is not None:
            self._thread(self._lead, "leader")
        else:
            self._leading.set()
        self._thread(self._resync, "resync")
        for i in range(self.config.workers):
            self._workers.append(self._thread(self._work, f"worker-{i}"))
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful: take no new work, let the running reconciles finish, release the Lease, close."""
        self._stopping.set()
        self.queue.shut_down()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if self.elector is not None:
            try:
                self.elector.release()
            except (ApiException, HTTPError, OSError) as exc:
                log.warning("could not release the Lease (%s): it expires on its own", exc)
        self._leading.clear()
        for informer in self.informers:
            informer.stop()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.http.stop()
        self.client.close()  # type: ignore[no-untyped-call]
        self._watch_client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Controller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- probes ----------------------------------------------------------------------------------------
    def healthy(self) -> str | None:
        if self._stopping.is_set():
            return "shutting down"
        dead = [t.name for t in self._threads if not t.is_alive() and t.name != "ebbtide-sync"]
        return f"threads not running: {', '.join(dead)}" if dead else None

    def ready(self) -> str | None:
        problem = self.healthy()
        if problem is not None:
            return problem
        if not self._synced.is_set():
            return "informer caches not synced yet"
        return None  # synced: leading, or a standby ready to take over

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    # -- informers -------------------------------------------------------------------------------------
    def _build_informers(self) -> None:
        custom = kubernetes.client.CustomObjectsApi(self._watch_client)
        apps = kubernetes.client.AppsV1Api(self._watch_client)
        core = kubernetes.client.CoreV1Api(self._watch_client)
        for ns in self.config.namespaces or (None,):

            def objects(plural: str, ns: str | None = ns) -> Callable[..., Any]:
                if ns is None:
                    return partial(custom.list_cluster_custom_object, GROUP, VERSION, plural)
                return partial(custom.list_namespaced_custom_object, GROUP, VERSION, ns, plural)

            def typed(
                namespaced: Callable[..., Any], everywhere: Callable[..., Any], ns: str | None = ns
            ) -> Callable[..., Any]:
                return everywhere if ns is None else partial(namespaced, ns)

            def add(plural: str, informer: Informer) -> Informer:
                self.caches.setdefault(plural, []).append(informer)
                return informer

            workloads = self._informer(ns, objects(PLURAL), self._on_workload, self.config.label_selector)
            self.workloads.append(add(PLURAL, workloads))
            for plural in SPEC_PLURALS.values():
                add(plural, self._informer(ns, objects(plural), self._on_spec, indexes=cache.SPEC_INDEXES))
            rs = typed(apps.list_namespaced_replica_set, apps.list_replica_set_for_all_namespaces)
            indexes = cache.INDEXES[cache.REPLICASETS]
            rs_informer = self._informer(ns, rs, self._on_replicaset, WORKLOAD_LABEL, indexes)
            self.replicasets.append(add(cache.REPLICASETS, rs_informer))
            pods = typed(core.list_namespaced_pod, core.list_pod_for_all_namespaces)
            add(cache.PODS, self._informer(ns, pods, self._on_pod, HASH_LABEL, cache.INDEXES[cache.PODS]))
            services = typed(core.list_namespaced_service, core.list_service_for_all_namespaces)
            add(cache.SERVICES, self._informer(ns, services, None))
            deployments = typed(apps.list_namespaced_deployment, apps.list_deployment_for_all_namespaces)
            self._informer(ns, deployments, self._on_deployment)  # workloadRef: the template source

    def _informer(
        self,
        namespace: str | None,
        list_fn: Callable[..., Any],
        handler: Callable[[str, Obj], None] | None,
        selector: str | None = None,
        indexes: Mapping[str, IndexFn] | None = None,
    ) -> Informer:
        informer = Informer(
            list_fn,
            on_event=handler,
            label_selector=selector,
            watch_timeout=self.config.watch_timeout,
            backoff=self.config.informer_backoff,
            indexes=indexes,
            namespace=namespace,
        )
        self.informers.append(informer)
        return informer

    def workload_keys(self, namespace: str | None = None) -> list[Key]:
        return [
            key
            for informer in self.workloads
            for key in informer.snapshot()
            if namespace is None or key[0] == namespace
        ]

    def _known(self, key: Key) -> bool:
        return any(informer.get(*key) is not None for informer in self.workloads)

    def _phases(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for informer in self.workloads:
            for obj in informer.snapshot().values():
                counts[(obj.get("status") or {}).get("phase") or "unknown"] += 1
        return dict(counts)

    def _on_workload(self, kind: str, obj: Obj) -> None:
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if kind == "DELETED":
            self.queue.forget(key)
        elif kind == "ADDED":  # the first list (every workload at once), or a new one: nothing to hurry
            self.queue.add(key, BULK)
        elif _asked(obj):  # a person changed the spec or recorded an action: before the rest
            self.queue.add(key, URGENT)
        else:  # the controller's own status writes
            self.queue.add(key)

    def _on_spec(self, kind: str, obj: Obj) -> None:
        for key in self.workload_keys(obj["metadata"].get("namespace", "")):
            self.queue.add(key, BULK)

    def _on_replicaset(self, kind: str, obj: Obj) -> None:
        meta = obj["metadata"]
        name = (meta.get("labels") or {}).get(WORKLOAD_LABEL)
        if name:
            self._add_known((meta.get("namespace", ""), name))

    def _on_pod(self, kind: str, obj: Obj) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        for owner in meta.get("ownerReferences") or []:
            if owner.get("kind") != "ReplicaSet":
                continue
            for informer in self.replicasets:
                rs = informer.get(ns, owner.get("name", ""))
                if rs is not None:
                    self._on_replicaset(kind, rs)

    def _on_deployment(self, kind: str, obj: Obj) -> None:
        for informer in self.workloads:
            for key, workload in informer.snapshot().items():
                if refers_to(workload, obj):
                    self.queue.add(key)

    def _add_known(self, key: Key) -> None:
        if self._known(key):
            self.queue.add(key)

    def _add_all(self) -> None:
        for key in self.workload_keys():
            self.queue.add(key, BULK)

    # -- background loops ------------------------------------------------------------------------------
    def _thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=f"ebbtide-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def _wait_synced(self) -> None:
        for informer in self.informers:
            while not informer.synced.wait(0.05):
                if self._stopping.is_set():
                    return
        self._synced.set()

    def _lead(self) -> None:
        assert self.elector is not None
        while not self._stopping.is_set():
            try:
                held = self.elector.try_acquire_or_renew()
            except Exception as exc:  # the API server is away: the Lease expires on its own clock
                log.warning("leader election: %s", exc)
                held = self.elector.is_leader()
            if held and not self._leading.is_set():
                log.info("%s holds the Lease %s: acting", self.config.identity, self.config.lease_name)
                self._leading.set()
                self.metrics.leader.set(1)
                self._add_all()
            elif not held and self._leading.is_set():
                log.warning("%s lost the Lease %s: standing by", self.config.identity, self.config.lease_name)
                self._leading.clear()
                self.metrics.leader.set(0)
            self._stopping.wait(self.config.retry_period)

    def _resync(self) -> None:
        while not self._stopping.wait(self.config.resync):
            self._add_all()

    def _may_write(self, verb: str, resource: str) -> bool:
        if self.elector is None:
            return True
        return self._leading.is_set() and self.elector.is_leader()

    def _wrote(self, verb: str, resource: str) -> None:
        self.metrics.count_write(verb, resource)

    # -- workers ---------------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._synced.wait(0.05):
            if self._stopping.is_set():
                return
        while True:
            key = self.queue.get()
            if key is None:
                return
            try:
                if self._leading.is_set():  # a standby drops the key: gaining the Lease queues them all
                    self._process(key)  # type: ignore[arg-type]
            finally:
                self.queue.done(key)

    def _process(self, key: Key) -> None:
        if not self._known(key):  # deleted, or outside this shard
            self.queue.forget(key)
            return
        namespace, name = key
        provider = self.measurements_for(namespace, name) if self.measurements_for else None
        started = time.monotonic()
        try:
            outcome = reconcile(
                self.client,
                namespace,
                name,
                self.clock(),
                measurements=provider,
                router=self.router,
                reads=self.reads,
            )
        except NotLeader:
            self.metrics.reconcile_errors.labels("not-leader").inc()
            log.warning("%s/%s: the Lease was lost mid-reconcile; stopped", namespace, name)
            return
        except ReconcileConflict:
            self._retry(key, "conflict")
            return
        except (ApiException, HTTPError, OSError) as exc:
            self._retry(key, "api", exc)
            return
        except Exception:
            log.exception("%s/%s: reconcile failed", namespace, name)
            self._retry(key, "other")
            return
        finally:
            self.metrics.reconcile_seconds.observe(time.monotonic() - started)
        if outcome.retry is not None:  # refused until something the controller does not watch changes
            self._retry(key, outcome.retry)
            return
        self.queue.forget(key)
        self.metrics.count_rollbacks(outcome.notifications)
        if self.notifier is not None:  # after the status write: only persisted decisions are announced
            from ebbtide.adapters.notify.webhook import NotifyContext  # the notify extra, needed only here

            where = NotifyContext(namespace=namespace, deployment=name)
            for _, effect in outcome.notifications:
                self.notifier.notify(effect, where)
        if outcome.wake_at is not None:
            self.queue.add_after(key, outcome.wake_at - self.clock())

    def _retry(self, key: Key, error: str, exc: BaseException | None = None) -> None:
        self.metrics.reconcile_errors.labels(error).inc()
        delay = self.queue.add_rate_limited(key)
        log.info("%s/%s: %s%s; again in %.2fs", *key, error, f" ({exc})" if exc else "", delay)


def _asked(obj: Obj) -> bool:
    """Someone asked for something the controller has not acted on: a spec change not yet observed (the
    generation moved past ``status.observedGeneration``) or an action recorded and not yet consumed."""
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return (generation is not None and generation != observed) or bool(actions.pending(obj))
