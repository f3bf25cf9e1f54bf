"""``ebbtide rollout get|promote|...|rollback --server URL``: the same commands through the operator HTTP
API (``ebbtide controller --api-port`` or ``ebbtide demo``) instead of the Kubernetes API, so the detailed
view and the actions work against the demo too. Imported when such a command runs (httpx is optional).

The view is the API's ``GET .../rollouts/{name}`` (the dict :func:`ebbtide.adapters.view.view_data` makes),
drawn by :func:`.rolloutview.render`; an action is one ``POST .../actions``. Exit codes as for the cluster
commands: 1 when the action is rejected (the engine's reason) or the server refused, 2 for bad input.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import typer
from rich.live import Live

from .common import BadInput, err_console, out_console
from .rolloutview import render

EXIT_REJECTED = 1


def _base(server: str, namespace: str, name: str) -> str:
    if not server.startswith(("http://", "https://")):
        raise BadInput(f"--server: {server!r} is not an http:// or https:// URL")
    return f"{server.rstrip('/')}/api/v1/namespaces/{namespace}/rollouts/{name}"


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _refused(answer: httpx.Response) -> typer.Exit:
    try:
        detail: Any = answer.json().get("detail")
    except ValueError:
        detail = answer.text
    reason = detail.get("reason") if isinstance(detail, dict) else detail
    err_console().print(f"error: the API answered {answer.status_code}: {reason}", soft_wrap=True)
    return typer.Exit(EXIT_REJECTED)


def _view(client: httpx.Client, url: str) -> Any:
    answer = client.get(url)
    if answer.status_code == 404:
        raise BadInput(f"no rollout at {url}")
    if answer.status_code != 200:
        raise _refused(answer)
    return render(answer.json())


def get(
    server: str,
    token: str | None,
    name: str,
    namespace: str,
    watch: bool,
    interval: float,
    updates: int | None,
) -> None:
    url = _base(server, namespace, name)
    console = out_console()
    try:
        with httpx.Client(headers=_headers(token), timeout=10) as client:
            if not watch:
                console.print(_view(client, url))
                return
            with Live(_view(client, url), console=console, auto_refresh=False) as live:
                shown = 1
                while updates is None or shown < updates:
                    time.sleep(interval)
                    live.update(_view(client, url), refresh=True)
                    shown += 1
    except httpx.HTTPError as exc:
        err_console().print(f"error: cannot reach {server}: {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED) from None


def act(server: str, token: str | None, name: str, namespace: str, action: str, to: str | None) -> None:
    url = _base(server, namespace, name) + "/actions"
    what = action + (f" to {to}" if to else "")
    try:
        answer = httpx.post(url, json={"action": action, "to": to}, headers=_headers(token), timeout=30)
    except httpx.HTTPError as exc:
        err_console().print(f"error: cannot reach {server}: {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED) from None
    if answer.status_code == 404:
        raise BadInput(f"no rollout {namespace}/{name} at {server}")
    if answer.status_code == 409:
        reason = answer.json()["detail"]["reason"]
        err_console().print(f"rejected: {namespace}/{name}: {what}: {reason}", soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED)
    if answer.status_code not in (200, 202):
        raise _refused(answer)
    body = answer.json()
    done = (
        "requested; the controller applies it at its next reconcile"
        if body["result"] == "pending"
        else body["result"]
    )
    out_console().print(
        f"{namespace}/{name}: {what} {done} (id {body['id']})", highlight=False, soft_wrap=True
    )
