"""Server-sent event streams of the rollouts list and of one rollout's detailed view.

``GET /api/v1/watch/rollouts[?namespace=ns]`` sends ``event: list`` with ``{"items": [...]}`` (the list
route's body) and ``GET /api/v1/namespaces/{ns}/rollouts/{name}/watch`` sends ``event: view`` with the view
route's body: once at once, then whenever ``backend.generation()`` moved and the JSON changed. A comment line
is sent as a heartbeat when nothing was sent for ``HEARTBEAT`` seconds (proxies close silent connections).
A watched rollout that goes away ends its stream with ``event: gone``. A stream ends when its client goes
away; ``app.state.open_streams`` counts the streams open.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from . import deps
from .auth import Caller
from .backend import Backend, NotFound, Obj
from .routes import call

router = APIRouter(prefix="/api/v1", tags=["watch"])

#: seconds between two looks at ``backend.generation()`` (``app.state.stream_poll`` overrides)
POLL = 0.25
#: seconds of silence after which a heartbeat comment is sent (``app.state.stream_heartbeat`` overrides)
HEARTBEAT = 15.0

_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _setting(request: Request, name: str, default: float) -> float:
    value = getattr(request.app.state, name, None)
    return float(value) if value is not None else default


def _watcher(verb: str) -> Callable[[Request], Caller]:
    def check(request: Request) -> Caller:
        params = request.path_params
        ns = params.get("ns") or request.query_params.get("namespace") or ""
        return deps.authorize(request, verb, ns, "rollouts", params.get("name"))

    return check


async def _events(request: Request, event: str, read: Callable[[], Obj], first: Obj) -> AsyncIterator[str]:
    backend: Backend = deps.backend(request)
    poll = _setting(request, "stream_poll", POLL)
    heartbeat = _setting(request, "stream_heartbeat", HEARTBEAT)
    state = request.app.state
    state.open_streams = getattr(state, "open_streams", 0) + 1
    try:
        seen = backend.generation()
        last = json.dumps(first, separators=(",", ":"))
        yield f"event: {event}\ndata: {last}\n\n"
        quiet_since = time.monotonic()
        while not await request.is_disconnected():
            await asyncio.sleep(poll)
            generation = backend.generation()
            if generation != seen:
                seen = generation
                try:
                    data = await run_in_threadpool(read)
                except NotFound as exc:
                    yield f"event: gone\ndata: {json.dumps({'detail': str(exc)})}\n\n"
                    return
                text = json.dumps(data, separators=(",", ":"))
                if text != last:
                    last = text
                    yield f"event: {event}\ndata: {text}\n\n"
                    quiet_since = time.monotonic()
            if time.monotonic() - quiet_since >= heartbeat:
                yield ": heartbeat\n\n"
                quiet_since = time.monotonic()
    finally:
        state.open_streams -= 1


@router.get("/watch/rollouts")
async def watch_list(
    request: Request, namespace: str | None = None, _: Caller = Depends(_watcher("watch"))
) -> StreamingResponse:
    backend = deps.backend(request)

    def read() -> Obj:
        return {"items": backend.list_rollouts(namespace)}

    first = await call(read)
    return StreamingResponse(
        _events(request, "list", read, first), media_type="text/event-stream", headers=_HEADERS
    )


@router.get("/namespaces/{ns}/rollouts/{name}/watch")
async def watch_rollout(
    ns: str, name: str, request: Request, _: Caller = Depends(_watcher("watch"))
) -> StreamingResponse:
    backend = deps.backend(request)

    def read() -> Obj:
        return backend.view(ns, name)

    first = await call(read)  # 404 before the stream starts
    return StreamingResponse(
        _events(request, "view", read, first), media_type="text/event-stream", headers=_HEADERS
    )
