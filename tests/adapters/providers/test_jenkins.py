"""The Jenkins provider against a local server answering as Jenkins' remote API does: crumb issuer,
buildWithParameters (201 + Location of the queue item), queue item, build."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import pytest

from ebbtide.adapters.base import MeasurementProvider
from ebbtide.adapters.providers import JenkinsProvider
from ebbtide.core.verification import classify

from .conftest import Reply, Vendor, free_port, start_of

PASSES = 'result == "SUCCESS"'
CRUMB = {
    "_class": "hudson.security.csrf.DefaultCrumbIssuer",
    "crumb": "c0ffee",
    "crumbRequestField": "Jenkins-Crumb",
}


def jenkins(base: str, success_condition: str | None = PASSES, **config: Any) -> Any:
    block = {
        "baseUrl": base,
        "username": "ci",
        "apiToken": "tok",
        "pipelineName": "smoke",
        "parameters": [{"key": "app", "value": "checkout"}, {"key": "version", "value": "v2"}],
        "interval": "50ms",
        # ample: these tests check what is asked and answered, not how long it takes (a slow machine must
        # not run out of it: every request opens its own client); the tests of the deadline set their own
        "timeout": "60s",
        **config,
    }
    return start_of({"jenkins": block}, success_condition=success_condition)


def script(vendor: Vendor, result: str = "SUCCESS", *, job: str = "/job/smoke", crumb: bool = True) -> None:
    """A Jenkins that queues the build once, runs it for two polls, then ends it with ``result``."""
    if crumb:
        vendor.route("GET", "/crumbIssuer/api/json", Reply(body=CRUMB))
    location = {"Location": f"{vendor.url}/queue/item/42/"}
    vendor.route("POST", f"{job}/buildWithParameters", Reply(201, "", headers=location))
    vendor.route("POST", f"{job}/build", Reply(201, "", headers=location))
    waiting = {"_class": "hudson.model.Queue$WaitingItem", "id": 42, "why": "In the quiet period"}
    left = {
        "_class": "hudson.model.Queue$LeftItem",
        "id": 42,
        "cancelled": False,
        "executable": {"_class": "hudson.model.FreeStyleBuild", "number": 7, "url": f"{vendor.url}{job}/7/"},
    }
    vendor.route("GET", "/queue/item/42/api/json", [Reply(body=waiting), Reply(body=left)])
    running = {"_class": "hudson.model.FreeStyleBuild", "number": 7, "building": True, "result": None}
    done = {**running, "building": False, "result": result}
    vendor.route("GET", f"{job}/7/api/json", [Reply(body=running), Reply(body=running), Reply(body=done)])


def test_is_a_measurement_provider() -> None:
    assert isinstance(JenkinsProvider(), MeasurementProvider)


def test_successful_build(vendor: Vendor) -> None:
    script(vendor)
    start = jenkins(vendor.url)
    m = JenkinsProvider().measure(start, now=0)
    assert m.error is None and m.value == "SUCCESS"
    assert classify(start.metric, m.value)[0] == "successful"
    trigger = next(r for r in vendor.requests if r.method == "POST")
    assert trigger.path == "/job/smoke/buildWithParameters"
    assert trigger.headers["jenkins-crumb"] == "c0ffee"
    assert trigger.headers["authorization"] == "Basic " + base64.b64encode(b"ci:tok").decode()
    assert trigger.form() == {"app": ["checkout"], "version": ["v2"]}
    polls = [r.path for r in vendor.requests if r.method == "GET"]
    assert (
        polls == ["/crumbIssuer/api/json"] + ["/queue/item/42/api/json"] * 2 + ["/job/smoke/7/api/json"] * 3
    )


@pytest.mark.parametrize("result", ["FAILURE", "UNSTABLE", "ABORTED"])
def test_a_build_that_did_not_succeed_fails_the_measurement(vendor: Vendor, result: str) -> None:
    script(vendor, result)
    start = jenkins(vendor.url)
    m = JenkinsProvider().measure(start, now=0)
    assert m.value == result
    assert classify(start.metric, m.value)[0] == "failed"


def test_urls_jenkins_names_are_followed_on_the_base_url(vendor: Vendor) -> None:
    # Jenkins writes its configured root URL, which the cluster may not reach: only the path is kept
    script(vendor)
    location = {"Location": "https://jenkins.example.com/queue/item/42/"}
    vendor.route("POST", "/job/smoke/buildWithParameters", Reply(201, "", headers=location))
    left = {
        "cancelled": False,
        "executable": {"number": 7, "url": "https://jenkins.example.com/job/smoke/7/"},
    }
    vendor.route("GET", "/queue/item/42/api/json", Reply(body=left))
    m = JenkinsProvider().measure(jenkins(vendor.url), now=0)
    assert m.error is None and m.value == "SUCCESS"


def test_without_crumb_issuer_and_parameters(vendor: Vendor) -> None:
    script(vendor, crumb=False)
    m = JenkinsProvider().measure(jenkins(vendor.url, parameters=None), now=0)
    assert m.value == "SUCCESS"
    trigger = next(r for r in vendor.requests if r.method == "POST")
    assert trigger.path == "/job/smoke/build" and "jenkins-crumb" not in trigger.headers


def test_job_in_a_folder(vendor: Vendor) -> None:
    script(vendor, job="/job/team/job/smoke%20test")
    m = JenkinsProvider().measure(jenkins(vendor.url, pipelineName="team/smoke test"), now=0)
    assert m.error is None and m.value == "SUCCESS"


def test_cancelled_queue_item(vendor: Vendor) -> None:
    script(vendor)
    cancelled = {"_class": "hudson.model.Queue$LeftItem", "id": 42, "cancelled": True, "executable": None}
    vendor.route("GET", "/queue/item/42/api/json", Reply(body=cancelled))
    m = JenkinsProvider().measure(jenkins(vendor.url), now=0)
    assert m.error == "the Jenkins queue item was cancelled: no reason given"


class Clock:
    """The provider's clock and sleep: time passes only when it sleeps, so the deadline is exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_build_that_never_ends_times_out(vendor: Vendor) -> None:
    script(vendor)
    running = {"_class": "hudson.model.FreeStyleBuild", "number": 7, "building": True, "result": None}
    vendor.route("GET", "/job/smoke/7/api/json", Reply(body=running))
    clock = Clock()
    m = JenkinsProvider(clock=clock, sleep=clock.sleep).measure(jenkins(vendor.url, timeout="2s"), now=0)
    assert m.error == "Jenkins job job/smoke did not finish within 2s (still running)"
    # it polled every 50ms up to the deadline and stopped there: no sleep took it past 2s
    assert 2.0 - 0.05 <= clock.now < 2.0
    polls = [r.path for r in vendor.requests if r.path == "/job/smoke/7/api/json"]
    assert len(polls) == round(clock.now / 0.05)  # one poll after each sleep of the queue's and the build's


def test_the_last_poll_before_the_deadline_is_not_cut_shorter_than_a_round_trip(vendor: Vendor) -> None:
    """At 1.95 s of a 2 s wait, 50 ms are left; the answer, 200 ms away, still counts (a request is given at
    least MIN_REQUEST_TIMEOUT, 1 s), and the build that finished is reported, not a timeout."""
    script(vendor)
    clock = Clock()
    running = {"_class": "hudson.model.FreeStyleBuild", "number": 7, "building": True, "result": None}

    def build(request: object) -> Reply:
        if clock.now < 1.95 - 1e-9:
            return Reply(body=running)
        time.sleep(0.2)
        return Reply(body={**running, "building": False, "result": "SUCCESS"})

    vendor.route("GET", "/job/smoke/7/api/json", build)
    m = JenkinsProvider(clock=clock, sleep=clock.sleep).measure(jenkins(vendor.url, timeout="2s"), now=0)
    assert m.error is None and m.value == "SUCCESS"
    assert 1.95 - 1e-9 <= clock.now < 2.0


def test_slow_jenkins_is_bounded_by_the_timeout(vendor: Vendor) -> None:
    answer = threading.Event()  # Jenkins answers only once the test is over: no race with the timeout

    def hang(request: object) -> Reply:
        answer.wait(60)
        return Reply(body=CRUMB)

    vendor.route("GET", "/crumbIssuer/api/json", hang)
    began = time.monotonic()
    try:
        m = JenkinsProvider().measure(jenkins(vendor.url, timeout="400ms"), now=0)
        took = time.monotonic() - began
    finally:
        answer.set()
    assert m.error is not None and m.error.startswith("timeout: no answer from Jenkins")
    # cut at the 400ms timeout, not at the 30s a single request may otherwise take (REQUEST_TIMEOUT): the
    # bound is loose so that a loaded machine's slowness is not mistaken for a missing timeout
    assert took < 10.0


@pytest.mark.parametrize("status", [401, 403, 404, 500])
def test_trigger_refused(vendor: Vendor, status: int) -> None:
    vendor.route("GET", "/crumbIssuer/api/json", Reply(body=CRUMB))
    vendor.route("POST", "/job/smoke/buildWithParameters", Reply(status, "<html>Error</html>"))
    m = JenkinsProvider().measure(jenkins(vendor.url), now=0)
    assert m.error == f"Jenkins HTTP {status} triggering job/smoke: '<html>Error</html>'"


def test_crumb_issuer_refusing_credentials(vendor: Vendor) -> None:
    vendor.route("GET", "/crumbIssuer/api/json", Reply(401, "Unauthorized"))
    m = JenkinsProvider().measure(jenkins(vendor.url), now=0)
    assert m.error == "Jenkins HTTP 401 crumb: 'Unauthorized'"


def test_trigger_without_queue_item(vendor: Vendor) -> None:
    vendor.route("GET", "/crumbIssuer/api/json", Reply(body=CRUMB))
    vendor.route("POST", "/job/smoke/buildWithParameters", Reply(201, ""))
    m = JenkinsProvider().measure(jenkins(vendor.url), now=0)
    assert m.error is not None and "without a queue item" in m.error


def test_non_json_poll(vendor: Vendor) -> None:
    script(vendor)
    vendor.route("GET", "/queue/item/42/api/json", Reply(body="<html>queue</html>"))
    m = JenkinsProvider().measure(jenkins(vendor.url), now=0)
    assert m.error == f"HTTP 200 from {vendor.url}/queue/item/42/api/json: not JSON: '<html>queue</html>'"


def test_a_metric_without_condition_is_refused_before_any_build(vendor: Vendor) -> None:
    script(vendor)
    m = JenkinsProvider().measure(jenkins(vendor.url, success_condition=None), now=0)
    assert m.error is not None and 'add e.g. successCondition: result == "SUCCESS"' in m.error
    assert vendor.requests == []


def test_tls_verification_off(tls_vendor: Vendor) -> None:
    script(tls_vendor)
    refused = JenkinsProvider().measure(jenkins(tls_vendor.url), now=0)
    assert refused.error is not None and "CERTIFICATE_VERIFY_FAILED" in refused.error
    m = JenkinsProvider().measure(jenkins(tls_vendor.url, tlsVerification=False), now=0)
    assert m.error is None and m.value == "SUCCESS"


def test_unreachable_address() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    m = JenkinsProvider().measure(jenkins(base), now=0)
    assert m.error is not None and m.error.startswith(f"cannot reach Jenkins at {base}/crumbIssuer/api/json")


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"baseUrl": None}, "provider.jenkins.baseUrl is missing"),
        ({"pipelineName": None}, "provider.jenkins.pipelineName is missing"),
        ({"apiToken": None}, "provider.jenkins.apiToken is missing"),
        (
            {"parameters": [{"key": "v", "value": "{{args.version}}"}]},
            "parameters[0].value has an unresolved",
        ),
        ({"parameters": [{"value": "x"}]}, "parameters[0] needs a key and a value"),
        ({"timeout": "two minutes"}, "provider.jenkins.timeout:"),
        ({"interval": 0}, "provider.jenkins.interval must be greater than 0"),
    ],
)
def test_bad_configuration_is_an_error_naming_the_field(config: dict[str, Any], reason: str) -> None:
    start = jenkins("http://127.0.0.1:9", **config)
    block = {k: v for k, v in start.metric.provider["jenkins"].items() if v is not None}
    m = JenkinsProvider().measure(start_of({"jenkins": block}, success_condition=PASSES), now=0)
    assert m.error is not None and reason in m.error, m.error
