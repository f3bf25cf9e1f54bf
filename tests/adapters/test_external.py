"""External verification answers: request bodies, the HTTP endpoint (in process and over real HTTP through
its WSGI wrapper) and the memory cluster's scripted verifier (late, never, wrong)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from ebbtide.adapters.driver import Driver
from ebbtide.adapters.external import (
    BadAnswer,
    DriverStore,
    NotWaiting,
    answers,
    handle,
    parse_answer,
    waiting,
    wsgi,
)
from ebbtide.adapters.memory import ClusterConfig, ExternalVerifier, MemoryCluster, RevisionBehaviour
from ebbtide.core.events import Deploy
from ebbtide.core.plan import Plan
from ebbtide.core.spec import compile_plan, load_text

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "specs" / "external-verification.yaml"
NATIVE = "/api/v1/namespaces/billing/rollouts/payments/externalVerification"


def plan(fallback: str = "fail") -> Plan:
    return compile_plan(load_text(EXAMPLE.read_text().replace("fallback: fail", f"fallback: {fallback}")))


def advance(driver: Driver, cluster: MemoryCluster, now: float, until: float) -> float:
    """Run the driver over the memory cluster from ``now`` up to ``until``."""
    while True:
        nxt = driver.next_time(now)
        if nxt is None or nxt > until:
            return until
        now = nxt
        cluster.advance(now)
        driver.pump(now)


def rollout(
    *verifiers: ExternalVerifier, fallback: str = "fail", bad: bool = False
) -> tuple[Driver, MemoryCluster]:
    """v1 live, v2 deployed at t=100 (misbehaving from the start when ``bad``), run to t=130."""
    v2 = RevisionBehaviour(misbehave_at={"time": 0.0}) if bad else RevisionBehaviour()
    cluster = MemoryCluster(ClusterConfig(revisions={"v2": v2}, external=verifiers), seed=1)
    driver = Driver.for_plan(cluster, plan(fallback))
    driver.send(Deploy(revision="v1"), 0.0)
    advance(driver, cluster, 0.0, 100.0)
    driver.send(Deploy(revision="v2"), 100.0)
    advance(driver, cluster, 100.0, 130.0)
    return driver, cluster


# ----- bodies and events ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b"", "", "JSON object"),
        (b"{not json", "", "not JSON"),
        (b"[]", "", "JSON object"),
        (b"{}", "status", "required"),
        (b'{"status": "ok"}', "status", "passed or failed, not 'ok'"),
        (b'{"status": true}', "status", "passed or failed"),
        (b'{"status": "passed", "reason": "x"}', "reason", "unknown field"),
    ],
)
def test_a_bad_body_names_the_field(body: bytes, field: str, reason: str) -> None:
    with pytest.raises(BadAnswer) as exc:
        parse_answer(body)
    assert exc.value.field == field and reason in exc.value.reason


def test_good_bodies() -> None:
    assert parse_answer(b'{"status": "passed"}') == "passed"
    assert parse_answer({"status": "failed"}) == "failed"


def test_only_a_waiting_external_verification_is_answered() -> None:
    driver, _ = rollout()  # no verifier: nobody answers
    (w,) = waiting(driver.state)
    assert w.metric == "qa-suite" and w.template == "qa-sign-off" and w.deadline is not None
    (event,) = answers(driver.state, "passed")
    assert (event.verification, event.metric, event.value) == (w.verification, "qa-suite", "passed")
    with pytest.raises(NotWaiting, match="no verification other-run waits"):
        answers(driver.state, "passed", only=["other-run"])


# ----- the HTTP endpoint ---------------------------------------------------------------------------------
def store_for(driver: Driver, now: float) -> DriverStore:
    return DriverStore(clock=lambda: now, drivers={("billing", "payments"): driver})


def test_put_passed_promotes() -> None:
    driver, cluster = rollout()
    store = store_for(driver, 200.0)
    advance(driver, cluster, 130.0, 200.0)
    response = handle("PUT", NATIVE, b'{"status": "passed"}', store)
    assert response.status == 200 and response.body["status"] == "passed"
    assert [a["metric"] for a in response.body["answered"]] == ["qa-suite"]
    advance(driver, cluster, 200.0, 1000.0)
    assert driver.state.phase == "live" and driver.state.stable == "v2"


def test_put_failed_rolls_back_at_once() -> None:
    driver, _ = rollout()
    response = handle("PUT", NATIVE, b'{"status": "failed"}', store_for(driver, 130.0))
    assert response.status == 200
    assert driver.state.weights == {"v1": 100} and driver.state.stable == "v1"


def test_a_late_answer_is_a_409_and_changes_nothing() -> None:
    driver, cluster = rollout()
    advance(driver, cluster, 130.0, 900.0)  # the 10m timeout passed: the fallback rolled back
    assert driver.state.weights == {"v1": 100} and driver.state.degraded
    before = driver.state.to_json()
    response = handle("PUT", NATIVE, b'{"status": "passed"}', store_for(driver, 900.0))
    assert response.status == 409
    assert "no answer in time (fallback: fail)" in response.body["error"]
    assert "a late answer changes nothing" in response.body["error"]
    assert driver.state.to_json() == before


def test_an_answer_read_after_the_deadline_is_late_even_if_nothing_ticked() -> None:
    driver, _ = rollout()
    (w,) = waiting(driver.state)
    assert w.deadline is not None
    response = handle("PUT", NATIVE, b'{"status": "passed"}', store_for(driver, w.deadline))
    assert response.status == 409 and "no answer in time" in response.body["error"]
    assert driver.state.stable == "v1" and driver.state.degraded


def test_ocean_cd_path_names_the_rollout_number() -> None:
    driver, _ = rollout()
    store = store_for(driver, 130.0)
    n = driver.state.rollout_id
    wrong = handle(
        "PUT",
        f"/ocean/cd/rollout/billing.payments.{n + 1}/externalVerification",
        b'{"status": "passed"}',
        store,
    )
    assert wrong.status == 409 and "not the running one" in wrong.body["error"]
    assert handle("PUT", "/ocean/cd/rollout/payments/externalVerification", b"{}", store).status == 404
    ok = handle(
        "PUT", f"/ocean/cd/rollout/billing.payments.{n}/externalVerification", b'{"status": "passed"}', store
    )
    assert ok.status == 200


def test_errors_of_the_endpoint() -> None:
    driver, _ = rollout()
    store = store_for(driver, 130.0)
    before = driver.state.to_json()
    assert (
        handle(
            "PUT",
            "/api/v1/namespaces/billing/rollouts/nope/externalVerification",
            b'{"status": "passed"}',
            store,
        ).status
        == 404
    )
    assert handle("PUT", "/api/v1/other", b"", store).status == 404
    got = handle("GET", NATIVE, b"", store)
    assert got.status == 405 and ("Allow", "PUT") in got.headers
    bad = handle("PUT", NATIVE, b'{"status": "maybe"}', store)
    assert bad.status == 422 and bad.body["field"] == "status"
    assert driver.state.to_json() == before


@pytest.fixture
def server() -> Iterator[tuple[str, Driver]]:
    driver, _ = rollout()

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = make_server("127.0.0.1", 0, wsgi(store_for(driver, 130.0)), handler_class=Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", driver
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def put(url: str, body: bytes) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_over_real_http(server: tuple[str, Driver]) -> None:
    url, driver = server
    assert put(url + NATIVE, b'{"status": 1}') == (
        422,
        {"error": "must be passed or failed, not 1", "field": "status"},
    )
    status, body = put(url + NATIVE, b'{"status": "failed"}')
    assert status == 200 and body["status"] == "failed"
    assert driver.state.weights == {"v1": 100}
    status, body = put(url + NATIVE, b'{"status": "passed"}')
    assert status == 409 and "no external verification waits" in str(body["error"])


# ----- the memory cluster's verifier ------------------------------------------------------------------------
def test_a_verifier_answering_in_time_promotes() -> None:
    driver, cluster = rollout(ExternalVerifier(metric="qa-suite", answer="correct", after=120.0))
    advance(driver, cluster, 130.0, 1000.0)
    assert driver.state.phase == "live" and driver.state.stable == "v2"
    assert cluster.late_answers == []


def test_a_verifier_that_never_answers_falls_back() -> None:
    driver, cluster = rollout(ExternalVerifier(answer="never"))
    advance(driver, cluster, 130.0, 2000.0)
    assert driver.state.stable == "v1" and driver.state.degraded
    cont, cluster = rollout(ExternalVerifier(answer="never"), fallback="continue")
    advance(cont, cluster, 130.0, 2000.0)
    assert cont.state.phase == "live" and cont.state.stable == "v2"


def test_a_late_answer_is_recorded_and_ignored() -> None:
    driver, cluster = rollout(ExternalVerifier(answer="passed", after=900.0))
    advance(driver, cluster, 130.0, 2000.0)
    assert driver.state.stable == "v1" and driver.state.degraded  # the fallback (fail) acted at 10m
    ((t, _, metric, value),) = cluster.late_answers
    assert metric == "qa-suite" and value == "passed" and t > 700


@pytest.mark.parametrize(
    ("answer", "bad", "goes_live"),
    [
        ("correct", False, True),
        ("correct", True, False),
        ("wrong", False, False),
        ("wrong", True, True),
        ("passed", True, True),
        ("failed", False, False),
    ],
)
def test_what_a_verifier_answers(answer: str, bad: bool, goes_live: bool) -> None:
    driver, cluster = rollout(ExternalVerifier(answer=answer, after=30.0), bad=bad)  # type: ignore[arg-type]
    advance(driver, cluster, 130.0, 2000.0)
    assert (driver.state.stable == "v2") == goes_live
    assert cluster.late_answers == []
