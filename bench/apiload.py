"""What the operator API benchmarks (api_bench.py, api_kube_bench.py) share: a JSON figure line from
latencies, timed GETs, and a watcher thread that notes when a server-sent event stream's events arrive."""

from __future__ import annotations

import json
import statistics
import threading
import time
from typing import Any

import httpx


def emit(name: str, values: list[float], unit: str = "ms", **extra: Any) -> None:
    """Print one figure: the median of ``values``, with p95, max and n."""
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    figure = {
        "name": name,
        "value": round(statistics.median(values), 2),
        "unit": unit,
        "p95": round(p95, 2),
        "max": round(values[-1], 2),
        "n": len(values),
        **extra,
    }
    print(json.dumps(figure), flush=True)


def timed(client: httpx.Client, url: str, times: int) -> list[float]:
    """Milliseconds of each of ``times`` GETs of ``url``."""
    out = []
    for _ in range(times):
        t0 = time.perf_counter()
        client.get(url).raise_for_status()
        out.append((time.perf_counter() - t0) * 1000)
    return out


class Watcher(threading.Thread):
    """One client watching one rollout: when its first event came, and when each later event came."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers or {}
        self.opened = 0.0
        self.first: float | None = None
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.changed = threading.Event()
        self.stop = False

    def run(self) -> None:
        self.opened = time.perf_counter()
        try:
            with (
                httpx.Client(timeout=60, headers=self.headers) as client,
                client.stream("GET", self.url) as response,
            ):
                for line in response.iter_lines():
                    if self.stop:
                        return
                    if line.startswith("data: "):
                        now = time.perf_counter()
                        if self.first is None:
                            self.first = now
                        else:
                            self.events.append((now, json.loads(line[6:])))
                            self.changed.set()
        except httpx.HTTPError:
            if not self.stop:
                raise  # the server went away before the bench ended
