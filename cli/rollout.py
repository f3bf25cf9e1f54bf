"""``ebbtide rollout ...`` (also ``kubectl ebbtide rollout ...``): operate rollouts on a cluster.

``list``, ``get NAME [--watch]`` (the detailed rollout view, :mod:`.rolloutview`), ``history``, the actions
``promote [--full]``, ``pause``, ``resume``, ``abort``, ``retry``, ``rollback [--to REV]`` (recorded on the
``EbbtideDeployment`` and consumed exactly once by the controller: :mod:`ebbtide.adapters.kubernetes.actions`)
and ``set-failure-policy`` (edits the RolloutSpec naming the workload, after validating the whole spec set).
The work is done by :mod:`.rolloutops`, imported when a command runs (the base install has no kubernetes
client, and the CLI must start without it).

Exit codes: 0 done (an action recorded; with ``--wait``, applied); 1 the action is rejected now (the engine's
reason), ``--wait`` saw no result in time, or the cluster refused; 2 bad input (flags, kubeconfig, no such
rollout, a spec set the change would make invalid: nothing is written).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from .common import BadInput, guard

rollout_app = typer.Typer(
    name="rollout",
    help="Operate rollouts on a cluster: list, view, promote, pause, abort, retry, roll back.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Name = Annotated[str, typer.Argument(help="The EbbtideDeployment (rollout) name.")]
Namespace = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's).")
]
Kubeconfig = Annotated[
    Path | None, typer.Option("--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config).")
]
Context = Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")]
Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="Go through the operator HTTP API at this URL (ebbtide controller --api-port, ebbtide demo) "
        "instead of the Kubernetes API.",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="EBBTIDE_TOKEN", help="Bearer token for --server (default: $EBBTIDE_TOKEN)."
    ),
]
Wait = Annotated[
    bool, typer.Option("--wait", help="Wait for the controller's result; exit 1 with its reason if rejected.")
]
Timeout = Annotated[float, typer.Option("--timeout", min=0, help="Seconds --wait waits for the result.")]
POLICY_NAMES = ("rollback-immediate", "rollback-new-rollout", "pause", "promote")


def _api() -> ModuleType:
    try:
        from . import rolloutapi
    except ImportError as exc:
        raise BadInput(f"--server needs: pip install 'ebbtide[api]' ({exc})") from None
    return rolloutapi


def _ops() -> ModuleType:
    try:
        from . import rolloutops
    except ImportError as exc:
        raise BadInput(f"ebbtide rollout needs: pip install 'ebbtide[kubernetes]' ({exc})") from None
    return rolloutops


@rollout_app.command("list")
@guard
def list_cmd(namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None) -> None:
    """The rollouts of a namespace: phase, step, revisions, weights, replicas."""
    _ops().list_rollouts(namespace, kubeconfig, context)


@rollout_app.command("get")
@guard
def get_cmd(
    name: Name,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Keep the view updated (Ctrl-C ends).")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.05, help="Seconds between updates.")] = 2.0,
    updates: Annotated[int | None, typer.Option("--updates", hidden=True, min=1)] = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    server: Server = None,
    token: Token = None,
) -> None:
    """The detailed rollout view: revisions, traffic, replicas, steps, verifications, rollback status."""
    if server is not None:
        _api().get(server, token, name, namespace or "default", watch, interval, updates)
        return
    _ops().get(name, watch, interval, updates, namespace, kubeconfig, context)


@rollout_app.command("history")
@guard
def history_cmd(
    name: Name, namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None
) -> None:
    """The revisions that reached live, oldest first: rollout id, initiator, when; which `rollback --to`
    can still name (the engine keeps revisionHistoryLimit revisions)."""
    _ops().history(name, namespace, kubeconfig, context)


@rollout_app.command("promote")
@guard
def promote_cmd(
    name: Name,
    full: Annotated[bool, typer.Option("--full", help="Skip every remaining step (promoteFull).")] = False,
    wait: Wait = False,
    timeout: Timeout = 60.0,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    server: Server = None,
    token: Token = None,
) -> None:
    """Move the rollout to its next step (leaves a pause or a verification); --full: straight to live."""
    action = "promoteFull" if full else "promote"
    _act(name, action, None, wait, timeout, namespace, kubeconfig, context, server, token)


def _act(
    name: str,
    action: str,
    to: str | None,
    wait: bool,
    timeout: float,
    namespace: str | None,
    kubeconfig: Path | None,
    context: str | None,
    server: str | None,
    token: str | None,
) -> None:
    if server is not None:  # the API waits for the controller's result itself
        _api().act(server, token, name, namespace or "default", action, to)
        return
    _ops().act(name, action, to, wait, timeout, namespace, kubeconfig, context)


def _simple(action: str, doc: str) -> None:
    def command(
        name: Name,
        wait: Wait = False,
        timeout: Timeout = 60.0,
        namespace: Namespace = None,
        kubeconfig: Kubeconfig = None,
        context: Context = None,
        server: Server = None,
        token: Token = None,
    ) -> None:
        _act(name, action, None, wait, timeout, namespace, kubeconfig, context, server, token)

    command.__doc__ = doc
    rollout_app.command(action)(guard(command))


_simple("pause", "Pause the rollout (manual); resume restarts the running phase.")
_simple("resume", "Resume a manually paused rollout (the running phase restarts).")
_simple("abort", "Roll back to the stable revision now (immediate).")
_simple("retry", "Re-run the rolled-back revision (only after a rollback completed).")


@rollout_app.command("rollback")
@guard
def rollback_cmd(
    name: Name,
    to: Annotated[
        str | None, typer.Option("--to", help="The revision to roll back to (see `history`).")
    ] = None,
    wait: Wait = False,
    timeout: Timeout = 60.0,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    server: Server = None,
    token: Token = None,
) -> None:
    """Roll back: a live rollout goes back to the previous successful revision (or --to REV) through all
    phases; a running one is aborted."""
    _act(name, "rollback", to, wait, timeout, namespace, kubeconfig, context, server, token)


@rollout_app.command("set-failure-policy")
@guard
def set_failure_policy_cmd(
    name: Name,
    policy: Annotated[str, typer.Argument(help=", ".join(POLICY_NAMES))],
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Set the failurePolicy of the RolloutSpec naming the rollout (the next rollout uses it)."""
    if policy not in POLICY_NAMES:
        raise BadInput(f"spec.failurePolicy: {policy!r} is not one of {', '.join(POLICY_NAMES)}")
    _ops().set_failure_policy(name, policy, namespace, kubeconfig, context)
