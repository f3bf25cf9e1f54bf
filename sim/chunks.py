"""Chunks of runs: how a batch is cut, what one chunk runs, and what an executor of chunks promises.

A batch of runs ``start .. stop-1`` seeded ``seed`` is cut into chunks ``(lo, hi)``; any process that holds
the prepared scenario can run any chunk (:func:`run_chunk`), because a run's seed derives from ``(seed, run
index)`` only (:func:`derive_seed`). Executors (:class:`~ebbtide.sim.processes.ProcessExecutor`,
:class:`~ebbtide.sim.dask_executor.DaskExecutor`) decide where the chunks run; ``simulate`` yields their
results in run order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Protocol

from ebbtide.sim.loop import Prepared, run_once
from ebbtide.sim.outcome import RunResult
from ebbtide.sim.prefix import Prefix

#: the runs ``lo .. hi-1`` of a batch
Chunk = tuple[int, int]

#: the most and the fewest runs of a chunk (unless ``chunk_size`` says otherwise)
MAX_CHUNK = 200
MIN_CHUNK = 4


def derive_seed(seed: int | str, index: int) -> int:
    """The seed of run ``index``: a stable 64-bit hash of ``"{seed}:{index}"`` (not PYTHONHASHSEED's)."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def run_chunk(
    prepared: Prepared,
    seed: int | str,
    lo: int,
    hi: int,
    keep: bool,
    measure: bool,
    prefix: Prefix | None = None,
) -> list[RunResult]:
    """Runs ``lo .. hi-1`` of a batch seeded ``seed``: what every executor runs, wherever it runs. A process
    that runs several chunks of the same scenario passes the same ``prefix`` to each."""
    prefix = Prefix() if prefix is None else prefix
    return [run_once(prepared, i, derive_seed(seed, i), keep, measure, prefix) for i in range(lo, hi)]


def chunk_bounds(start: int, stop: int, workers: int, size: int | None = None) -> list[Chunk]:
    """``start .. stop-1`` cut into chunks of ``size`` runs, or, by default, of a quarter of the runs left per
    worker (between 4 and 200 runs): they shrink towards the end, so the workers finish within a few runs of
    each other however the runs fall, while the early chunks are large enough to cost little to send."""
    if size:
        return [(lo, min(lo + size, stop)) for lo in range(start, stop, size)]
    chunks: list[Chunk] = []
    lo = start
    while lo < stop:
        n = max(MIN_CHUNK, min(MAX_CHUNK, (stop - lo) // (4 * workers)))
        chunks.append((lo, min(lo + n, stop)))
        lo += n
    return chunks


class ChunkExecutor(Protocol):
    """Runs chunks of runs somewhere and yields each chunk's results, in chunk order, as they complete.

    ``workers`` is how many chunks it runs at once (it sizes the chunks); an executor keeps at most a few
    chunks per worker in flight or waiting to be yielded, so memory stays flat however many runs.
    """

    @property
    def workers(self) -> int: ...

    def map_chunks(
        self, prepared: Prepared, seed: int | str, chunks: list[Chunk], keep: bool, measure: bool
    ) -> Iterator[list[RunResult]]: ...
