"""Which provider answers a metric: chosen by the key of its provider block (``prometheus``, ``web``, ...).

``Providers`` is the one :class:`~ebbtide.adapters.base.MeasurementProvider` a driver or a dispatcher needs:
it looks at each ``StartMeasurement``'s ``metric.provider``, hands it to the provider registered for that key,
and wraps metrics that have a ``baseline`` block in the baseline comparison. A metric whose provider block is
missing, names no registered provider, or names several, gets an
Error measurement that says so; nothing raises. An ``external`` metric (Ocean CD's external
verification) is answered None: its answer comes from outside, as a Measurement event.

The Kubernetes Job provider needs a cluster: ``job`` answers an Error saying so until one is plugged in by
key, as ``ebbtide controller`` does: ``Providers(extra={"job": JobProvider(api_client)})``
(:mod:`ebbtide.adapters.providers.job`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ebbtide.adapters.base import MeasurementProvider
from ebbtide.adapters.providers.baseline import BaselineProvider
from ebbtide.adapters.providers.cloudwatch import CloudWatchProvider
from ebbtide.adapters.providers.datadog import DatadogProvider
from ebbtide.adapters.providers.jenkins import JenkinsProvider
from ebbtide.adapters.providers.newrelic import NewRelicProvider
from ebbtide.adapters.providers.prometheus import PrometheusProvider
from ebbtide.adapters.providers.web import WebProvider
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement
from ebbtide.core.plan import MetricPlan
from ebbtide.core.spec import POD_TEMPLATE_HASH

NO_CLUSTER = "the job provider needs a Kubernetes cluster: it runs in the controller (ebbtide controller)"


class Missing:
    """The provider of a metric nobody can measure: every measurement is an Error with the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        return Measurement(verification=start.verification, metric=start.metric.name, error=self.reason)


class External:
    """An external verification's metric: measured by someone else (an outside system posts the answer,
    which reaches the engine as a Measurement event), so ``measure`` answers None: later, not here."""

    def measure(self, start: StartMeasurement, now: float) -> None:
        return None


class Providers:
    """Dispatches each measurement to the provider registered for its provider block's key.

    ``prometheus`` is a :class:`PrometheusProvider` (give one with its default ``address`` or a backtest
    ``origin`` to change it); ``extra`` adds or replaces providers by key.
    """

    def __init__(
        self,
        *,
        prometheus: PrometheusProvider | None = None,
        extra: Mapping[str, MeasurementProvider] | None = None,
    ) -> None:
        self.by_key: dict[str, MeasurementProvider] = {
            "prometheus": prometheus or PrometheusProvider(),
            "web": WebProvider(),
            "datadog": DatadogProvider(),
            "newRelic": NewRelicProvider(),
            "cloudWatch": CloudWatchProvider(),
            "jenkins": JenkinsProvider(),
            "external": External(),
            "job": Missing(NO_CLUSTER),
            **(extra or {}),
        }
        self._plain = _Plain(self)
        self._baseline = BaselineProvider(self._plain)

    def provider_for(self, metric: MetricPlan) -> MeasurementProvider:
        """The provider that measures ``metric`` (a :class:`Missing` one when none can)."""
        if "baseline" in metric.provider:
            return self._baseline
        return self._lookup(metric)

    def measure(self, start: StartMeasurement, now: float) -> Measurement | None:
        start = with_revisions(start)
        return self.provider_for(start.metric).measure(start, now)

    def _lookup(self, metric: MetricPlan) -> MeasurementProvider:
        keys = [k for k in metric.provider if k != "baseline"]
        if not keys:
            return Missing(f"metric {metric.name!r} has no provider block")
        if len(keys) > 1:
            return Missing(
                f"metric {metric.name!r} has several provider blocks ({', '.join(keys)}): give one"
            )
        provider = self.by_key.get(keys[0])
        if provider is None:
            known = ", ".join(sorted(self.by_key))
            return Missing(f"no provider for {keys[0]!r} (metric {metric.name!r}); available: {known}")
        return provider


def with_revisions(start: StartMeasurement) -> StartMeasurement:
    """``start`` with the placeholders of ``podTemplateHashValue`` args filled in: ``Latest`` is the revision
    under test, ``Stable`` the stable one (a revision is its pod-template-hash in a cluster, its name in the
    simulator). Without a stable revision (a first rollout) the placeholder stays and the provider answers an
    Error naming it, as for any arg without a value."""
    values = {"Latest": start.revision, "Stable": start.stable}
    provider = _fill(start.metric.provider, values)
    if provider == start.metric.provider:
        return start
    return replace(start, metric=start.metric.model_copy(update={"provider": provider}))


def _fill(obj: Any, values: Mapping[str, str | None]) -> Any:
    if isinstance(obj, str):
        for kind, placeholder in POD_TEMPLATE_HASH.items():
            value = values.get(kind)
            if value is not None and placeholder in obj:
                obj = obj.replace(placeholder, value)
        return obj
    if isinstance(obj, dict):
        return {k: _fill(v, values) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, values) for v in obj]
    return obj


class _Plain:
    """The registry without the baseline wrapper: what the baseline comparison measures each query with."""

    def __init__(self, providers: Providers) -> None:
        self.providers = providers

    def measure(self, start: StartMeasurement, now: float) -> Measurement | None:
        return self.providers._lookup(start.metric).measure(start, now)


_DEFAULT = Providers()


def provider_for(metric: MetricPlan) -> MeasurementProvider:
    """The default registry's provider for ``metric`` (see :class:`Providers` to configure one)."""
    return _DEFAULT.provider_for(metric)
