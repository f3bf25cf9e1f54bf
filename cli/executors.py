"""Where ``simulate`` and ``compare`` send their runs: ``--executor processes`` (this machine, ``--workers``
processes) or ``--executor dask`` (a Dask distributed cluster: ``--dask-scheduler ADDRESS``, or a local one of
``--workers`` processes on 127.0.0.1). Results are identical whichever runs them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

import typer

from ebbtide.sim.runner import ChunkExecutor

from .common import BadInput


class ExecutorName(StrEnum):
    processes = "processes"
    dask = "dask"


ExecutorOption = Annotated[
    ExecutorName,
    typer.Option(
        "--executor",
        help="processes: --workers processes on this machine; dask: a Dask distributed cluster "
        "(pip install 'ebbtide[dask]')",
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="with --executor dask: the scheduler (tcp://host:8786); default: a local cluster of --workers "
        "processes on 127.0.0.1",
    ),
]


def check_executor(name: ExecutorName, scheduler: str | None) -> None:
    """The executor options make sense and what they need is installed (checked before any work)."""
    if scheduler is not None and name is not ExecutorName.dask:
        raise BadInput(f"--dask-scheduler {scheduler}: only with --executor dask")
    if name is ExecutorName.dask:
        from ebbtide.sim.dask_executor import dask_available

        if not dask_available():
            raise BadInput("--executor dask needs dask: pip install 'ebbtide[dask]'")


@contextlib.contextmanager
def executor_for(name: ExecutorName, workers: int, scheduler: str | None) -> Iterator[ChunkExecutor | None]:
    """The executor the options ask for, open for the whole command (None: ``simulate``'s own, by
    ``workers``). Raises :class:`BadInput` before any run when it cannot be had."""
    check_executor(name, scheduler)
    if name is ExecutorName.processes:
        yield None
        return
    from ebbtide.sim.dask_executor import DaskExecutor, DaskUnavailable

    try:
        executor = DaskExecutor(scheduler, workers=workers)
        executor.__enter__()
    except DaskUnavailable as exc:
        raise BadInput(str(exc)) from None
    try:
        yield executor
    finally:
        executor.close()
