"""The native external verification answer:
``PUT /api/v1/namespaces/{ns}/rollouts/{name}/externalVerification`` with ``{"status": "passed" | "failed"}``
answers every external verification the rollout waits for
(:func:`ebbtide.adapters.external.handle`: 404 no such rollout, 409 nothing waits, 200 with what was
answered). Authorized as ``update`` on the rollout (the answer is recorded on its EbbtideDeployment).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from ebbtide.adapters.external import handle

from .deps import authorize, backend

router = APIRouter(tags=["external verification"])


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["passed", "failed"]


def answer(request: Request, namespace: str, name: str, body: Answer) -> JSONResponse:
    """Authorize, then let :func:`handle` answer the request's own path."""
    authorize(request, "update", namespace, "rollouts", name)
    got = handle("PUT", request.url.path, json.dumps(body.model_dump()).encode(), backend(request).external())
    return JSONResponse(_native(got.status, got.body), got.status)


def _native(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """:func:`handle`'s answer in the API's error shapes (``{"detail": ...}``; 409 ``{"reason"}``)."""
    if status == 200:
        return body
    error = str(body.get("error", ""))
    if status == 409:
        return {"detail": {"reason": error}}
    if status == 422:
        return {"detail": [{"loc": ["body", body.get("field") or "status"], "msg": error}]}
    return {"detail": error}


@router.put(
    "/api/v1/namespaces/{namespace}/rollouts/{name}/externalVerification",
    summary="Answer the rollout's waiting external verifications",
)
def put_answer(request: Request, namespace: str, name: str, body: Answer) -> JSONResponse:
    return answer(request, namespace, name, body)
