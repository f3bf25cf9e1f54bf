"""The Kubernetes Job provider against the stand-in API server: a real ``batch/v1`` Job is created over HTTP
with the real client, and the stand-in's Job controller ends it as its image says (``:succeed``, ``:fail``,
``:hang``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from ebbtide.adapters.providers.job import JobProvider, job_body, job_name
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.expr import compile_condition
from ebbtide.core.plan import MetricPlan
from ebbtide.core.spec import compile_plan, load_text

from ..kubernetes.standin import StandIn

NS = "shop"


@pytest.fixture
def api() -> Iterator[StandIn]:
    with StandIn() as api:
        api.jobs.delay = 0.2
        yield api


def job_block(image: str, **extra: Any) -> dict[str, Any]:
    container = {"name": "check", "image": image, "command": ["/check"]}
    spec = {"backoffLimit": 0, "template": {"spec": {"containers": [container], "restartPolicy": "Never"}}}
    return {"metadata": {"labels": {"team": "payments"}}, "spec": spec, **extra}


def start(block: dict[str, Any], measurement: int = 3, **metric: Any) -> StartMeasurement:
    context = {"namespace": NS, "workload": "orders", "uid": "uid-orders", "measurement": measurement}
    plan = MetricPlan(name="smoke", provider={"job": {**block, "ebbtide": context}}, **metric)
    return StartMeasurement(verification="v2-step-1", template="t", metric=plan, revision="r2", stable="r1")


def jobs(api: StandIn) -> list[Any]:
    return kubernetes.client.BatchV1Api(api.client).list_namespaced_job(NS).items  # type: ignore[no-any-return]


def provider(api: StandIn, timeout: float = 10.0) -> JobProvider:
    return JobProvider(api.client, timeout=timeout, interval=0.05)


def test_a_completed_job_is_a_successful_value_and_the_job_is_linked_to_its_workload(api: StandIn) -> None:
    m = provider(api).measure(start(job_block("check:succeed")), now=0)
    assert m.error is None and m.value == {"phase": "Complete", "job": "v2-step-1-smoke-3"}
    [job] = jobs(api)
    assert job.metadata.name == "v2-step-1-smoke-3"
    assert job.metadata.labels == {
        "team": "payments",
        "ebbtide.dev/workload": "orders",
        "ebbtide.dev/verification": "v2-step-1",
        "ebbtide.dev/metric": "smoke",
    }
    [owner] = job.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == ("EbbtideDeployment", "orders", "uid-orders")
    assert job.spec.template.spec.containers[0].image == "check:succeed"


def test_a_failed_job_is_a_failed_value_with_the_condition_message(api: StandIn) -> None:
    m = provider(api).measure(start(job_block("check:fail")), now=0)
    assert m.error is None
    assert m.value == {
        "phase": "Failed",
        "job": "v2-step-1-smoke-3",
        "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
    }


def test_a_job_that_never_finishes_is_an_error_and_is_deleted(api: StandIn) -> None:
    m = provider(api, timeout=0.6).measure(start(job_block("check:hang")), now=0)
    assert m.value is None and m.error is not None
    assert "Job shop/v2-step-1-smoke-3 did not finish within 0.6s" in m.error
    assert jobs(api) == []


def test_the_wait_is_the_metrics_timeout_less_the_grace(api: StandIn) -> None:
    p = provider(api)
    assert p.wait_for(start(job_block("x"), timeout=90.0)) == 85.0
    assert p.wait_for(start(job_block("x"))) == 10.0


def test_the_same_measurement_asked_twice_at_once_creates_one_job(api: StandIn) -> None:
    p = provider(api)
    answers: list[Any] = []
    threads = [
        threading.Thread(target=lambda: answers.append(p.measure(start(job_block("check:succeed")), 0)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [a.value["phase"] for a in answers] == ["Complete", "Complete"]
    assert api.jobs.created == {f"{NS}/v2-step-1-smoke-3": 1}
    p.measure(start(job_block("check:fail"), measurement=4), 0)  # the next measurement: a Job of its own
    assert sorted(j.metadata.name for j in jobs(api)) == ["v2-step-1-smoke-3", "v2-step-1-smoke-4"]


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        ({"spec": {}}, "provider.job.spec must be a Job spec with a pod template"),
        ({"spec": {"template": {"spec": {"containers": [{"image": "{{args.image}}"}]}}}}, "unresolved"),
    ],
)
def test_a_bad_job_block_is_an_error_and_creates_nothing(
    api: StandIn, block: dict[str, Any], reason: str
) -> None:
    m = provider(api).measure(start(block), now=0)
    assert m.error is not None and reason in m.error
    assert jobs(api) == []


def test_an_unreachable_api_server_is_an_error_not_an_exception() -> None:
    config = kubernetes.client.Configuration()
    config.host = "http://127.0.0.1:9"
    with kubernetes.client.ApiClient(config) as client:
        m = JobProvider(client).measure(start(job_block("check:succeed")), now=0)
    assert m.error is not None and m.error.startswith("cannot reach the API server")


def test_long_names_are_cut_to_a_dns_label_that_keeps_them_apart() -> None:
    a, b = job_name("v" * 60, "metric", 1), job_name("v" * 60, "metric", 2)
    assert len(a) <= 63 and len(b) <= 63 and a != b
    assert job_name("Step_1", "Smoke", 2).startswith("step-1-smoke-2-")


SPECS = """
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: smoke}
spec:
  metrics:
    - name: smoke
      provider:
        job:
          spec:
            activeDeadlineSeconds: 300
            template: {spec: {containers: [{name: c, image: "check:1"}], restartPolicy: Never}}
---
apiVersion: ebbtide.dev/v1alpha1
kind: Strategy
metadata: {name: canary}
spec:
  canary:
    steps:
      - {setWeight: 20}
      - {verification: {templateNames: [smoke]}}
---
apiVersion: ebbtide.dev/v1alpha1
kind: RolloutSpec
metadata: {name: orders}
spec:
  workload: {name: orders}
  strategy: {name: canary}
"""


def test_a_job_metric_without_conditions_passes_when_complete_and_waits_out_its_deadline() -> None:
    [metric] = compile_plan(load_text(SPECS, "specs.yaml")).templates["smoke"].metrics
    success, failure = (
        compile_condition(metric.success_condition),
        compile_condition(metric.failure_condition),
    )
    assert success.evaluate({"phase": "Complete", "job": "j"}) and not failure.evaluate({"phase": "Complete"})
    assert failure.evaluate({"phase": "Failed", "message": "x"}) and not success.evaluate({"phase": "Failed"})
    assert metric.timeout == 330.0  # activeDeadlineSeconds + 30 s: the engine does not ask again before


def test_the_jobs_of_the_last_five_measurements_are_kept(api: StandIn) -> None:
    api.jobs.delay = 0.02
    p = provider(api)
    for n in range(1, 9):
        image = "check:fail" if n % 3 == 0 else "check:succeed"
        assert p.measure(start(job_block(image), measurement=n), 0).error is None
        left = sorted(int(j.metadata.name.rsplit("-", 1)[1]) for j in jobs(api))
        assert left == list(range(max(1, n - 4), n + 1)), (n, left)


def test_a_job_still_running_is_not_trimmed(api: StandIn) -> None:
    api.jobs.delay = 0.02
    p = provider(api, timeout=0.3)
    block = job_block("check:succeed")
    hanging = {**block, "metadata": {"annotations": {"standin.ebbtide.dev/outcome": "hang"}}}
    p._create(NS, job_body(start(hanging, measurement=1), hanging, {"namespace": NS, "measurement": 1}, 0))
    assert p.measure(start(block, measurement=6), 0).error is None
    assert sorted(j.metadata.name for j in jobs(api)) == ["v2-step-1-smoke-1", "v2-step-1-smoke-6"]


def test_a_finished_job_expires_a_day_after_unless_the_spec_says(api: StandIn) -> None:
    api.jobs.delay = 0.02
    p = provider(api)
    p.measure(start(job_block("check:succeed"), measurement=1), 0)
    own = job_block("check:succeed")
    own["spec"] = {**own["spec"], "ttlSecondsAfterFinished": 60}
    p.measure(start(own, measurement=2), 0)
    ttl = {j.metadata.name: j.spec.ttl_seconds_after_finished for j in jobs(api)}
    assert ttl == {"v2-step-1-smoke-1": 86400, "v2-step-1-smoke-2": 60}
