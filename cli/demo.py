"""``ebbtide demo``: rollouts on the in-memory cluster in accelerated time, with the API and the dashboard.

Three rollouts are built from the bundled examples (their scenario files give the specs, the revisions'
readiness and metric signals):

- ``shop/orders`` (examples/scenarios/basic-canary.yaml): v2 starts failing at 40% of the traffic; its
  verification fails and an immediate rollback brings v1's pods back one at a time (maxSurge 1), so the
  rollback's percent complete climbs for a while;
- ``shop/checkout`` (examples/scenarios/healthy-release.yaml): a healthy canary through every phase to live;
- ``web/search`` (examples/specs/pause-policy.yaml, with a healthy v2): it stops at its ``pause: {}`` step,
  paused until someone promotes it.

Each rollout gets v2 at once, and a next revision (v3, v4, ...) whenever it has been settled (live, or failed
with nothing left to do) for ``every`` seconds of rollout time; ``orders``'s new revisions alternate
between its failing and its healthy behaviour. The engine, the memory cluster and the API are the real ones:
only time runs ``--speed`` times faster. Only ``127.0.0.1`` is served (everyone may do everything).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ebbtide.adapters.memory import ClusterConfig
from ebbtide.adapters.specfiles import read_documents
from ebbtide.core.spec import SpecSet
from ebbtide.sim.scenario import load_scenario

from .common import BadInput, guard

if TYPE_CHECKING:
    from ebbtide.adapters.api.memory import MemoryBackend


def _bundled() -> Path:
    """The bundled examples: package data of ``ebbtide.examples`` (a wheel, or the source tree's examples/
    through an editable install)."""
    return Path(str(files("ebbtide.examples")))


#: the bundled examples
EXAMPLES = _bundled()
#: the last revision the demo deploys (v2 .. v{MAX_REVISION})
MAX_REVISION = 40


@dataclass(frozen=True)
class DemoRollout:
    #: the scenario file, under examples/scenarios
    scenario: str
    #: the scenario revisions whose behaviour v2, v3, ... take in turn
    behaviours: tuple[str, ...]


ROLLOUTS = (
    DemoRollout("basic-canary.yaml", ("v2", "v1")),
    DemoRollout("healthy-release.yaml", ("v2",)),
    DemoRollout("crash-loop-pause.yaml", ("v1",)),
)


@dataclass
class _Running:
    namespace: str
    name: str
    revision: int
    settled_since: float | None = None


class Demo:
    """The demo's rollouts on a :class:`~ebbtide.adapters.api.memory.MemoryBackend`; :meth:`tick` moves them
    to the backend clock's time and deploys the next revisions."""

    def __init__(self, backend: MemoryBackend, examples: Path = EXAMPLES, every: float = 300.0) -> None:
        self.backend = backend
        self.every = every
        self.running: list[_Running] = []
        for index, rollout in enumerate(ROLLOUTS):
            self.running.append(self._add(examples / "scenarios" / rollout.scenario, rollout, index))
        for r in self.running:
            backend.deploy(r.namespace, r.name, "v2")

    def _add(self, path: Path, rollout: DemoRollout, index: int) -> _Running:
        scenario = load_scenario(path)
        spec = scenario.spec
        files = [path] + [path.parent / rel for rel in spec.specs]
        documents = [d for d in read_documents(files) if d.kind != "Scenario"]
        specs = SpecSet.from_documents(documents)
        name = spec.rollout or next(iter(specs.rollout_specs))
        namespace = specs.rollout_specs[name].spec.spot_deployment
        ns = namespace.namespace if namespace is not None and namespace.namespace else "default"
        revisions = dict(spec.revisions)
        for n in range(2, MAX_REVISION + 1):
            like = rollout.behaviours[(n - 2) % len(rollout.behaviours)]
            revisions[f"v{n}"] = spec.revisions[like]
        cluster = ClusterConfig(
            revisions=revisions,
            metrics=tuple(spec.metrics),
            external=tuple(spec.external_verifiers),
            rps=spec.traffic.rps,
            header_share=spec.traffic.header_share,
        )
        stable = spec.stable.revision if spec.stable is not None else "v1"
        bodies: list[dict[str, Any]] = [d.body for d in documents]
        self.backend.add(ns, bodies, cluster, rollout=name, stable=stable, seed=spec.seed + index)
        return _Running(ns, name, 2)

    def tick(self) -> None:
        """Move the rollouts to the clock's time; deploy a next revision where one has settled long enough."""
        backend = self.backend
        backend.sync()
        now = backend.clock()
        for r in self.running:
            view = backend.view(r.namespace, r.name)
            settled = view["phase"] == "live" or (view["phase"] == "failed" and view["rollback"] is None)
            if not settled:
                r.settled_since = None
                continue
            if r.settled_since is None:
                r.settled_since = now
            elif now - r.settled_since >= self.every and r.revision < MAX_REVISION:
                r.revision += 1
                r.settled_since = None
                backend.deploy(r.namespace, r.name, f"v{r.revision}")


def listen(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: any free port); a port in use is a clear error."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise BadInput(f"--port {port}: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    return sock


@guard
def demo_cmd(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="the port on 127.0.0.1 (0: any free port)")
    ] = 8080,
    speed: Annotated[
        float, typer.Option(min=0.1, max=1000.0, help="rollout seconds per wall-clock second")
    ] = 10.0,
    every: Annotated[
        float, typer.Option(min=1.0, help="rollout seconds a settled rollout waits for its next revision")
    ] = 300.0,
    duration: Annotated[
        float | None, typer.Option(min=0.0, help="stop after this many wall-clock seconds (default: Ctrl-C)")
    ] = None,
    examples: Annotated[
        Path, typer.Option(help="the examples folder of an ebbtide source tree (default: the bundled one)")
    ] = EXAMPLES,
) -> None:
    """Try ebbtide without a cluster: rollouts on the in-memory cluster in accelerated time, served with the
    HTTP API and the dashboard on 127.0.0.1."""
    try:
        import uvicorn

        from ebbtide.adapters.api.app import create_app
        from ebbtide.adapters.api.auth import AllowLocal
        from ebbtide.adapters.api.memory import AcceleratedClock, MemoryBackend
    except ImportError as exc:
        raise BadInput(f"the demo needs: pip install 'ebbtide[api]' ({exc})") from None
    if not (examples / "scenarios").is_dir():
        raise BadInput(f"--examples {examples}: no scenarios/ folder (the demo runs ebbtide's examples/)")
    backend = MemoryBackend(AcceleratedClock(speed))
    demo = Demo(backend, examples, every=every)
    sock = listen(port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    # open dashboards keep event streams open: a stop waits for them at most 2 s
    config = uvicorn.Config(
        create_app(backend, AllowLocal()), log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    stop = threading.Event()

    def ticking() -> None:
        while not stop.wait(0.1):
            demo.tick()

    threads = [
        threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True),
        threading.Thread(target=ticking, daemon=True),
    ]
    for t in threads:
        t.start()
    ends = None if duration is None else time.monotonic() + duration
    try:
        while not server.started and threads[0].is_alive():
            time.sleep(0.02)
        typer.echo(f"ebbtide demo: dashboard and API on {url} (x{speed:g} speed; Ctrl-C stops)", err=False)
        while threads[0].is_alive() and (ends is None or time.monotonic() < ends):
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.should_exit = True
        threads[0].join(timeout=10)
        sock.close()
