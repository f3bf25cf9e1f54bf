"""``ebbtide verify ROLLOUT --passed|--failed``: answer an external verification (Ocean CD v1) on a cluster.

Reads the ``EbbtideDeployment`` named ROLLOUT (kubeconfig, context and namespace as kubectl takes them),
checks that an external verification waits for an answer, and records the answer on the workload, where the
controller's next reconcile consumes it (:mod:`ebbtide.adapters.kubernetes.external`). Exit codes: 0 the
answer is recorded; 1 nothing waits for it (a late answer: the verification's fallback already acted, or
none started) or the cluster refused; 2 bad input (flags, kubeconfig, no such rollout).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .common import BadInput, err_console, guard, out_console

if TYPE_CHECKING:  # the kubernetes client is imported when the command runs: the base install has none
    import kubernetes

    from ebbtide.adapters.external import Status

#: exit code when no external verification waits for the answer
EXIT_NOT_WAITING = 1


def _client(kubeconfig: Path | None, context: str | None) -> tuple[kubernetes.client.ApiClient, str]:
    """An API client and the context's namespace (default: "default")."""
    import kubernetes
    import yaml
    from kubernetes.config.config_exception import ConfigException

    if kubeconfig is not None and not kubeconfig.is_file():
        raise BadInput(f"--kubeconfig {kubeconfig}: no such file")
    path = str(kubeconfig) if kubeconfig is not None else None
    try:
        client = kubernetes.config.new_client_from_config(config_file=path, context=context)  # type: ignore[no-untyped-call]
        contexts, active = kubernetes.config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise BadInput(f"kubeconfig: {exc}") from None
    chosen = next((c for c in contexts if c.get("name") == context), active) if context else active
    namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return client, namespace


@guard
def verify_cmd(
    rollout: Annotated[
        str, typer.Argument(help="The EbbtideDeployment whose external verification to answer.")
    ],
    passed: Annotated[bool, typer.Option("--passed", help="The verification passed.")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="The verification failed.")] = False,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's).")
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option("--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")] = None,
) -> None:
    """Answer the external verification a rollout waits for: passed or failed."""
    if passed == failed:
        raise BadInput("give exactly one of --passed or --failed")
    try:
        import kubernetes
        import urllib3

        from ebbtide.adapters.external import NotWaiting
        from ebbtide.adapters.kubernetes import external
    except ImportError as exc:
        raise BadInput(f"ebbtide verify needs: pip install 'ebbtide[kubernetes]' ({exc})") from None
    status: Status = "passed" if passed else "failed"
    client, default_namespace = _client(kubeconfig, context)
    ns = namespace or default_namespace
    try:
        events = external.answer(client, ns, rollout, status)
    except external.NoRollout as exc:
        raise BadInput(str(exc)) from None
    except NotWaiting as exc:
        err_console().print(f"[bold red]not answered:[/] {ns}/{rollout}: {exc.reason}", soft_wrap=True)
        raise typer.Exit(EXIT_NOT_WAITING) from None
    except kubernetes.client.ApiException as exc:
        err_console().print(
            f"[bold red]error:[/] {ns}/{rollout}: the API server answered {exc.status} {exc.reason}"
        )
        raise typer.Exit(EXIT_NOT_WAITING) from None
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        err_console().print(f"[bold red]error:[/] cannot reach the API server: {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_NOT_WAITING) from None
    runs = ", ".join(f"{e.verification} (metric {e.metric})" for e in events)
    out_console().print(
        f"{ns}/{rollout}: answered {status}: {runs}; the controller takes it at its next reconcile",
        soft_wrap=True,
        highlight=False,
    )
