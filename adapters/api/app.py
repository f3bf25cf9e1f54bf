"""The operator API as one ASGI application: :func:`create_app` mounts the routers on a backend."""

from __future__ import annotations

from fastapi import FastAPI

from . import dashboard, ocean, routes, specs, stream, verification
from .auth import Authorizer
from .backend import Backend
from .middleware import MAX_BODY, WriteGuard


def create_app(
    backend: Backend, authorizer: Authorizer, *, write_limit: str = "60/minute", max_body: int = MAX_BODY
) -> FastAPI:
    """``write_limit``: writes each caller may make (a ``limits`` string, a moving window); ``max_body``:
    the largest request body in bytes (413 beyond)."""
    app = FastAPI(title="ebbtide operator API", version="1")
    app.state.backend = backend
    app.state.authorizer = authorizer
    app.include_router(routes.router)
    app.include_router(specs.router)
    app.include_router(verification.router)
    app.include_router(ocean.router)
    app.include_router(stream.router)
    app.include_router(dashboard.router)
    app.add_middleware(WriteGuard, limit=write_limit, max_body=max_body)
    return app
