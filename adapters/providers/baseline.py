"""Ocean CD's baseline: judge the canary against the stable version's own figure, not a fixed threshold.

A metric with a ``baseline`` block (compiled into ``provider["baseline"]``) is measured twice: its own query
(the canary) and the baseline's query (the stable version), both through the same kind of provider. The
baseline is measured once per rollout, at the first measurement of the metric (Ocean CD runs it in a pre-phase
when the rollout starts), and kept for every later measurement of that metric in that rollout.

``threshold`` says how the canary figure ``c`` must stand against the baseline figure ``b``:

- ``<``, ``<=``, ``>``, ``>=``, ``=``: ``c < b``, ... (``=`` is exact equality);
- ``range``: ``b - |b| * minRange/100 <= c <= b + |b| * maxRange/100`` (the percentages the canary may be
  under and over the baseline; both required).

``result`` is then ``{"passed": true|false, "value": c, "baseline": b}``, and the metric's condition tests it:
``successCondition: result.passed``. A baseline metric with neither condition is refused (the engine would
pass any value). A figure is one number: a number, a one-element list (a Prometheus vector of one sample) or
a one-entry map (a New Relic row). No canary data (an empty vector, NaN, None) is ``None`` (inconclusive, the
engine's rule for no data); a baseline with no data is an Error measurement and is measured again next time.

The ``baseline.provider`` block must be of the metric's own provider type (Ocean CD's rule); it inherits the
metric's block (the VerificationProvider's address and keys) except the query fields it replaces.
"""

from __future__ import annotations

import math
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from ebbtide.adapters.base import MeasurementProvider
from ebbtide.adapters.providers.common import ProviderError, answer, needs_condition
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
}
#: the fields a baseline block replaces rather than inherits from the metric's block
QUERY_FIELDS = frozenset({"query", "queries", "formula", "metricDataQueries"})
#: baselines kept (one per rollout and metric); the oldest is forgotten first
KEEP = 256


def passes(threshold: str, canary: float, baseline: float, min_range: float, max_range: float) -> bool:
    """Whether the canary figure stands against the baseline figure as ``threshold`` asks."""
    if threshold == "range":
        return (
            baseline - abs(baseline) * min_range / 100 <= canary <= baseline + abs(baseline) * max_range / 100
        )
    return OPERATORS[threshold](canary, baseline)


class BaselineProvider:
    """Wraps the provider that measures a metric's queries, adding the baseline comparison.

    A metric without a ``baseline`` block is passed through to ``inner`` unchanged.
    """

    def __init__(self, inner: MeasurementProvider) -> None:
        self.inner = inner
        self._baselines: OrderedDict[tuple[Any, ...], float] = OrderedDict()
        self._lock = threading.Lock()

    def measure(self, start: StartMeasurement, now: float) -> Measurement | None:
        if not isinstance(start.metric.provider.get("baseline"), dict):
            return self.inner.measure(start, now)
        return answer(start, lambda: self._measure(start, now))

    def _measure(self, start: StartMeasurement, now: float) -> MeasuredValue:
        threshold, min_range, max_range, kind, query = _settings(start)
        needs_condition(start, "successCondition: result.passed")
        canary = figure(self._ask(start, now, "canary"), "canary")
        if canary is None:
            return None
        key = (start.stable, start.revision, start.template, start.metric.name)
        with self._lock:
            baseline = self._baselines.get(key)
        if baseline is None:
            merged = {k: v for k, v in start.metric.provider[kind].items() if k not in QUERY_FIELDS}
            metric = start.metric.model_copy(update={"provider": {kind: {**merged, **query}}})
            asked = StartMeasurement(
                verification=start.verification,
                template=start.template,
                metric=metric,
                revision=start.stable or start.revision,
                stable=start.stable,
            )
            baseline = figure(self._ask(asked, now, "baseline"), "baseline")
            if baseline is None:
                raise ProviderError("baseline: the baseline query returned no data")
            with self._lock:
                self._baselines[key] = baseline
                while len(self._baselines) > KEEP:
                    self._baselines.popitem(last=False)
        return {
            "passed": passes(threshold, canary, baseline, min_range, max_range),
            "value": canary,
            "baseline": baseline,
        }

    def _ask(self, start: StartMeasurement, now: float, which: str) -> MeasuredValue:
        m = self.inner.measure(start, now)
        if m is None:
            raise ProviderError(f"baseline: the {which} provider did not answer at once")
        if m.error is not None:
            raise ProviderError(f"{which}: {m.error}" if which == "baseline" else m.error)
        return m.value


def _settings(start: StartMeasurement) -> tuple[str, float, float, str, dict[str, Any]]:
    """threshold, minRange, maxRange, the provider type and the baseline's own block; ProviderError if bad."""
    config = start.metric.provider["baseline"]
    threshold = config.get("threshold")
    if threshold not in (*OPERATORS, "range"):
        raise ProviderError(f"baseline.threshold must be one of <, <=, >, >=, =, range, not {threshold!r}")
    ranges = [config.get("minRange"), config.get("maxRange")]
    if threshold == "range":
        for name, value in zip(("minRange", "maxRange"), ranges, strict=True):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ProviderError(f"baseline.{name} must be a percentage >= 0 with threshold range")
    kinds = [k for k in start.metric.provider if k != "baseline"]
    provider = config.get("provider")
    if not isinstance(provider, Mapping) or len(provider) != 1:
        raise ProviderError("baseline.provider must hold exactly one provider block")
    ((kind, query),) = provider.items()
    if kinds != [kind] or not isinstance(query, dict):
        raise ProviderError(
            f"baseline.provider.{kind} must be of the metric's own provider type "
            f"({', '.join(kinds) or 'none'})"
        )
    low, high = (float(v) if isinstance(v, int | float) else 0.0 for v in ranges)
    return str(threshold), low, high, kind, query


def figure(value: MeasuredValue, which: str) -> float | None:
    """The one number in a measured value; None for no data; ProviderError when it holds several or none."""
    if value is None:
        return None
    if isinstance(value, list):
        if not value:
            return None
        if len(value) > 1:
            raise ProviderError(f"{which}: a baseline compares one number; the query returned {len(value)}")
        return figure(value[0], which)
    if isinstance(value, dict):
        if len(value) != 1:
            raise ProviderError(f"{which}: a baseline compares one number; the row has {sorted(value)}")
        return figure(next(iter(value.values())), which)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderError(f"{which}: {value!r:.100} is not a number")
    return None if math.isnan(value) else float(value)
