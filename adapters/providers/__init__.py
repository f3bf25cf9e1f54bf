"""Measurement providers: the adapters that answer a ``StartMeasurement`` by asking a real metric source.

Each provider implements :class:`ebbtide.adapters.base.MeasurementProvider` and never raises for a failure of
the source: an unreachable server, a timeout, a bad query or a body it cannot read becomes a ``Measurement``
with ``error`` set, which the engine counts towards ``consecutiveErrorLimit``. :class:`Providers` picks the
provider by the key of a metric's provider block and adds Ocean CD's baseline comparison.
"""

from ebbtide.adapters.providers.baseline import BaselineProvider
from ebbtide.adapters.providers.cloudwatch import CloudWatchProvider
from ebbtide.adapters.providers.common import ProviderError
from ebbtide.adapters.providers.datadog import DatadogProvider
from ebbtide.adapters.providers.jenkins import JenkinsProvider
from ebbtide.adapters.providers.newrelic import NewRelicProvider
from ebbtide.adapters.providers.prometheus import (
    PrometheusError,
    PrometheusProvider,
    Series,
    instant_query,
    range_query,
)
from ebbtide.adapters.providers.registry import Missing, Providers, provider_for
from ebbtide.adapters.providers.web import WebProvider

__all__ = [
    "BaselineProvider",
    "CloudWatchProvider",
    "DatadogProvider",
    "JenkinsProvider",
    "Missing",
    "NewRelicProvider",
    "PrometheusError",
    "PrometheusProvider",
    "ProviderError",
    "Providers",
    "Series",
    "WebProvider",
    "instant_query",
    "provider_for",
    "range_query",
]
