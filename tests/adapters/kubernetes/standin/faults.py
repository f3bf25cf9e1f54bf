"""The fault injector: what the stand-in API server does wrong, on purpose, to the requests that reach it.

Faults apply to HTTP requests only (the workload stand-in writes to the store directly, as the kubelet and
the ReplicaSet controller would). Each rule names the verbs it applies to; counters are per rule.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .store import ApiError

READS = frozenset({"get", "list", "watch"})
WRITES = frozenset({"create", "update", "patch", "delete"})
ALL = READS | WRITES


@dataclass(frozen=True, slots=True)
class Call:
    verb: str  # get | list | watch | create | update | patch | delete
    plural: str
    subresource: str = ""


@dataclass(slots=True)
class _Rule:
    every: int  # the nth, 2nth, ... matching call fails
    status: int
    verbs: frozenset[str]
    plural: str | None
    remaining: int | None  # None: forever
    seen: int = 0

    def fires(self, call: Call) -> bool:
        if call.verb not in self.verbs or (self.plural is not None and call.plural != self.plural):
            return False
        if self.remaining == 0:
            return False
        self.seen += 1
        if self.seen % self.every:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True


_REASONS = {409: "Conflict", 500: "InternalError", 503: "ServiceUnavailable", 429: "TooManyRequests"}


@dataclass
class FaultInjector:
    _rules: list[_Rule] = field(default_factory=list)
    _delays: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _drops: int = 0  # bumped to cut every open watch
    watch_event_limit: int | None = None  # cut each watch after this many events
    injected: list[tuple[Call, int]] = field(default_factory=list)

    def conflict_every(self, n: int, verbs: frozenset[str] = WRITES, plural: str | None = None) -> None:
        """A 409 storm: every nth write answers 409 Conflict, as if another writer had won the race."""
        self.error_every(n, 409, verbs, plural)

    def error_every(
        self, n: int, status: int = 500, verbs: frozenset[str] = ALL, plural: str | None = None
    ) -> None:
        with self._lock:
            self._rules.append(_Rule(n, status, verbs, plural, None))

    def fail_next(
        self, count: int, status: int = 500, verbs: frozenset[str] = ALL, plural: str | None = None
    ) -> None:
        with self._lock:
            self._rules.append(_Rule(1, status, verbs, plural, count))

    def slow(self, seconds: float, verbs: frozenset[str] = ALL) -> None:
        with self._lock:
            self._delays.append((seconds, verbs))

    def drop_watches(self) -> None:
        """Cut every watch stream open now (the connection closes without the final chunk)."""
        with self._lock:
            self._drops += 1

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._delays.clear()
            self.watch_event_limit = None

    # -- used by the server ----------------------------------------------------------------------
    def delay_for(self, call: Call) -> float:
        with self._lock:
            return sum(seconds for seconds, verbs in self._delays if call.verb in verbs)

    def check(self, call: Call) -> None:
        with self._lock:
            for rule in self._rules:
                if rule.fires(call):
                    self.injected.append((call, rule.status))
                    reason = _REASONS.get(rule.status, "InternalError")
                    raise ApiError(
                        rule.status, reason, f"injected fault: {reason} on {call.verb} {call.plural}"
                    )

    @property
    def drops(self) -> int:
        with self._lock:
            return self._drops
