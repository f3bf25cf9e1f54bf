"""FastAPI dependencies shared by the routers: the app's backend and the authorized caller."""

from __future__ import annotations

from fastapi import HTTPException, Request

from .auth import Authorizer, Caller
from .backend import Backend


def backend(request: Request) -> Backend:
    result: Backend = request.app.state.backend
    return result


def caller(request: Request) -> Caller:
    """The authenticated caller, or 401."""
    authorizer: Authorizer = request.app.state.authorizer
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    who = authorizer.authenticate(token)
    if who is None:
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    return who


def authorize(request: Request, verb: str, namespace: str, resource: str, name: str | None = None) -> Caller:
    """The caller, if allowed to ``verb`` the resource; 401 or 403 otherwise (nothing done)."""
    who = caller(request)
    authorizer: Authorizer = request.app.state.authorizer
    if not authorizer.allowed(who, verb, namespace, resource, name):
        raise HTTPException(403, f"{who.user} may not {verb} {resource} in namespace {namespace}")
    return who
