"""The operator API as one ASGI application: :func:`create_app` mounts the routers on a backend."""

from __future__ import annotations

from fastapi import FastAPI

from . import dashboard, ocean, routes, stream
from .auth import Authorizer
from .backend import Backend


def create_app(backend: Backend, authorizer: Authorizer) -> FastAPI:
    app = FastAPI(title="ebbtide operator API", version="1")
    app.state.backend = backend
    app.state.authorizer = authorizer
    app.include_router(routes.router)
    app.include_router(ocean.router)
    app.include_router(stream.router)
    app.include_router(dashboard.router)
    return app
