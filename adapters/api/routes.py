"""The native routes under /api/v1/namespaces/{ns}/...: rollouts, actions, history, specs and the
external verification answer.

Each route authorizes the caller for its verb on ``rollouts`` before it reads the body (401 / 403, nothing
done), makes one backend call in the thread pool, and maps the backend's errors as
:func:`~.deps.answering` does (404, 409 ``{"detail": {"reason": ...}}``, 422). An action the controller has
not consumed in time answers 202 with its id; an ``Idempotency-Key`` header becomes the action's id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from . import deps
from .auth import Caller
from .backend import Obj

router = APIRouter(prefix="/api/v1", tags=["rollouts"])

T = TypeVar("T")

Action = Literal["promote", "promoteFull", "pause", "resume", "abort", "retry", "rollback"]


class ActionRequest(BaseModel):
    """A rollout action; ``to`` (a revision) only for ``rollback``."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    to: str | None = Field(None, min_length=1, max_length=253)


class ActionResult(BaseModel):
    id: str
    action: str
    result: str
    reason: str | None = None


def allowed(verb: str) -> Callable[[Request], Caller]:
    """A dependency: the caller, authorized for ``verb`` on the rollout (or the namespace's rollouts) of the
    path. Dependencies run before the body is read, so an unauthorized caller never learns more."""

    def check(request: Request) -> Caller:
        params = request.path_params
        return deps.authorize(request, verb, params.get("ns", ""), "rollouts", params.get("name"))

    return check


async def call(fn: Callable[..., T], *args: Any) -> T:
    """Run a backend method in the thread pool, its errors as HTTP answers."""
    with deps.answering():
        return await run_in_threadpool(fn, *args)


@router.get("/rollouts")
async def list_all(request: Request, _: Caller = Depends(allowed("list"))) -> dict[str, list[Obj]]:
    return {"items": await call(deps.backend(request).list_rollouts, None)}


@router.get("/namespaces/{ns}/rollouts")
async def list_namespace(
    ns: str, request: Request, _: Caller = Depends(allowed("list"))
) -> dict[str, list[Obj]]:
    return {"items": await call(deps.backend(request).list_rollouts, ns)}


@router.get("/namespaces/{ns}/rollouts/{name}")
async def get_rollout(ns: str, name: str, request: Request, _: Caller = Depends(allowed("get"))) -> Obj:
    return await call(deps.backend(request).view, ns, name)


@router.get("/namespaces/{ns}/rollouts/{name}/history")
async def get_history(
    ns: str, name: str, request: Request, _: Caller = Depends(allowed("get"))
) -> dict[str, list[Obj]]:
    return {"items": await call(deps.backend(request).history, ns, name)}


@router.post(
    "/namespaces/{ns}/rollouts/{name}/actions",
    response_model=ActionResult,
    responses={
        202: {"description": "recorded; the controller has not consumed it yet (result: pending)"},
        404: {"description": "no such rollout"},
        409: {"description": "rejected, with the reason"},
    },
)
async def post_action(
    ns: str,
    name: str,
    body: ActionRequest,
    request: Request,
    response: Response,
    who: Caller = Depends(allowed("update")),
) -> Obj:
    if body.to is not None and body.action != "rollback":
        raise HTTPException(
            422,
            [{"loc": ["body", "to"], "msg": "'to' is only for rollback", "type": "value_error"}],
        )
    key = deps.idempotency_key(request)
    result = await call(deps.backend(request).act, ns, name, body.action, body.to, who.user, key)
    if result.get("result") == "pending":
        response.status_code = 202
    return result
