"""Rollouts driven in this process: :class:`MemoryBackend`, the API's backend for ``ebbtide demo`` and tests.

Each rollout is a :class:`~ebbtide.adapters.driver.Driver` over its own
:class:`~ebbtide.adapters.memory.MemoryCluster` (replicas that become ready after a delay, metric signals per
revision), moved forward by :meth:`MemoryBackend.sync` to the time of a clock the caller controls: a
:class:`ManualClock` in tests, an :class:`AcceleratedClock` (wall time times a speed) in the demo.

It behaves as the Kubernetes controller does where a user can see it:

- an action is the engine's :class:`~ebbtide.core.events.Command` at the clock's time; a rejected one
  changes nothing and raises :class:`~.backend.Rejected` with the engine's reason (both are recorded as the
  view's ``lastAction``);
- spec documents live per namespace; :meth:`MemoryBackend.apply_specs` validates the whole set (what is
  stored plus what is sent, and every rollout's plan must still compile) and stores nothing on error; a
  changed plan reaches each rollout as a :class:`~ebbtide.core.events.SpecChanged`, which the engine applies
  when the running rollout ends (at once when the rollout is live or failed), as the controller does;
- :meth:`MemoryBackend.history` accumulates the arrivals at live as the controller's ``status.liveHistory``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ebbtide.adapters.driver import Driver
from ebbtide.adapters.external import RolloutStore
from ebbtide.adapters.kubernetes.summary import live_history
from ebbtide.adapters.memory import ClusterConfig, MemoryCluster
from ebbtide.adapters.view import summary_data, view_data
from ebbtide.core.events import Command, Deploy, Measurement, SpecChanged, parse_event
from ebbtide.core.plan import Plan
from ebbtide.core.spec import Document, Problem, SpecError, SpecSet, compile_plan
from ebbtide.core.state import RolloutState

from .backend import ACTIONS, InvalidSpec, NotFound, Obj, Rejected

#: the spec kinds stored per namespace
SPEC_KINDS = ("RolloutSpec", "Strategy", "VerificationTemplate", "VerificationProvider")

#: the most events one sync may handle per rollout before it stops (an engine that never settles)
_MAX_STEPS = 100_000


class ManualClock:
    """A clock that moves only when told: ``clock.now = t`` or :meth:`advance`."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class AcceleratedClock:
    """Rollout time that runs ``speed`` times faster than the wall clock, from ``start``."""

    def __init__(self, speed: float = 10.0, start: float = 0.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.start = start
        self._wall = time.monotonic()

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self._wall) * self.speed


@dataclass
class _Rollout:
    namespace: str
    name: str
    cluster: MemoryCluster
    driver: Driver
    now: float
    history: list[Obj] = field(default_factory=list)
    last_action: Obj | None = None
    acted: dict[str, Obj] = field(default_factory=dict)  # Idempotency-Key → the answer given


def _problem_dict(p: Problem) -> Obj:
    document = f"{p.kind or '?'}/{p.name or '?'}"
    return {"document": document, "field": p.field, "reason": p.reason}


def _key(doc: Obj) -> tuple[str, str]:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return str(doc.get("kind")), str(name)


class MemoryBackend:
    """The :class:`~.backend.Backend` over rollouts driven in this process (see the module documentation).

    Thread-safe: every method holds one lock, so the API's worker threads and the demo's ticker share it.
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock: Callable[[], float] = clock if clock is not None else ManualClock()
        self._lock = threading.RLock()
        self._rollouts: dict[tuple[str, str], _Rollout] = {}
        self._specs: dict[str, dict[tuple[str, str], Obj]] = {}
        self._generation = 0

    # ----- building the demo ------------------------------------------------------------------------------
    def add(
        self,
        namespace: str,
        documents: Iterable[Obj],
        cluster: ClusterConfig,
        *,
        rollout: str,
        stable: str,
        seed: int = 0,
    ) -> None:
        """Store spec documents and start the rollout of RolloutSpec ``rollout``: ``stable`` is live at the
        clock's time with all its pods ready. Raises :class:`~.backend.InvalidSpec` (nothing stored)."""
        with self._lock:
            specs = self._validated(namespace, list(documents), also=rollout)
            plan = compile_plan(specs, rollout)
            now = self.clock()
            mem = MemoryCluster(cluster, seed=seed)
            driver = Driver.for_plan(mem, plan, record=False)
            driver.handle(Deploy(revision=stable), now)
            mem.make_ready(stable, now)
            driver.pump(now)
            entry = _Rollout(namespace, rollout, mem, driver, now)
            entry.history = live_history({}, driver.state, now)
            self._rollouts[(namespace, rollout)] = entry
            self._generation += 1

    def deploy(self, namespace: str, name: str, revision: str) -> None:
        """A new revision of the workload (a changed pod template)."""
        with self._lock:
            self.sync()
            entry = self._get(namespace, name)
            entry.driver.send(Deploy(revision=revision), entry.now)
            self._settled(entry)

    def sync(self) -> None:
        """Move every rollout to the clock's time: everything due by then happens, in order."""
        with self._lock:
            now = self.clock()
            for entry in self._rollouts.values():
                if self._advance(entry, now):
                    self._settled(entry)

    def state(self, namespace: str, name: str) -> RolloutState | None:
        """The engine state at the clock's time (``RolloutStore``, for external verification answers)."""
        with self._lock:
            entry = self._rollouts.get((namespace, name))
            if entry is None:
                return None
            self.sync()
            return entry.driver.state

    def answer(self, namespace: str, name: str, events: list[Measurement]) -> None:
        with self._lock:
            entry = self._get(namespace, name)
            for event in events:
                entry.driver.send(event, entry.now)
            self._settled(entry)

    # ----- the Backend protocol ---------------------------------------------------------------------------
    def list_rollouts(self, namespace: str | None) -> list[Obj]:
        with self._lock:
            return [
                summary_data(self._view(entry))
                for key, entry in sorted(self._rollouts.items())
                if namespace is None or key[0] == namespace
            ]

    def view(self, namespace: str, name: str) -> Obj:
        with self._lock:
            return self._view(self._get(namespace, name))

    def history(self, namespace: str, name: str) -> list[Obj]:
        with self._lock:
            return [dict(h) for h in self._get(namespace, name).history]

    def act(
        self, namespace: str, name: str, action: str, to: str | None, by: str, key: str | None = None
    ) -> Obj:
        if action not in ACTIONS:
            raise Rejected(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
        if to is not None and action != "rollback":
            raise Rejected(f"'to' is only for rollback, not for {action}")
        with self._lock:
            entry = self._get(namespace, name)
            if key is not None and key in entry.acted:  # the same request again: acted on once
                return entry.acted[key]
            self.sync()
            command = parse_event({"kind": "command", "action": action, "revision": to})
            assert isinstance(command, Command)
            decision = entry.driver.send(command, entry.now)
            reason = decision.rejected
            result: Obj = {
                "id": key or uuid.uuid4().hex,
                "action": action,
                "result": "rejected" if reason else "accepted",
                "reason": reason,
                "by": by,
                "at": entry.now,
            }
            if to is not None:
                result["to"] = to
            entry.last_action = result
            self._settled(entry)
            if reason:
                raise Rejected(reason)
            answer = {k: result[k] for k in ("id", "action", "result", "reason")}
            if key is not None:
                entry.acted[key] = answer
            return answer

    def get_spec(self, namespace: str, kind: str, name: str) -> Obj:
        with self._lock:
            doc = self._specs.get(namespace, {}).get((kind, name))
            if doc is None:
                raise NotFound(f"no {kind} {name} in namespace {namespace}")
            return dict(doc)

    def apply_specs(self, namespace: str, documents: list[Obj], by: str) -> list[Obj]:
        with self._lock:
            specs = self._validated(namespace, documents)
            self._replan(namespace, specs)
            return [dict(d) for d in documents]

    def delete_spec(self, namespace: str, kind: str, name: str, by: str) -> None:
        with self._lock:
            stored = self._specs.get(namespace, {})
            if (kind, name) not in stored:
                raise NotFound(f"no {kind} {name} in namespace {namespace}")
            rest = [d for k, d in stored.items() if k != (kind, name)]
            try:
                self._check(namespace, rest, {})
            except InvalidSpec as exc:
                raise Rejected(f"{kind} {name} is still used: {exc}") from None
            del stored[(kind, name)]
            self._generation += 1

    def external(self) -> RolloutStore:
        return self

    def generation(self) -> int:
        return self._generation

    # ----- inside ------------------------------------------------------------------------------------------
    def _get(self, namespace: str, name: str) -> _Rollout:
        entry = self._rollouts.get((namespace, name))
        if entry is None:
            raise NotFound(f"no rollout {name} in namespace {namespace}")
        return entry

    def _view(self, entry: _Rollout) -> Obj:
        status: Obj = {"lastAction": entry.last_action}
        return view_data(entry.name, entry.namespace, entry.driver.state, status)

    def _advance(self, entry: _Rollout, now: float) -> bool:
        """Drive one rollout to ``now``; whether anything happened."""
        driver, mem = entry.driver, entry.cluster
        before = driver.events_handled
        for _ in range(_MAX_STEPS):
            t = driver.next_time(entry.now)
            if t is None or t > now:
                break
            entry.now = max(entry.now, t)
            mem.advance(entry.now)
            driver.pump(entry.now)
        entry.now = max(entry.now, now)
        mem.advance(entry.now)
        driver.pump(entry.now)
        return driver.events_handled != before

    def _settled(self, entry: _Rollout) -> None:
        entry.history = live_history({"liveHistory": entry.history}, entry.driver.state, entry.now)
        self._generation += 1

    def _validated(self, namespace: str, documents: list[Obj], also: str | None = None) -> SpecSet:
        """The namespace's specs with ``documents`` applied, checked whole; stored only when valid."""
        new: dict[tuple[str, str], Obj] = {}
        problems: list[Obj] = []
        for i, doc in enumerate(documents):
            if not isinstance(doc, dict):
                problems.append({"document": f"#{i + 1}", "field": "", "reason": "not a JSON object"})
                continue
            kind, name = _key(doc)
            meta = doc.get("metadata")
            ns = meta.get("namespace") if isinstance(meta, dict) else None
            if kind not in SPEC_KINDS:
                problems.append(
                    {
                        "document": f"{kind}/{name}",
                        "field": "kind",
                        "reason": f"not one of {', '.join(SPEC_KINDS)}",
                    }
                )
            elif ns not in (None, namespace):
                problems.append(
                    {
                        "document": f"{kind}/{name}",
                        "field": "metadata.namespace",
                        "reason": f"is {ns}, not the namespace of the request ({namespace})",
                    }
                )
            new[(kind, name)] = doc
        if problems:
            raise InvalidSpec(problems)
        merged = {**self._specs.get(namespace, {}), **new}
        specs = self._check(namespace, list(merged.values()), new, also)
        self._specs[namespace] = merged
        self._generation += 1
        return specs

    def _check(
        self, namespace: str, docs: list[Obj], new: dict[tuple[str, str], Obj], also: str | None = None
    ) -> SpecSet:
        parsed = [Document(f"{_key(d)[0]}/{_key(d)[1]}", i + 1, d) for i, d in enumerate(docs)]
        try:
            specs = SpecSet.from_documents(parsed)
            names = {n for (ns, n) in self._rollouts if ns == namespace} | ({also} if also else set())
            problems: list[Problem] = []
            for name in sorted(names):
                try:
                    compile_plan(specs, name)
                except SpecError as exc:
                    problems.extend(exc.problems)
            if problems:
                raise SpecError(problems)
        except SpecError as exc:
            raise InvalidSpec([_problem_dict(p) for p in exc.problems]) from None
        return specs

    def _replan(self, namespace: str, specs: SpecSet) -> None:
        """Hand every rollout of the namespace whose plan changed the new plan (as the controller does)."""
        self.sync()
        for (ns, name), entry in self._rollouts.items():
            if ns != namespace:
                continue
            plan: Plan = compile_plan(specs, name)
            state = entry.driver.state
            if plan != state.plan and plan != state.next_plan:
                entry.driver.send(SpecChanged(plan=plan), entry.now)
                self._settled(entry)
