"""Args from Secrets (``valueFrom.secretKeyRef``) in the reconciler, against the stand-in API server: the
value reaches the provider, never the status, the events or the persisted plan; a missing Secret or key is
an InvalidSpec condition naming the arg and the Secret, nothing is scaled, and the controller retries."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from ebbtide.adapters.kubernetes.reconcile import GROUP, VERSION, reconcile
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement

from .conftest import eventually
from .standin import StandIn
from .test_reconcile import NAME, NS, V1, V2, get, live, run, set_image, standin_cluster, state_of

TOKEN = "s3cr3t-t0ken-4242"
SECRET_ARG = {"name": "token", "valueFrom": {"secretKeyRef": {"name": "metrics-credentials", "key": "token"}}}


@dataclass
class Recorder:
    """Answers from a table by revision; for V2 it can answer an error quoting its query (as an HTTP provider
    quotes a URL); every provider block it was handed is kept."""

    values: dict[str, float]
    quote_query: bool = False
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        self.blocks.append(start.metric.provider)
        query = start.metric.provider["prometheus"]["query"]
        if self.quote_query and start.revision == V2:
            return Measurement(
                verification=start.verification, metric=start.metric.name, error=f"401 for {query}"
            )
        return Measurement(
            verification=start.verification, metric=start.metric.name, value=self.values[start.revision]
        )


def use_secret_arg(api: StandIn, *, rollout_arg: dict[str, Any] | None = None) -> None:
    """The template's query takes ``{{args.token}}`` from a Secret (or from the RolloutSpec's arg)."""
    objects = client.CustomObjectsApi(api.client)
    metric = {
        "name": "error-rate",
        "interval": "10s",
        "count": 2,
        "successCondition": "result < 0.05",
        "failureLimit": 0,
        "consecutiveErrorLimit": 1,
        "provider": {"prometheus": {"query": 'sum(rate(errors{token="{{args.token}}"}[1m]))'}},
    }
    template_arg = SECRET_ARG if rollout_arg is None else {"name": "token"}
    objects.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        "verificationtemplates",
        "errors",
        {"spec": {"args": [template_arg], "metrics": [metric]}},
    )
    if rollout_arg is not None:
        objects.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            NS,
            "rolloutspecs",
            NAME,
            {"spec": {"strategy": {"name": "steps", "args": [rollout_arg]}}},
        )


def create_secret(api: StandIn, data: dict[str, str], name: str = "metrics-credentials") -> None:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    client.CoreV1Api(api.client).create_namespaced_secret(NS, {"metadata": {"name": name}, "data": encoded})


@pytest.fixture
def cluster() -> Iterator[StandIn]:
    with standin_cluster() as api:
        use_secret_arg(api)
        yield api


def everything_written(api: StandIn) -> str:
    """The workload (status included) and every Event, as the API server holds them."""
    events = client.CoreV1Api(api.client).list_namespaced_event(NS).items
    return json.dumps(get(api)) + json.dumps(
        [client.ApiClient().sanitize_for_serialization(e) for e in events]
    )


def invalid_spec(api: StandIn) -> dict[str, Any] | None:
    return next(
        (c for c in (get(api).get("status") or {}).get("conditions") or [] if c["type"] == "InvalidSpec"),
        None,
    )


def test_a_missing_secret_is_an_invalid_spec_naming_the_arg_and_the_secret_and_nothing_is_scaled(
    cluster: StandIn,
) -> None:
    outcome = reconcile(cluster.client, NS, NAME, 0.0, measurements=Recorder({V1: 0.01}))
    condition = invalid_spec(cluster)
    assert condition is not None and outcome.retry == "secret" and outcome.state is None
    assert (
        "arg 'token'" in condition["message"]
        and "Secret shop/metrics-credentials not found" in condition["message"]
    )
    assert client.AppsV1Api(cluster.client).list_namespaced_replica_set(NS).items == []
    create_secret(cluster, {"other": "x"})
    outcome = reconcile(cluster.client, NS, NAME, 1.0, measurements=Recorder({V1: 0.01}))
    condition = invalid_spec(cluster)
    assert condition is not None and outcome.retry == "secret"
    assert "Secret shop/metrics-credentials has no key 'token'" in condition["message"]
    client.CoreV1Api(cluster.client).patch_namespaced_secret(
        "metrics-credentials", NS, {"data": {"token": base64.b64encode(TOKEN.encode()).decode()}}
    )
    run(cluster, 2.0, live(V1), Recorder({V1: 0.01}))  # the Secret is there: the workload goes live
    assert invalid_spec(cluster) is None


def test_the_provider_gets_the_value_and_the_status_never_holds_it(cluster: StandIn) -> None:
    create_secret(cluster, {"token": TOKEN})
    recorder = Recorder({V1: 0.01, V2: 0.01})
    now = run(cluster, 0.0, live(V1), recorder)
    set_image(cluster, "orders:2")
    run(cluster, now + 5, live(V2), recorder)
    assert recorder.blocks and all(TOKEN in b["prometheus"]["query"] for b in recorder.blocks)
    persisted = json.dumps(get(cluster)["status"]["engineState"])
    assert "{{args.token}}" in persisted  # the persisted plan keeps the placeholder
    assert TOKEN not in everything_written(cluster)


def test_a_provider_error_quoting_the_secret_is_blanked_before_the_engine_records_it(
    cluster: StandIn,
) -> None:
    create_secret(cluster, {"token": TOKEN})
    recorder = Recorder({V1: 0.01}, quote_query=True)
    now = run(cluster, 0.0, live(V1), recorder)
    set_image(cluster, "orders:2")
    run(cluster, now + 5, lambda s: s.rollback is not None, recorder)
    written = everything_written(cluster)
    assert TOKEN not in written
    assert 'token=\\"***\\"' in written  # the error is kept, the value blanked
    assert state_of(cluster).stable == V1


def test_the_rollout_specs_secret_arg_wins_over_the_templates_arg() -> None:
    with standin_cluster() as api:
        use_secret_arg(
            api, rollout_arg={**SECRET_ARG, "valueFrom": {"secretKeyRef": {"name": "mine", "key": "t"}}}
        )
        create_secret(api, {"t": TOKEN}, name="mine")
        recorder = Recorder({V1: 0.01, V2: 0.01})
        now = run(api, 0.0, live(V1), recorder)
        set_image(api, "orders:2")
        run(api, now + 5, live(V2), recorder)
        assert recorder.blocks and all(TOKEN in b["prometheus"]["query"] for b in recorder.blocks)
        assert TOKEN not in everything_written(api)


def test_the_controller_retries_a_missing_secret_until_it_is_created() -> None:
    from .test_controller import V1 as CV1
    from .test_controller import Table, config, controller, metrics_text, sample, settled, wait_for
    from .test_controller import standin_cluster as controller_cluster

    with controller_cluster() as api:
        use_secret_arg(api)
        with controller(api, Table({CV1: 0.01}), config(max_backoff=0.2, resync=600.0)) as ctl:
            eventually(lambda: invalid_spec(api) is not None)
            assert client.AppsV1Api(api.client).list_namespaced_replica_set(NS).items == []
            create_secret(api, {"token": TOKEN})  # no event of the workload's: only the retry sees it
            wait_for(api, settled(CV1))
            assert invalid_spec(api) is None
            assert sample(metrics_text(ctl), "ebbtide_reconcile_errors_total", error="secret") >= 1
