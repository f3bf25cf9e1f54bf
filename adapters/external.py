"""External verification answers (Ocean CD v1): an outside system says passed or failed.

A verification step whose template has an ``external`` metric sends ``start-external-verification`` and
waits; the engine holds the metric in flight until its ``timeout`` (then the fallback acts, see
docs/semantics.md). The answer reaches the engine as a :class:`~ebbtide.core.events.Measurement` whose value
is ``"passed"`` or ``"failed"``. This module turns an outside request into those events:

- :func:`waiting` lists the external verifications of a state that wait for an answer;
- :func:`parse_answer` validates a request body ``{"status": "passed" | "failed"}``;
- :func:`answers` builds the events for a state, or raises :class:`NotWaiting` with the reason (no
  verification waits: none started, or its fallback already fired; nothing is changed);
- :func:`handle` is the HTTP endpoint, free of any web framework (the operator API mounts it; :func:`wsgi`
  wraps it for any WSGI server): ``PUT /api/v1/namespaces/{ns}/rollouts/{name}/externalVerification`` and
  Ocean CD's ``PUT /ocean/cd/rollout/{rolloutId}/externalVerification`` (``rolloutId``:
  ``{namespace}.{name}.{n}``, ``n`` the rollout number of the ``start-external-verification`` payload),
  answering 200 with what was answered, 404 (no such rollout or path), 405, 409 (nothing waits; the state is
  unchanged), 422 (a bad body, naming the field).

Where the answer goes is a :class:`RolloutStore`'s business: :class:`DriverStore` hands it to an in-process
:class:`~ebbtide.adapters.driver.Driver` (the simulator, a demo, tests); the Kubernetes controller records
it on the workload (:mod:`ebbtide.adapters.kubernetes.external`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ebbtide.adapters.driver import Driver
from ebbtide.core import verification as ver
from ebbtide.core.events import Measurement
from ebbtide.core.state import RolloutState

__all__ = [
    "BadAnswer",
    "DriverStore",
    "NotWaiting",
    "Response",
    "RolloutStore",
    "Waiting",
    "answers",
    "handle",
    "parse_answer",
    "waiting",
    "wsgi",
]

Status = Literal["passed", "failed"]
STATUSES: tuple[Status, ...] = ("passed", "failed")


@dataclass(frozen=True)
class Waiting:
    """One external verification metric waiting for its answer."""

    verification: str
    template: str
    metric: str
    #: when its fallback acts if no answer came (the engine's deadline, in the state's clock)
    deadline: float | None


class BadAnswer(ValueError):
    """A request body that is not ``{"status": "passed" | "failed"}``: ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


class NotWaiting(LookupError):
    """No external verification waits for an answer; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def is_external(provider: Mapping[str, Any]) -> bool:
    return "external" in provider


def waiting(state: RolloutState) -> list[Waiting]:
    """The external verification metrics of ``state`` that are in flight (asked for, not answered yet)."""
    out: list[Waiting] = []
    for run in state.verifications:
        template = state.plan.templates.get(run.template)
        if run.phase in ver.TERMINAL or template is None:
            continue
        for mp, st in zip(template.metrics, run.metrics, strict=False):
            if is_external(mp.provider) and st.in_flight and st.phase not in ver.TERMINAL:
                out.append(Waiting(run.id, run.template, mp.name, st.next_at))
    return out


def parse_answer(body: bytes | str | Mapping[str, Any]) -> Status:
    """The status of an answer body ``{"status": "passed" | "failed"}``; :class:`BadAnswer` otherwise."""
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadAnswer("", f"the body is not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise BadAnswer("", 'the body must be a JSON object {"status": "passed" | "failed"}')
    for key in data:
        if key != "status":
            raise BadAnswer(str(key), "unknown field (the body takes only status)")
    if "status" not in data:
        raise BadAnswer("status", "required: passed or failed")
    status = data["status"]
    if status not in STATUSES:
        raise BadAnswer("status", f"must be passed or failed, not {status!r}")
    return status  # type: ignore[no-any-return]


def answers(state: RolloutState, status: Status, only: Iterable[str] | None = None) -> list[Measurement]:
    """The events answering every external verification of ``state`` that waits (or, with ``only``, those
    of the named verification runs); :class:`NotWaiting` with the reason when none does."""
    chosen = set(only) if only is not None else None
    found = [w for w in waiting(state) if chosen is None or w.verification in chosen]
    if not found:
        raise NotWaiting(why_not_waiting(state, chosen))
    return [Measurement(verification=w.verification, metric=w.metric, value=status) for w in found]


def why_not_waiting(state: RolloutState, chosen: set[str] | None = None) -> str:
    """Why no external verification waits: the last one ended (how), or none was started."""
    what = f"verification {', '.join(sorted(chosen))}" if chosen else "external verification"
    for run in reversed(state.verifications):
        template = state.plan.templates.get(run.template)
        if template is None or (chosen is not None and run.id not in chosen):
            continue
        for mp, st in zip(template.metrics, run.metrics, strict=False):
            if is_external(mp.provider) and (st.phase in ver.TERMINAL or run.phase in ver.TERMINAL):
                last = f" (last: {st.last})" if st.last else ""
                return (
                    f"no {what} waits for an answer: {run.id} ended {run.phase}{last}; a late answer "
                    "changes nothing"
                )
    failure = f"; the rollout failed: {state.failure_reason}" if state.failure_reason else ""
    late = "; a late answer changes nothing" if failure and ver.NO_ANSWER in failure else ""
    return f"no {what} waits for an answer (rollout phase: {state.phase}{failure}){late}"


# ----- the HTTP endpoint ------------------------------------------------------------------------------------
class RolloutStore(Protocol):
    """Where rollouts live, for :func:`handle`."""

    def state(self, namespace: str, name: str) -> RolloutState | None: ...

    def answer(self, namespace: str, name: str, events: list[Measurement]) -> None: ...


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)


_NATIVE = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/rollouts/(?P<name>[^/]+)/externalVerification/?$")
_OCEAN = re.compile(r"^/ocean/cd/rollout/(?P<id>[^/]+)/externalVerification/?$")


def _target(path: str) -> tuple[str, str, int | None] | None:
    m = _NATIVE.match(path)
    if m is not None:
        return m["ns"], m["name"], None
    m = _OCEAN.match(path)
    if m is None:
        return None
    ns, _, rest = m["id"].partition(".")
    name, _, number = rest.rpartition(".")
    if not ns or not name or not number.isdigit():
        return ("", "", -1)
    return ns, name, int(number)


def handle(method: str, path: str, body: bytes, store: RolloutStore) -> Response:
    """Answer one HTTP request to the external verification endpoint (see the module documentation)."""
    target = _target(path)
    if target is None:
        return Response(404, {"error": f"no such endpoint: {path}"})
    if method.upper() != "PUT":
        return Response(
            405,
            {"error": f"{method} is not allowed: PUT the answer"},
            (("Content-Type", "application/json"), ("Allow", "PUT")),
        )
    ns, name, number = target
    if number == -1:
        return Response(404, {"error": "rolloutId must be {namespace}.{name}.{rollout number}"})
    try:
        status = parse_answer(body)
    except BadAnswer as exc:
        return Response(422, {"error": exc.reason, "field": exc.field})
    state = store.state(ns, name)
    if state is None:
        return Response(404, {"error": f"no rollout {ns}/{name}"})
    if number is not None and number != state.rollout_id:
        reason = f"rollout {number} of {ns}/{name} is not the running one ({state.rollout_id})"
        return Response(409, {"error": reason})
    try:
        events = answers(state, status)
    except NotWaiting as exc:
        return Response(409, {"error": exc.reason})
    store.answer(ns, name, events)
    answered = [{"verification": e.verification, "metric": e.metric} for e in events]
    return Response(200, {"status": status, "answered": answered})


_REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
}


def wsgi(store: RolloutStore) -> Callable[[dict[str, Any], Callable[..., Any]], list[bytes]]:
    """:func:`handle` as a WSGI application."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        response = handle(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""), body, store)
        start_response(f"{response.status} {_REASONS.get(response.status, '')}", list(response.headers))
        return [json.dumps(response.body).encode()]

    return app


@dataclass
class DriverStore:
    """Rollouts driven in this process: each a :class:`Driver`; ``clock`` gives the drivers' ``now``."""

    clock: Callable[[], float]
    drivers: dict[tuple[str, str], Driver] = field(default_factory=dict)

    def state(self, namespace: str, name: str) -> RolloutState | None:
        """The rollout's state at the clock's ``now``: what is due by then (a deadline) acts first, so an
        answer read after its verification's deadline is late, as in the simulator."""
        driver = self.drivers.get((namespace, name))
        if driver is None:
            return None
        driver.pump(self.clock())
        return driver.state

    def answer(self, namespace: str, name: str, events: list[Measurement]) -> None:
        driver = self.drivers[(namespace, name)]
        now = self.clock()
        for event in events:
            driver.send(event, now)
