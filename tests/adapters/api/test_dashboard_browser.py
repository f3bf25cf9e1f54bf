"""The dashboard in a real headless browser (Debian's chromium, driven by Playwright), against the demo's
rollouts on a MemoryBackend whose clock the test moves.

Skipped only when chromium (or Playwright) is missing and ``EBBTIDE_REQUIRE_BROWSER`` is unset (CI sets it).
``EBBTIDE_REGENERATE_DOCS=1`` rewrites the screenshots in docs/img/ that docs/operations.md shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ebbtide.adapters.api.memory import ManualClock, MemoryBackend
from ebbtide.cli.demo import Demo

from .demoserver import app_for, new_demo, run_until, serving

CHROMIUM = "/usr/bin/chromium"
REQUIRED = os.environ.get("EBBTIDE_REQUIRE_BROWSER") == "1"
REGENERATE = os.environ.get("EBBTIDE_REGENERATE_DOCS") == "1"
IMG = Path(__file__).resolve().parents[3] / "docs" / "img"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: a laptop screen
VIEWPORT = {"width": 1280, "height": 800}
#: how long the page may take to show what the API says (it is live over server-sent events)
WAIT_MS = 10_000


def _missing() -> str | None:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return "Debian chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    missing = _missing()
    if missing is not None:
        if REQUIRED:
            pytest.fail(f"EBBTIDE_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            headless=True,
            args=FLAGS,
            viewport=VIEWPORT,  # type: ignore[arg-type]
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class Demoed:
    url: str
    backend: MemoryBackend
    demo: Demo
    clock: ManualClock

    def until(self, ns: str, name: str, ok: Any) -> None:
        run_until(self.backend, self.demo, self.clock, lambda: ok(self.backend.view(ns, name)))


@pytest.fixture
def demoed() -> Iterator[Demoed]:
    backend, demo, clock = new_demo()
    with serving(app_for(backend, stream_poll=0.05)) as url:
        yield Demoed(url, backend, demo, clock)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    page.close()
    # a rejected action's 409 is an answer the page shows, not an error of the page
    errors = [e for e in errors if "status of 409" not in e]
    assert not errors, f"the page logged errors: {errors}"


def rolling_back(view: dict[str, Any]) -> bool:
    rb = view["rollback"]
    return view["phase"] == "rolling-back" and rb is not None and 0 < (rb["percentComplete"] or 0) < 100


def test_the_view_shows_a_rollback_in_progress_with_its_percent_complete(demoed: Demoed, page: Any) -> None:
    demoed.until("shop", "orders", rolling_back)
    rb = demoed.backend.view("shop", "orders")["rollback"]
    page.goto(f"{demoed.url}/dashboard/#/shop/orders")
    status = page.locator("#rollback-status")
    status.wait_for(timeout=WAIT_MS)
    text = status.inner_text()
    assert f"Rollback status: {rb['percentComplete']}% complete" in text
    assert f"{rb['targetReady']} of {rb['targetDesired']} ready ({rb['target']})" in text
    assert page.locator("#phase [data-phase]").get_attribute("data-phase") == "rolling-back"
    assert rb["reason"] in page.locator("#failure").inner_text()
    # live: the rollback completes while the page is open, and the page follows without a reload
    demoed.until("shop", "orders", lambda v: v["phase"] == "live")
    page.locator('#phase [data-phase="live"]').wait_for(timeout=WAIT_MS)
    assert page.locator("#rollback-status").count() == 0
    assert page.locator("tr[data-revision=v1] td").nth(3).inner_text().strip() == "100%"


def test_a_confirmed_click_performs_the_action_and_the_view_shows_it(demoed: Demoed, page: Any) -> None:
    demoed.until("web", "search", lambda v: v["phase"] == "paused")
    current = next(
        s["index"] for s in demoed.backend.view("web", "search")["steps"] if s["state"] == "current"
    )
    page.goto(f"{demoed.url}/dashboard/#/web/search")
    page.locator('#phase [data-phase="paused"]').wait_for(timeout=WAIT_MS)
    page.click("button[data-action=promote]")
    dialog = page.locator("dialog#confirm")
    assert dialog.is_visible()
    assert page.inner_text("#confirm-title") == "Promote: web/search?"
    page.click("#confirm-ok")
    message = page.locator("#action-message.ok")
    message.wait_for(timeout=WAIT_MS)
    assert message.inner_text().startswith("promote: accepted")
    view = demoed.backend.view("web", "search")
    assert view["lastAction"]["action"] == "promote" and view["lastAction"]["result"] == "accepted"
    assert view["phase"] != "paused"
    moved = next(s["index"] for s in view["steps"] if s["state"] == "current")
    assert moved > current
    # the page shows the new current step, live
    page.locator(f'li.current[data-step="{moved}"]').wait_for(timeout=WAIT_MS)


def test_a_cancelled_confirmation_does_nothing(demoed: Demoed, page: Any) -> None:
    page.goto(f"{demoed.url}/dashboard/#/shop/orders")
    page.locator("#phase [data-phase]").wait_for(timeout=WAIT_MS)
    page.click("button[data-action=abort]")
    page.click("#confirm-cancel")
    assert not page.locator("dialog#confirm").is_visible()
    page.wait_for_timeout(300)
    assert demoed.backend.view("shop", "orders")["lastAction"] is None
    assert page.locator("#action-message").inner_text() == ""


def test_a_rejected_action_shows_the_engines_reason(demoed: Demoed, page: Any) -> None:
    page.goto(f"{demoed.url}/dashboard/#/shop/checkout")
    page.locator("#phase [data-phase]").wait_for(timeout=WAIT_MS)
    page.click("button[data-action=retry]")
    page.click("#confirm-ok")
    message = page.locator("#action-message.error")
    message.wait_for(timeout=WAIT_MS)
    last = demoed.backend.view("shop", "checkout")["lastAction"]
    assert last["result"] == "rejected" and last["reason"]
    assert message.inner_text() == f"retry rejected: {last['reason']}"


def test_rollback_to_a_chosen_revision(demoed: Demoed, page: Any) -> None:
    demoed.until("shop", "checkout", lambda v: v["phase"] == "live")
    page.goto(f"{demoed.url}/dashboard/#/shop/checkout")
    page.locator('#phase [data-phase="live"]').wait_for(timeout=WAIT_MS)
    page.select_option("#rollback-to", "v1")
    page.click("button[data-action=rollback]")
    assert page.inner_text("#confirm-text") == "Roll back to revision v1."
    page.click("#confirm-ok")
    page.locator("#action-message.ok").wait_for(timeout=WAIT_MS)
    view = demoed.backend.view("shop", "checkout")
    assert view["desired"] == "v1" and view["initiator"] == "rollback"
    page.locator("#phase [data-phase=in-progress], #phase [data-phase=verifying]").first.wait_for(
        timeout=WAIT_MS
    )


def test_the_list_links_to_each_rollout(demoed: Demoed, page: Any) -> None:
    page.goto(f"{demoed.url}/")
    rows = page.locator("#list tbody tr")
    rows.first.wait_for(timeout=WAIT_MS)
    names = [r["namespace"] + "/" + r["name"] for r in demoed.backend.list_rollouts(None)]
    assert [rows.nth(i).get_attribute("data-rollout") for i in range(rows.count())] == names
    page.click("tr[data-rollout='web/search'] a")
    page.locator("#view .panel").first.wait_for(timeout=WAIT_MS)
    assert page.url.endswith("#/web/search")


def assert_screenshot(page: Any, name: str) -> None:
    path = IMG / name
    if REGENERATE:
        IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
    assert path.exists(), f"{path}: regenerate with EBBTIDE_REGENERATE_DOCS=1"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_screenshots_of_the_list_and_of_a_rollback_in_progress(demoed: Demoed, page: Any) -> None:
    demoed.until("shop", "orders", rolling_back)
    page.goto(f"{demoed.url}/dashboard/")
    page.locator("#list tbody tr").first.wait_for(timeout=WAIT_MS)
    assert_screenshot(page, "dashboard-list.png")
    page.goto(f"{demoed.url}/dashboard/#/shop/orders")
    page.locator("#rollback-status").wait_for(timeout=WAIT_MS)
    assert_screenshot(page, "dashboard-rollback.png")
