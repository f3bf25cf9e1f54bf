"""FastAPI dependencies shared by the routers: the app's backend and the authorized caller."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, Request

from .auth import Authorizer, AuthUnavailable, Caller
from .backend import Backend, InvalidSpec, NotFound, Rejected


def backend(request: Request) -> Backend:
    result: Backend = request.app.state.backend
    return result


def caller(request: Request) -> Caller:
    """The authenticated caller, or 401 (503 when the API server cannot review the token)."""
    authorizer: Authorizer = request.app.state.authorizer
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    try:
        who = authorizer.authenticate(token)
    except AuthUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
    if who is None:
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    return who


def authorize(request: Request, verb: str, namespace: str, resource: str, name: str | None = None) -> Caller:
    """The caller, if allowed to ``verb`` the resource; 401 or 403 otherwise (nothing done)."""
    who = caller(request)
    authorizer: Authorizer = request.app.state.authorizer
    try:
        allowed = authorizer.allowed(who, verb, namespace, resource, name)
    except AuthUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
    if not allowed:
        raise HTTPException(403, f"{who.user} may not {verb} {resource} in namespace {namespace}")
    return who


@contextmanager
def answering() -> Iterator[None]:
    """The backend's errors as HTTP answers: NotFound 404, Rejected 409 ``{"detail": {"reason"}}``,
    InvalidSpec 422 ``{"detail": [located problems]}`` (nothing changed in each case)."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Rejected as exc:
        raise HTTPException(409, {"reason": exc.reason}) from None
    except InvalidSpec as exc:
        raise HTTPException(422, exc.problems) from None


_KEY = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def idempotency_key(request: Request) -> str | None:
    """The caller's ``Idempotency-Key`` header (the action's id: the same key again acts once), or None;
    422 when it is not 1-64 letters, digits, ``.``, ``_`` or ``-``."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not _KEY.match(key):
        raise HTTPException(
            422, [{"loc": ["header", "Idempotency-Key"], "msg": "1-64 letters, digits, '.', '_' or '-'"}]
        )
    return key
