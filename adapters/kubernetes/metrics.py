"""The controller's own Prometheus metrics (``prometheus_client``), in a registry of their own.

=================================================  ===========  ============================================
``ebbtide_rollouts{phase}``                          gauge        workloads in the cache per status phase
``ebbtide_rollbacks_total{reason,mode}``             counter      rollbacks completed (rollout-rolled-back)
``ebbtide_reconcile_duration_seconds``               histogram    one reconcile, from the queue to the result
``ebbtide_reconcile_errors_total{error}``            counter      reconciles failed or refused (below)
``ebbtide_api_writes_total{verb,resource}``          counter      every write the controller sends
``ebbtide_workqueue_depth``                          gauge        keys ready to be reconciled
``ebbtide_workqueue_waiting``                        gauge        keys waiting for a timer (wake or backoff)
``ebbtide_leader``                                   gauge        1 while this replica holds the Lease
=================================================  ===========  ============================================

The ``error`` of a reconcile that failed or was refused: ``conflict``, ``api``, ``not-leader``, ``secret``
(a Secret the spec names is missing), ``workload-ref`` (the Deployment a workloadRef names is missing or
unusable), ``other``.

Reasons are coarse, so the label set stays small: ``manual`` (the template set back to an earlier
revision, or an explicit rollback command), ``aborted``, ``progress-deadline``, ``verification`` (a failed
verification or measurement) and ``other``. The mode is ``newRollout`` when the rollback completed as a
rollout of the good revision through the steps (the ``rollout-rolled-back`` right after that rollout's
``rollout-finished``), else ``immediate``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ebbtide.core.effects import Notify

#: reconcile latency buckets, seconds (a reconcile is a handful of API calls)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def rollback_reason(text: str) -> str:
    lowered = text.lower()
    if "deployed again" in lowered or lowered.startswith("rollback to revision"):
        return "manual"
    if "aborted" in lowered:
        return "aborted"
    if "progressdeadlineexceeded" in lowered or "progressdeadlineseconds" in lowered:
        return "progress-deadline"
    if "verification" in lowered or "measurement" in lowered:
        return "verification"
    return "other"


def rollbacks_in(notifications: Sequence[tuple[float, Notify]]) -> list[tuple[str, str]]:
    """(reason, mode) of every rollback completed in these notifications, in order."""
    out = []
    for i, (_, note) in enumerate(notifications):
        if note.event != "rollout-rolled-back":
            continue
        before = notifications[i - 1][1] if i else None
        mode = "newRollout" if before is not None and before.event == "rollout-finished" else "immediate"
        out.append((rollback_reason(str(note.payload.get("reason") or "")), mode))
    return out


class _Phases(Collector):
    def __init__(self, phases: Callable[[], Mapping[str, int]]) -> None:
        self._phases = phases

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("ebbtide_rollouts", "Workloads per rollout phase.", labels=["phase"])
        for phase, count in sorted(self._phases().items()):
            family.add_metric([phase], count)
        yield family


class Metrics:
    def __init__(self, phases: Callable[[], Mapping[str, int]], registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        r.register(_Phases(phases))
        self.rollbacks = Counter(
            "ebbtide_rollbacks", "Rollbacks completed, by reason and mode.", ["reason", "mode"], registry=r
        )
        self.reconcile_seconds = Histogram(
            "ebbtide_reconcile_duration_seconds", "Time of one reconcile.", buckets=BUCKETS, registry=r
        )
        self.reconcile_errors = Counter(
            "ebbtide_reconcile_errors", "Reconciles that failed, by error.", ["error"], registry=r
        )
        self.api_writes = Counter(
            "ebbtide_api_writes", "API writes sent, by verb and resource.", ["verb", "resource"], registry=r
        )
        self.queue_depth = Gauge("ebbtide_workqueue_depth", "Keys ready to be reconciled.", registry=r)
        self.queue_waiting = Gauge(
            "ebbtide_workqueue_waiting", "Keys waiting for a timer (a wake or a backoff).", registry=r
        )
        self.leader = Gauge("ebbtide_leader", "1 while this replica holds the Lease.", registry=r)

    def count_write(self, verb: str, resource: str) -> None:
        self.api_writes.labels(verb, resource).inc()

    def count_rollbacks(self, notifications: Sequence[tuple[float, Notify]]) -> None:
        for reason, mode in rollbacks_in(notifications):
            self.rollbacks.labels(reason, mode).inc()
