"""Measurement providers: the adapters that answer a ``StartMeasurement`` by asking a real metric source.

Each provider implements :class:`ebbtide.adapters.base.MeasurementProvider` and never raises for a failure of
the source: an unreachable server, a timeout, a bad query or a body it cannot read becomes a ``Measurement``
with ``error`` set, which the engine counts towards ``consecutiveErrorLimit``.
"""

from ebbtide.adapters.providers.prometheus import (
    PrometheusError,
    PrometheusProvider,
    Series,
    instant_query,
    range_query,
)

__all__ = ["PrometheusError", "PrometheusProvider", "Series", "instant_query", "range_query"]
