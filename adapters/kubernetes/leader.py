"""Leader election on a ``coordination.k8s.io`` Lease: only the holder writes.

One :class:`LeaderElector` per controller replica. :meth:`LeaderElector.try_acquire_or_renew` takes the
Lease when it is free or expired and renews it when held; every write names the resourceVersion it read, so
of two replicas racing for an expired Lease one gets 409 Conflict and stays a follower. Expiry is judged as
client-go judges it, on this replica's own clock: a Lease is expired when its record has not changed for
``lease_duration`` since this replica *observed* it, so clocks that disagree between nodes do not matter.
A leader that has not renewed within ``renew_deadline`` (< ``lease_duration``) stops calling itself leader
before any other replica may take the Lease: :meth:`is_leader` is the check before every write.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException


@dataclass
class LeaderElector:
    api: client.CoordinationV1Api
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    #: seconds, monotonic; only differences matter (tests pass a fake clock)
    clock: Callable[[], float] = time.monotonic
    #: seconds since the epoch, for the Lease's acquireTime / renewTime fields (informational only)
    wall_clock: Callable[[], float] = time.time
    _observed: tuple[Any, ...] | None = field(default=None, init=False)
    _observed_at: float = field(default=0.0, init=False)
    _renewed_at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.renew_deadline < self.lease_duration:
            raise ValueError("renew_deadline must be positive and shorter than lease_duration")

    def is_leader(self) -> bool:
        return self._renewed_at is not None and self.clock() - self._renewed_at < self.renew_deadline

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this replica holds the Lease afterwards."""
        now = self.clock()
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return self._write(now, None, transitions=0)
        spec = lease.spec or client.V1LeaseSpec()
        record = (spec.holder_identity, spec.renew_time, spec.lease_transitions)
        if record != self._observed:
            self._observed, self._observed_at = record, now
        holder = spec.holder_identity
        expired = now - self._observed_at >= (spec.lease_duration_seconds or self.lease_duration)
        if holder and holder != self.identity and not expired:
            self._renewed_at = None
            return False
        transitions = (spec.lease_transitions or 0) + (holder != self.identity)
        return self._write(now, lease, transitions)

    def release(self) -> None:
        """Give the Lease up at shutdown, so a standby takes over without waiting for it to expire."""
        if not self.is_leader():
            return
        lease = self.api.read_namespaced_lease(self.name, self.namespace)
        spec = lease.spec or client.V1LeaseSpec()
        if spec.holder_identity == self.identity:
            spec.holder_identity = None
            self.api.replace_namespaced_lease(self.name, self.namespace, lease)
        self._renewed_at = None

    def _write(self, now: float, lease: client.V1Lease | None, transitions: int) -> bool:
        stamp = datetime.datetime.fromtimestamp(self.wall_clock(), datetime.UTC)
        spec = client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=int(self.lease_duration),
            renew_time=stamp,
            acquire_time=stamp,
            lease_transitions=transitions,
        )
        try:
            if lease is None:
                body = client.V1Lease(metadata=client.V1ObjectMeta(name=self.name), spec=spec)
                self.api.create_namespaced_lease(self.namespace, body)
            else:
                old = lease.spec or client.V1LeaseSpec()
                if old.holder_identity == self.identity and old.acquire_time is not None:
                    spec.acquire_time = old.acquire_time
                version = lease.metadata.resource_version if lease.metadata else None
                meta = client.V1ObjectMeta(name=self.name, resource_version=version)
                self.api.replace_namespaced_lease(
                    self.name, self.namespace, client.V1Lease(metadata=meta, spec=spec)
                )
        except ApiException as exc:
            if exc.status != 409:  # 409: another replica wrote first; it holds the Lease now
                raise
            return False
        self._renewed_at = now
        return True
