"""The dashboard in a real headless browser (Debian's chromium, driven by Playwright) on the stand-in cluster:
a running controller, the API on a KubeBackend with TokenReview/SubjectAccessReview auth, and the page
served by that API with a bearer token the stand-in's TokenReview table accepts (typed into the page's
token field). The oracle is the stand-in's objects, never the page or the API.

Skipped like tests/adapters/api/test_dashboard_browser.py when chromium is missing (unless
``EBBTIDE_REQUIRE_BROWSER=1``); ``EBBTIDE_REGENERATE_DOCS=1`` rewrites docs/img/dashboard-kube-rollback.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..kubernetes import test_controller as tc
from ..kubernetes.standin import Behaviour
from . import test_dashboard_browser as shown
from .kubehelp import ADMIN, Cluster, cluster
from .test_kube_actions import hold_v1_not_ready, rolling_back_to_v1, v2_live, without_rollback_window

browser = shown.browser  # the module's headless chromium (skips when it is missing)
WAIT_MS = shown.WAIT_MS


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    page.close()
    # the 401s before the token is given are answers the page shows, not errors of the page
    errors = [e for e in errors if "status of 401" not in e]
    assert not errors, f"the page logged errors: {errors}"


def open_with_token(c: Cluster, page: Any, fragment: str) -> None:
    """Open the dashboard at ``fragment``: without a token the API answers 401 and the page says so; with
    the admin token typed into the token field, the view goes live."""
    page.goto(f"{c.server.url}/dashboard/{fragment}")
    page.locator("#conn.down", has_text="401: a valid bearer token is required").wait_for(timeout=WAIT_MS)
    page.fill("#token", ADMIN)
    page.click("#token-use")
    page.locator("#conn.live").wait_for(timeout=WAIT_MS)


def test_the_view_shows_an_immediate_rollback_on_the_cluster_in_progress_with_its_percent_complete(
    page: Any,
) -> None:
    """The canary fails its verification and rolls back at once; the stable revision's pod scaled back up
    is held not ready (the stand-in's workloads), so the rollback stays in progress while the page is
    checked, then completes and the page follows, live."""
    with cluster() as c:
        c.table = tc.Table({tc.V1: 0.01, tc.V2: 0.5})  # orders:2 fails its error-rate verification
        with c.controller():
            tc.wait_for(c.api, tc.settled(tc.V1))
            c.api.workloads.by_image["orders:1"] = Behaviour(ready_per_sync=0)  # new v1 pods stay not ready
            tc.set_image(c.api, "orders:2")
            tc.wait_for(c.api, lambda s: s.phase == "rolling-back" and s.ready.get(tc.V1) == tc.REPLICAS - 1)
            open_with_token(c, page, "#/shop/orders")
            status = page.locator("#rollback-status")
            status.wait_for(timeout=WAIT_MS)
            held = tc.state_of(c.api)
            assert held is not None and held.rollback is not None and held.phase == "rolling-back"
            progress = held.rollback_progress
            assert progress is not None and 0 < progress < 1
            text = status.inner_text()
            assert f"Rollback status: {round(progress * 100, 1):g}% complete" in text
            ready, desired = held.ready[tc.V1], held.replicas[tc.V1]
            assert f"{ready} of {desired} ready ({tc.V1})" in text and ready < desired
            assert held.rollback.source == tc.V2 and held.rollback.target == tc.V1
            assert page.locator("#phase [data-phase]").get_attribute("data-phase") == "rolling-back"
            assert held.failure_reason and held.failure_reason in page.locator("#failure").inner_text()
            # why it rolls back: the run that failed, with its counts, kept through the rollback
            [failed] = [a.verification for a in c.table.asked if a.revision == tc.V2]
            run = page.locator("#verifications .run").inner_text()
            assert failed in run and "Failed" in run and "error-rate" in run
            shown.assert_screenshot(page, "dashboard-kube-rollback.png")
            del c.api.workloads.by_image["orders:1"]  # the pod becomes ready: the rollback completes
            end = tc.wait_for(c.api, lambda s: s.degraded and tc.settled(tc.V1)(s))
            assert end.weights == {tc.V1: 100}
            page.locator('#phase [data-phase="live"]').wait_for(timeout=WAIT_MS)
            assert page.locator("#rollback-status").count() == 0


def test_a_roll_back_click_on_a_live_version_starts_a_linked_rollout_through_all_phases(page: Any) -> None:
    """After a successful rollout of orders:2, "Roll back" (to the last successful revision) confirmed in
    the page: the cluster's object records the action as alice's and the rollout back to v1 runs through the
    phases with initiator rollback, linked to the rollout it rolls back."""
    with cluster() as c:
        without_rollback_window(c)
        with c.controller():
            v2_live(c)
            before = tc.state_of(c.api)
            assert before is not None
            asked = len(c.table.asked)
            open_with_token(c, page, "#/shop/orders")
            page.locator('#phase [data-phase="live"]').wait_for(timeout=WAIT_MS)
            page.reload()  # the token is kept for the tab (sessionStorage): no 401 after a reload
            page.locator('#phase [data-phase="live"]').wait_for(timeout=WAIT_MS)
            assert page.input_value("#token") == ADMIN
            hold_v1_not_ready(c)
            page.click("button[data-action=rollback]")
            assert page.inner_text("#confirm-title") == "Roll back: shop/orders?"
            page.click("#confirm-ok")
            message = page.locator("#action-message.ok")
            message.wait_for(timeout=WAIT_MS)
            seen = rolling_back_to_v1(c)
            end = seen[-1]
        rolling = [s for s in seen if s.canary == tc.V1]
        assert rolling and all(s.initiator == "rollback" for s in rolling)
        assert {s.original_rollout_id for s in rolling} == {before.rollout_id}
        assert end.rollout_id == before.rollout_id + 1
        assert len(c.table.asked) > asked  # through the phases: the verification ran again
        status = tc.get(c.api)["status"]
        [recorded] = status["actions"]
        assert (recorded["result"], recorded.get("by")) == ("applied", "alice")
        assert message.inner_text().startswith("rollback: ")
        assert f"(action {recorded['id'][:8]})" in message.inner_text()
        last = status["liveHistory"][-1]
        assert (last["revision"], last["initiator"], last["originalRolloutId"]) == (
            tc.V1,
            "rollback",
            before.rollout_id,
        )
