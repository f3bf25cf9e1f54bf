"""The in-memory cluster measured by a real provider: replicas and traffic simulated, metrics asked of a real
source (a Prometheus server, a web endpoint, ... through :mod:`ebbtide.adapters.providers`).

:class:`ProvidedCluster` is a :class:`~ebbtide.adapters.memory.MemoryCluster` whose ``StartMeasurement``
effects go to ``provider`` instead of the scenario's signals. A provider answering at once has its answer
reported by the next ``observe``; an asynchronous one (a :class:`~ebbtide.adapters.base.PolledProvider`, such
as a :class:`~ebbtide.adapters.providers.dispatch.Dispatcher` scope) answers None and ``observe`` polls it. A
``StopVerification`` drops the answers not yet reported for that verification, as the memory cluster does.
"""

from __future__ import annotations

from ebbtide.adapters.base import MeasurementProvider, PolledProvider
from ebbtide.adapters.memory import ClusterConfig, MemoryCluster
from ebbtide.core.effects import Effect, StartMeasurement, StopVerification
from ebbtide.core.events import Event, Measurement


class ProvidedCluster(MemoryCluster):
    """The memory cluster, measured by ``provider``."""

    def __init__(
        self, provider: MeasurementProvider, config: ClusterConfig | None = None, seed: int | str = 0
    ) -> None:
        super().__init__(config, seed)
        self.provider = provider
        self._poll = provider.poll if isinstance(provider, PolledProvider) else None
        self._provided: dict[tuple[str, str], Measurement] = {}

    def apply(self, effect: Effect, now: float) -> None:
        if isinstance(effect, StartMeasurement):
            answer = self.provider.measure(effect, now)
            if answer is not None:
                self._provided[(effect.verification, effect.metric.name)] = answer
            return
        if isinstance(effect, StopVerification):
            for key in [k for k in self._provided if k[0] == effect.verification]:
                del self._provided[key]
        super().apply(effect, now)

    def observe(self, now: float) -> list[Event]:
        out = super().observe(now)
        out.extend(self._provided.values())
        self._provided.clear()
        if self._poll is not None:
            out.extend(self._poll())
        return out
