"""``ebbtide controller``: run the Kubernetes controller until SIGTERM or SIGINT (then exit 0).

Connects with ``--kubeconfig`` when given, else in-cluster when run in a pod, else the default kubeconfig
(``$KUBECONFIG``, ``~/.kube/config``). Checks it can list the workloads (the CRDs are installed, the label
selector parses) before it starts, so a bad flag or a missing CRD is a clear error with exit code 2, not a
loop of warnings. The controller itself is :mod:`ebbtide.adapters.kubernetes.controller` (imported here
only when the command runs: the base install has no ``kubernetes`` client).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .common import BadInput, err_console, guard

if TYPE_CHECKING:
    from ebbtide.adapters.kubernetes.controller import Controller, ControllerConfig

#: the namespace of the pod's service account, when in a cluster
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@guard
def controller_cmd(
    kubeconfig: Annotated[
        Path | None,
        typer.Option(help="kubeconfig file (default: in-cluster in a pod, else $KUBECONFIG, ~/.kube/config)"),
    ] = None,
    context: Annotated[str | None, typer.Option(help="the kubeconfig context to use")] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="watch only this namespace (repeatable; default: all)"),
    ] = None,
    label_selector: Annotated[
        str | None,
        typer.Option("--label-selector", "-l", help="only the EbbtideDeployments with these labels"),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="workloads reconciled at once")] = 2,
    resync: Annotated[
        float, typer.Option(min=1.0, help="seconds between two resyncs (every workload reconciled again)")
    ] = 300.0,
    leader_elect: Annotated[
        bool, typer.Option("--leader-elect/--no-leader-elect", help="act only while holding the Lease")
    ] = True,
    lease_name: Annotated[str, typer.Option(help="the Lease of this shard")] = "ebbtide-controller",
    lease_namespace: Annotated[
        str | None,
        typer.Option(help="the Lease's namespace (default: the pod's namespace, else ebbtide-system)"),
    ] = None,
    identity: Annotated[
        str | None, typer.Option(help="this replica's name in the Lease (default: the host name)")
    ] = None,
    metrics_address: Annotated[
        str, typer.Option(help="address of the /metrics, /healthz and /readyz port")
    ] = "0.0.0.0",
    metrics_port: Annotated[int, typer.Option(min=0, max=65535, help="that port (0: any free port)")] = 8080,
    measure_workers: Annotated[
        int, typer.Option(min=1, max=256, help="metric queries run at once (a bounded thread pool)")
    ] = 8,
    measure_timeout: Annotated[
        float, typer.Option(min=0.1, help="seconds a metric query may take before it is an Error measurement")
    ] = 30.0,
    notify_config: Annotated[
        Path | None,
        typer.Option(help="notification channels (webhooks, Slack) to send each rollout event to (YAML)"),
    ] = None,
    api_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="serve the operator HTTP API on this port (default: no API)"),
    ] = None,
    api_address: Annotated[str, typer.Option(help="address of the API port")] = "0.0.0.0",
    api_anonymous_reads: Annotated[
        bool, typer.Option(help="let callers without a token read (never write) through the API")
    ] = False,
    api_write_limit: Annotated[
        str, typer.Option(help="writes each API caller may make, a moving window (e.g. 60/minute)")
    ] = "60/minute",
) -> None:
    """Run the controller: roll out and roll back EbbtideDeployments in the cluster (until SIGTERM)."""
    try:
        import kubernetes  # noqa: F401

        from ebbtide.adapters.kubernetes.controller import Controller, ControllerConfig
    except ImportError as exc:
        raise BadInput(f"the controller needs: pip install 'ebbtide[kubernetes]' ({exc})") from None
    namespaces = tuple(namespace or ())
    if any(not ns.strip() for ns in namespaces):
        raise BadInput("--namespace: empty namespace name")
    for name, value in (("--lease-name", lease_name), ("--lease-namespace", lease_namespace)):
        if value is not None and not value.strip():
            raise BadInput(f"{name}: empty")
    config = ControllerConfig(
        namespaces=namespaces,
        label_selector=label_selector or None,
        workers=workers,
        resync=resync,
        leader_elect=leader_elect,
        lease_name=lease_name,
        lease_namespace=lease_namespace or _own_namespace(),
        identity=identity or socket.gethostname(),
        metrics_address=metrics_address,
        metrics_port=metrics_port,
    )
    channels = _channels(notify_config)
    api_options = _api_options(api_port, api_write_limit)
    configuration = _configuration(kubeconfig, context)
    _check_access(configuration, config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        controller = Controller(configuration, config)
    except OSError as exc:
        raise BadInput(f"--metrics-address/--metrics-port {metrics_address}:{metrics_port}: {exc}") from exc
    dispatcher = measure_with_providers(controller, measure_workers, measure_timeout)
    notifier = notify_with(controller, channels)
    api = None
    try:
        if api_options is not None:
            api = serve_api(configuration, config, api_address, api_anonymous_reads, **api_options)
        run(controller, config)
    finally:
        if api is not None:
            api.close()
        dispatcher.close()
        if notifier is not None:
            notifier.close()  # the deliveries under way finish (bounded), then its threads stop


def _api_options(port: int | None, write_limit: str) -> dict[str, Any] | None:
    """The API's options (None without ``--api-port``); exit 2 when its extra is missing or a value is bad."""
    if port is None:
        return None
    try:
        import fastapi  # noqa: F401
        import limits
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise BadInput(f"--api-port needs: pip install 'ebbtide[api]' ({exc})") from None
    try:
        limits.parse(write_limit)
    except ValueError as exc:
        raise BadInput(f"--api-write-limit {write_limit!r}: {exc}") from None
    return {"port": port, "write_limit": write_limit}


class RunningApi:
    """The API server and its backend, stopped together."""

    def __init__(self, server: Any, backend: Any, client: Any) -> None:
        self.server, self.backend, self.client = server, backend, client

    def close(self) -> None:
        self.server.stop()
        self.backend.stop()
        self.client.close()


def serve_api(
    configuration: Any,
    config: ControllerConfig,
    address: str,
    anonymous_reads: bool,
    *,
    port: int,
    write_limit: str,
) -> RunningApi:
    """Serve the operator API on ``address:port`` beside the controller (its own API client and cache of
    the watched namespaces; TokenReview + SubjectAccessReview decide who may do what)."""
    import kubernetes

    from ebbtide.adapters.api.app import create_app
    from ebbtide.adapters.api.auth import TokenReviewAuthorizer
    from ebbtide.adapters.api.kube import KubeBackend
    from ebbtide.adapters.api.server import ApiServer

    client = kubernetes.client.ApiClient(configuration)
    client.user_agent = f"ebbtide-api/{config.identity}"
    backend = KubeBackend(client, config.namespaces).start()
    authorizer = TokenReviewAuthorizer(client, anonymous_reads=anonymous_reads)
    try:
        server = ApiServer(create_app(backend, authorizer, write_limit=write_limit), address, port).start()
    except (OSError, TimeoutError) as exc:
        backend.stop()
        client.close()  # type: ignore[no-untyped-call]
        raise BadInput(f"--api-address/--api-port {address}:{port}: {exc}") from exc
    err_console().print(f"ebbtide operator API on http://{address}:{server.port}")
    return RunningApi(server, backend, client)


def _channels(path: Path | None) -> Any:
    """The channels of ``--notify-config`` (None without it); a bad file is exit 2 naming the field."""
    if path is None:
        return None
    from ebbtide.adapters.notify.channels import NotifyConfigError, load_config

    try:
        return load_config(path)
    except NotifyConfigError as exc:
        raise BadInput(f"--notify-config {exc}") from None


def notify_with(controller: Controller, config: Any) -> Any:
    """A :class:`~ebbtide.adapters.notify.channels.Notifier` for the channels of ``config`` (a
    ``NotifierConfig``), fed by the controller with each persisted reconcile's notifications; None without
    channels. The caller closes it once the controller has stopped."""
    if config is None:
        return None
    from ebbtide.adapters.notify.channels import Notifier

    controller.notifier = Notifier(config.channels)
    return controller.notifier


def measure_with_providers(controller: Controller, workers: int, timeout: float) -> Any:
    """Answer the controller's measurements with the providers (:mod:`ebbtide.adapters.providers`, the Job
    provider on the controller's own API client) on a bounded thread pool: a reconcile never waits for a
    metric source; a result wakes its workload's key."""
    from ebbtide.adapters.providers import Providers
    from ebbtide.adapters.providers.dispatch import Dispatcher
    from ebbtide.adapters.providers.job import GRACE, JobProvider

    def wake(scope: str) -> None:  # a result waits: before the workloads merely looked at again
        from ebbtide.adapters.kubernetes.workqueue import URGENT

        namespace, _, name = scope.partition("/")
        controller.queue.add((namespace, name), URGENT)

    # a Job metric's wait ends just before the dispatcher's timeout, so the Job provider's own answer
    # (and its clean-up of the Job) comes first; a Job with activeDeadlineSeconds waits as long as that
    jobs = JobProvider(controller.client, timeout=max(timeout - GRACE, timeout / 2))
    providers = Providers(extra={"job": jobs})
    dispatcher = Dispatcher(providers, workers=workers, queue=4 * workers, timeout=timeout, on_result=wake)
    controller.measurements_for = lambda namespace, name: dispatcher.for_scope(f"{namespace}/{name}")
    return dispatcher


def run(controller: Controller, config: ControllerConfig) -> None:
    """Start, wait for SIGTERM or SIGINT, stop gracefully."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    controller.start()
    where = f"{config.metrics_address}:{controller.http.port}"
    err_console().print(f"ebbtide controller {config.identity}: /metrics, /healthz, /readyz on {where}")
    while not stop.wait(1.0):
        pass
    err_console().print("stopping: finishing the running reconciles, releasing the Lease")
    controller.stop()
    err_console().print("stopped")


def _own_namespace() -> str:
    try:
        return SA_NAMESPACE.read_text().strip() or "ebbtide-system"
    except OSError:
        return "ebbtide-system"


def _configuration(kubeconfig: Path | None, context: str | None) -> Any:
    import kubernetes

    configuration = kubernetes.client.Configuration()
    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            if kubeconfig is not None and not kubeconfig.is_file():
                raise BadInput(f"--kubeconfig {kubeconfig}: no such file")
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig) if kubeconfig else None,
                context=context,
                client_configuration=configuration,
            )
    except kubernetes.config.ConfigException as exc:
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "kubeconfig"
        raise BadInput(f"{where}: {exc}") from exc
    return configuration


def _check_access(configuration: Any, config: ControllerConfig) -> None:
    """One small list of the workloads, as the informers will make it: fail now, clearly, if it fails."""
    import kubernetes
    from urllib3.exceptions import HTTPError

    from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION

    with kubernetes.client.ApiClient(configuration) as api_client:
        api = kubernetes.client.CustomObjectsApi(api_client)
        selector = config.label_selector
        try:
            for ns in config.namespaces or (None,):
                if ns is None:
                    api.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1, label_selector=selector)
                else:
                    api.list_namespaced_custom_object(
                        GROUP, VERSION, ns, PLURAL, limit=1, label_selector=selector
                    )
        except kubernetes.client.ApiException as exc:
            if exc.status == 400 and config.label_selector:
                raise BadInput(f"--label-selector {config.label_selector!r}: {_message(exc)}") from exc
            if exc.status == 404:
                raise BadInput(
                    f"{PLURAL}.{GROUP} is not served: install the CRDs (ebbtide crd | kubectl apply -f -)"
                ) from exc
            raise BadInput(f"the API server refused to list {PLURAL}: {exc.status} {_message(exc)}") from exc
        except (HTTPError, OSError) as exc:
            raise BadInput(f"cannot reach the API server at {configuration.host}: {exc}") from exc


def _message(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body).get("message") or exc.reason)
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)
