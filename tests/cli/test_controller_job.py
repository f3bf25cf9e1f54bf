"""``ebbtide controller`` runs job metrics: the Job provider on the controller's API client, in the
workload's namespace, one Job per measurement, owned by the workload; the Job's end decides the rollout.

Against the stand-in API server, whose Job controller ends a Job as its image says (``check:succeed`` /
``check:fail``), after a short delay.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from ebbtide.adapters.kubernetes.controller import Controller
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION
from ebbtide.cli.controller import measure_with_providers

from ..adapters.kubernetes.standin import StandIn
from ..adapters.kubernetes.test_controller import (
    NAME,
    NS,
    V1,
    V2,
    config,
    set_image,
    settled,
    standin_cluster,
    wait_for,
)


def use_job_metric(api: StandIn, image: str) -> None:
    container = {"name": "check", "image": image}
    metric = {
        "name": "smoke",
        "provider": {"job": {"spec": {"backoffLimit": 0, "template": {"spec": {"containers": [container]}}}}},
    }
    client.CustomObjectsApi(api.client).patch_namespaced_custom_object(
        GROUP, VERSION, NS, "verificationtemplates", "errors", {"spec": {"metrics": [metric]}}
    )


@pytest.mark.parametrize(
    ("image", "end"), [("check:succeed", V2), ("check:fail", V1)], ids=["complete", "failed"]
)
def test_the_controller_runs_job_metrics_in_the_workloads_namespace(image: str, end: str) -> None:
    with standin_cluster() as api:
        api.jobs.delay = 0.1
        use_job_metric(api, image)
        ctl = Controller(api.configuration, config())
        dispatcher = measure_with_providers(ctl, workers=2, timeout=5.0)
        try:
            with ctl:
                wait_for(api, settled(V1))
                set_image(api, "orders:2")
                state = wait_for(api, lambda s: s.desired == V2 and settled(end)(s), timeout=30.0)
        finally:
            dispatcher.close()
        jobs = client.BatchV1Api(api.client).list_namespaced_job(NS).items
        uid = client.CustomObjectsApi(api.client).get_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, NAME
        )["metadata"]["uid"]
    assert jobs and all(j.metadata.labels["ebbtide.dev/workload"] == NAME for j in jobs)
    assert all(j.metadata.owner_references[0].uid == uid for j in jobs)
    assert all(j.metadata.name.endswith("-smoke-1") for j in jobs)  # the first measurement of each run
    assert all(n == 1 for n in api.jobs.created.values())
    assert state.degraded == (end == V1)
