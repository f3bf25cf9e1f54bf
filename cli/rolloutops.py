"""What ``ebbtide rollout ...`` does on a cluster (:mod:`.rollout` holds the commands and imports this module
when one runs: the kubernetes client is an optional dependency).

"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
import typer
import urllib3
import yaml
from kubernetes.config.config_exception import ConfigException
from rich.live import Live
from rich.table import Table

from ebbtide.adapters.kubernetes import actions, specset
from ebbtide.adapters.kubernetes.external import state_of
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, SPEC_PLURALS, VERSION

from .common import BadInput, err_console, out_console
from .rolloutview import render, view_data
from .verify import _client

#: exit code of an action the engine rejects (or whose result did not come in time)
EXIT_REJECTED = 1
#: set-failure-policy's names and the ``failurePolicy`` each writes
POLICIES: dict[str, dict[str, Any]] = {
    "rollback-immediate": {"action": "rollback", "rollback": {"mode": "immediate"}},
    "rollback-new-rollout": {"action": "rollback", "rollback": {"mode": "newRollout"}},
    "pause": {"action": "pause"},
    "promote": {"action": "promote"},
}


def _connect(
    kubeconfig: Path | None, context: str | None, namespace: str | None
) -> tuple[kubernetes.client.ApiClient, str]:
    client, default_namespace = _client(kubeconfig, context)
    return client, namespace or default_namespace


def _user(kubeconfig: Path | None, context: str | None) -> str | None:
    """The kubeconfig user of the context (recorded as the action's ``by``; RBAC decides, this informs)."""
    try:
        contexts, active = kubernetes.config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig) if kubeconfig is not None else None
        )
    except (ConfigException, OSError, TypeError, ValueError, yaml.YAMLError):
        return None  # _client reported an unreadable kubeconfig already
    chosen = next((c for c in contexts if c.get("name") == context), active) if context else active
    user = ((chosen or {}).get("context") or {}).get("user")
    return str(user) if user else None


def _api_error(exc: Exception) -> typer.Exit:
    if isinstance(exc, kubernetes.client.ApiException):
        err_console().print(f"error: the API server answered {exc.status} {exc.reason}")
    else:
        err_console().print(f"error: cannot reach the API server: {exc}", soft_wrap=True)
    return typer.Exit(EXIT_REJECTED)


def _read(client: kubernetes.client.ApiClient, ns: str, name: str) -> dict[str, Any]:
    try:
        return actions.read(kubernetes.client.CustomObjectsApi(client), ns, name)
    except actions.NoRollout as exc:
        raise BadInput(str(exc)) from None


# ---------------------------------------------------------------------------------------------------
# viewing
# ---------------------------------------------------------------------------------------------------


def _age(created: str | None, now: datetime) -> str:
    if not created:
        return ""
    try:
        seconds = int((now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds())
    except ValueError:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def list_rollouts(namespace: str | None, kubeconfig: Path | None, context: str | None) -> None:
    """The rollouts of a namespace: phase, step, revisions, weights, replicas."""
    client, ns = _connect(kubeconfig, context, namespace)
    try:
        listed: Any = kubernetes.client.CustomObjectsApi(client).list_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL
        )
    except (kubernetes.client.ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
        raise _api_error(exc) from None
    table = Table()
    for col in ("name", "namespace", "phase", "step", "stable", "canary", "weights", "ready/desired", "age"):
        table.add_column(col)
    now = datetime.now(UTC)
    for obj in sorted(listed["items"], key=lambda o: o["metadata"]["name"]):
        status = obj.get("status") or {}
        revs = (status.get("summary") or {}).get("revisions") or []
        ready = sum(int(r.get("ready", 0)) for r in revs)
        desired = (obj.get("spec") or {}).get("replicas", "")
        phase = str(status.get("phase", "")) + (
            " (degraded)" if "(degraded)" in status.get("message", "") else ""
        )
        table.add_row(
            obj["metadata"]["name"],
            obj["metadata"].get("namespace", ns),
            phase,
            str(status.get("step", "")),
            str(status.get("stableRevision", "")),
            str(status.get("canaryRevision", "")),
            str(status.get("weights", "")),
            f"{ready}/{desired}",
            _age(obj["metadata"].get("creationTimestamp"), now),
        )
    out_console().print(table)


def _view(client: kubernetes.client.ApiClient, ns: str, name: str) -> Any:
    obj = _read(client, ns, name)
    state = state_of(obj)
    if state is None:
        status = obj.get("status") or {}
        return f"{ns}/{name}: not reconciled yet {status.get('message', '')}".rstrip()
    return render(view_data(name, ns, state, obj.get("status") or {}))


def get(
    name: str,
    watch: bool,
    interval: float,
    updates: int | None,
    namespace: str | None,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    """The detailed rollout view: revisions, traffic, replicas, steps, verifications, rollback status."""
    client, ns = _connect(kubeconfig, context, namespace)
    console = out_console()
    try:
        if not watch:
            console.print(_view(client, ns, name))
            return
        with Live(_view(client, ns, name), console=console, auto_refresh=False) as live:
            shown = 1
            while updates is None or shown < updates:
                time.sleep(interval)
                live.update(_view(client, ns, name), refresh=True)
                shown += 1
    except (kubernetes.client.ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
        raise _api_error(exc) from None


def history(name: str, namespace: str | None, kubeconfig: Path | None, context: str | None) -> None:
    """The revisions that reached live, oldest first: rollout id, initiator, when; which `rollback --to`
    can still name (the engine keeps revisionHistoryLimit revisions)."""
    client, ns = _connect(kubeconfig, context, namespace)
    obj = _read(client, ns, name)
    state = state_of(obj)
    kept = {r.revision for r in state.history} if state is not None else set()
    table = Table()
    for col in ("revision", "rollout", "initiator", "when", "rollback --to"):
        table.add_column(col)
    for entry in (obj.get("status") or {}).get("liveHistory") or []:
        linked = (
            f" (from #{entry['originalRolloutId']})" if entry.get("originalRolloutId") is not None else ""
        )
        rev = str(entry.get("revision", ""))
        live = state is not None and rev == state.stable
        table.add_row(
            rev,
            f"#{entry.get('rolloutId', '')}{linked}",
            str(entry.get("initiator", "")),
            _when(entry.get("at")),
            "live now" if live else "yes" if rev in kept else "no (out of history)",
        )
    out_console().print(table)


def _when(at: Any) -> str:
    if not isinstance(at, int | float):
        return ""
    if at > 1e9:  # wall time (the controller)
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"t={at:g}s"


# ---------------------------------------------------------------------------------------------------
# actions
# ---------------------------------------------------------------------------------------------------


def act(
    name: str,
    action: str,
    to: str | None,
    wait: bool,
    timeout: float,
    namespace: str | None,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    client, ns = _connect(kubeconfig, context, namespace)
    try:
        obj = _read(client, ns, name)
        reason = _rejected_now(obj, action, to)
        if reason is not None:
            err_console().print(f"rejected: {ns}/{name}: {action}: {reason}", soft_wrap=True)
            raise typer.Exit(EXIT_REJECTED)
        try:
            req = actions.request(client, ns, name, action, to=to, by=_user(kubeconfig, context))
        except actions.NoRollout as exc:
            raise BadInput(str(exc)) from None
        except actions.BadAction as exc:
            raise BadInput(str(exc)) from None
        except actions.TooManyPending as exc:
            err_console().print(f"error: {exc}", soft_wrap=True)
            raise typer.Exit(EXIT_REJECTED) from None
        what = action + (f" to {to}" if to else "")
        if not wait:
            out_console().print(
                f"{ns}/{name}: {what} requested (id {req.id}); "
                "the controller applies it at its next reconcile",
                soft_wrap=True,
                highlight=False,
            )
            return
        result = _wait_for(client, ns, name, req.id, timeout)
    except (kubernetes.client.ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
        raise _api_error(exc) from None
    if result is None:
        err_console().print(
            f"{ns}/{name}: {what} (id {req.id}) recorded, but no result within {timeout:g}s "
            "(is the controller running?)",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_REJECTED)
    if result.get("result") != "applied":
        err_console().print(f"rejected: {ns}/{name}: {actions.describe(result)}", soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED)
    out_console().print(f"{ns}/{name}: {actions.describe(result)} (id {req.id})", highlight=False)


def _rejected_now(obj: dict[str, Any], action: str, to: str | None) -> str | None:
    try:
        return actions.rejected_now(obj, action, to)
    except actions.BadAction as exc:
        raise BadInput(str(exc)) from None


def _wait_for(
    client: kubernetes.client.ApiClient, ns: str, name: str, action_id: str, timeout: float
) -> dict[str, Any] | None:
    try:
        return actions.wait_for(kubernetes.client.CustomObjectsApi(client), ns, name, action_id, timeout)
    except actions.NoRollout as exc:
        raise BadInput(str(exc)) from None


# ---------------------------------------------------------------------------------------------------
# the rollout spec
# ---------------------------------------------------------------------------------------------------


def set_failure_policy(
    name: str, policy: str, namespace: str | None, kubeconfig: Path | None, context: str | None
) -> None:
    """Set the failurePolicy of the RolloutSpec naming the rollout (the next rollout uses it)."""
    if policy not in POLICIES:
        raise BadInput(f"spec.failurePolicy: {policy!r} is not one of {', '.join(POLICIES)}")
    client, ns = _connect(kubeconfig, context, namespace)
    api = kubernetes.client.CustomObjectsApi(client)
    try:
        _read(client, ns, name)
        items = specset.read_items(client, ns)
        spec_obj = specset.rollout_spec_of(items, name)
        if spec_obj is None:
            raise BadInput(f"no RolloutSpec names the rollout {name!r}")
        changed = json.loads(json.dumps(spec_obj))
        changed["spec"]["failurePolicy"] = POLICIES[policy]
        specset.validate(items, [changed])  # SpecError (exit 2) on a problem: nothing written
        api.replace_namespaced_custom_object(
            GROUP, VERSION, ns, SPEC_PLURALS["RolloutSpec"], spec_obj["metadata"]["name"], changed
        )
    except (kubernetes.client.ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
        raise _api_error(exc) from None
    out_console().print(
        f"{ns}/{name}: RolloutSpec {spec_obj['metadata']['name']} failurePolicy set to {policy} "
        f"({json.dumps(POLICIES[policy])}); it applies to the next rollout",
        soft_wrap=True,
        highlight=False,
    )
