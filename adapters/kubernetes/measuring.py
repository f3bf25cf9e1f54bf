"""The measurement provider of one workload, as a reconcile hands it to the adapter.

:func:`in_workload` wraps the controller's provider (a dispatcher scope) for one reconcile of one workload:

- **secret args**: each StartMeasurement's metric is copied with the ``{{args.x}}`` placeholders of its
  template's secret args (:mod:`.secrets`) filled in, just before the provider sees it; the persisted plan
  keeps the placeholders. Whatever comes back (a measurement's error text or value, now or through
  ``poll``) has every secret value blanked out as ``***`` before the engine records it, so a provider that
  quotes its URL in an error cannot carry a token into the status.
- **where the workload is**: a ``job`` metric gets the reserved block ``provider.job.ebbtide`` with the
  namespace, the workload's name and uid and the measurement's number (the metric's count in the engine
  state, plus one), which the Job provider (:mod:`ebbtide.adapters.providers.job`) names and owns its Job by.

:class:`Unpersisted` wraps the controller's provider for a whole reconcile: a polled result counts as
recorded only once the status that records it is written. A decision whose write conflicts is taken again
from the object read afresh, and the results it had polled are offered to that decision too; a reconcile
that gives up (conflicts every time, an API error, the Lease lost) gives them back to the provider
(:class:`~ebbtide.adapters.base.ReturnableProvider`), so the next reconcile records them. Without that, a
result polled by a decision that was never persisted is lost, and the engine asks again only when the
measurement times out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ebbtide.adapters.base import MeasurementProvider, PolledProvider, ReturnableProvider
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement
from ebbtide.core.state import RolloutState

from .secrets import SecretArgs

_ARG_REF = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}")
REDACTED = "***"


@dataclass
class Where:
    """The workload a reconcile measures for."""

    namespace: str
    name: str
    uid: str | None


@dataclass
class _InWorkload:
    inner: MeasurementProvider
    workload: Where
    secrets: SecretArgs
    state: Callable[[], RolloutState]

    def measure(self, start: StartMeasurement, now: float) -> Measurement | None:
        return self._redact(self.inner.measure(self._prepared(start), now))

    def poll(self) -> list[Measurement]:
        done = self.inner.poll() if isinstance(self.inner, PolledProvider) else []
        return [m for m in (self._redact(m) for m in done) if m is not None]

    def _prepared(self, start: StartMeasurement) -> StartMeasurement:
        provider = _substitute(start.metric.provider, self.secrets.get(start.template, {}))
        if isinstance(provider.get("job"), dict):
            provider["job"] = {**provider["job"], "ebbtide": self._context(start)}
        if provider == start.metric.provider:
            return start
        return replace(start, metric=start.metric.model_copy(update={"provider": provider}))

    def _context(self, start: StartMeasurement) -> dict[str, Any]:
        taken = 0
        for run in self.state().verifications:
            if run.id == start.verification:
                taken = next((m.count for m in run.metrics if m.name == start.metric.name), 0)
        w = self.workload
        return {"namespace": w.namespace, "workload": w.name, "uid": w.uid, "measurement": taken + 1}

    def _redact(self, m: Measurement | None) -> Measurement | None:
        values = sorted(
            {v for args in self.secrets.values() for v in args.values() if v}, key=len, reverse=True
        )
        if m is None or not values:
            return m
        error = _blank(m.error, values) if m.error is not None else None
        return replace(m, value=_blank(m.value, values), error=error)  # type: ignore[arg-type]


def in_workload(
    inner: MeasurementProvider | None,
    workload: Where,
    secrets: SecretArgs,
    state: Callable[[], RolloutState],
) -> MeasurementProvider | None:
    """``inner`` for one workload (None stays None: the reconcile then answers 'no measurement provider')."""
    return None if inner is None else _InWorkload(inner, workload, secrets, state)


def _substitute(obj: Any, values: dict[str, str]) -> Any:
    if isinstance(obj, str):
        return _ARG_REF.sub(lambda m: values.get(m.group(1), m.group(0)), obj)
    if isinstance(obj, dict):
        return {k: _substitute(v, values) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, values) for v in obj]
    return obj


def _blank(obj: MeasuredValue, secrets: list[str]) -> MeasuredValue:
    if isinstance(obj, str):
        for s in secrets:
            obj = obj.replace(s, REDACTED)
        return obj
    if isinstance(obj, dict):
        return {k: _blank(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_blank(v, secrets) for v in obj]
    return obj


class Unpersisted:
    """``inner`` for one reconcile: each result :meth:`poll` hands out is held until :meth:`persisted`;
    :meth:`again` (the next attempt of the same reconcile) offers every held result once more, and
    :meth:`give_back` returns them to ``inner``."""

    def __init__(self, inner: MeasurementProvider) -> None:
        self.inner = inner
        self.held: list[Measurement] = []
        self._offered: list[Measurement] = []

    def measure(self, start: StartMeasurement, now: float) -> Measurement | None:
        key = (start.verification, start.metric.name)
        if any((m.verification, m.metric) == key for m in self.held):
            return None  # its answer is held: the next poll offers it (a restored state re-sends it)
        return self.inner.measure(start, now)

    def poll(self) -> list[Measurement]:
        new = self.inner.poll() if isinstance(self.inner, PolledProvider) else []
        self.held += new
        out, self._offered = self._offered + new, []
        return out

    def again(self) -> None:
        """A new decision over the object read afresh: its first poll offers every held result."""
        self._offered = list(self.held)

    def persisted(self) -> None:
        """The status recording every result polled so far was written."""
        self.held = []

    def give_back(self) -> None:
        """The reconcile gave up: the results polled and not persisted go back to the provider."""
        held, self.held = self.held, []
        if held and isinstance(self.inner, ReturnableProvider):
            self.inner.give_back(held)


def unpersisted(inner: MeasurementProvider | None) -> Unpersisted | None:
    return None if inner is None else Unpersisted(inner)
