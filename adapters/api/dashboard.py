"""The dashboard: a self-contained web page (no CDN) served by the API process.

``GET /`` redirects to ``/dashboard/``: one page (``static/index.html``, ``app.js``, ``style.css``, shipped as
package data) that shows the rollouts list and, at ``#/{namespace}/{name}``, one rollout's detailed view,
both kept live by the API's server-sent event streams, with action buttons that call the actions route after
a confirmation. The page only calls the native API routes, with the same authorization as any client: a
bearer token typed into its token field is kept in the tab's ``sessionStorage`` and sent on every request
(the streams are read with ``fetch``, which can send the header).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse, Response

router = APIRouter(include_in_schema=False)

#: the files of the page, with their media types
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

#: the page loads nothing from anywhere else, and runs no inline script
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def asset(name: str) -> bytes:
    return files("ebbtide.adapters.api").joinpath("static", name).read_bytes()


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard/")


@router.get("/dashboard")
async def dashboard_no_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard/")


@router.get("/dashboard/")
async def page() -> Response:
    return Response(asset("index.html"), media_type=ASSETS["index.html"], headers=_HEADERS)


@router.get("/dashboard/{name}")
async def static(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"no such file: {name}")
    return Response(asset(name), media_type=ASSETS[name], headers=_HEADERS)
