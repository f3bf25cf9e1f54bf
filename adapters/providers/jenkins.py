"""The Jenkins provider (Ocean CD's): trigger a parameterized job, wait for its build, report its result.

``provider.jenkins`` (the VerificationProvider's ``baseUrl``, ``username`` and ``apiToken`` merged under it):
``pipelineName`` (a job, or ``folder/job``), ``parameters`` (``[{key, value}]``), ``timeout`` (the whole wait,
default ``60s``), ``interval`` (between polls, default ``5s``), ``tlsVerification`` (default true).

The exchange, with HTTP basic auth (``username:apiToken``):

1. ``GET {baseUrl}/crumbIssuer/api/json``: when Jenkins has CSRF protection on, its crumb is sent as the
   header it names (a 404 means protection is off);
2. ``POST {baseUrl}/job/{pipeline}/buildWithParameters`` (``/build`` when there are no parameters): Jenkins
   answers 201 with the queue item in ``Location``;
3. poll ``{queue item}/api/json`` until it names its build (``executable.url``); a cancelled item is an Error
   (the URLs Jenkins names are followed on ``baseUrl``: Jenkins writes them with its own root URL);
4. poll ``{build}/api/json`` until ``building`` is false: ``result`` is the build's result, ``"SUCCESS"``,
   ``"UNSTABLE"``, ``"FAILURE"``, ``"ABORTED"`` or ``"NOT_BUILT"``.

A metric using it must say which result passes: ``successCondition: result == "SUCCESS"``. The engine judges
a metric without conditions successful on any value, so a jenkins metric with neither condition is refused
(an Error measurement naming the fix) before any job is triggered.

**Blocking, with its own deadline.** ``measure`` returns only when the build is done or ``timeout`` has passed
(an Error measurement ``... did not finish within``). It is meant to run where blocking is harmless: in the
bounded worker pool of :mod:`ebbtide.adapters.providers.dispatch`, which never lets a measurement stall the
engine. The alternative, returning None and reporting later, would need this provider to keep the in-flight
builds and a poll loop of its own; the worker pool already gives every provider that, and a provider that
holds no state between calls is simpler to read and to test. A build still running when ``timeout`` passes is
left running (it is not stopped).

The wait is bounded from outside too, and agrees with it: the compiled metric carries an in-flight timeout
of ``timeout`` + 30 s (at least the engine's default 60 s; ``core/spec.py`` ``_provider_timeout``), which both
the engine and the dispatcher wait for, so a build is never cut short nor triggered twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ebbtide.adapters.providers.common import (
    ProviderError,
    answer,
    block,
    excerpt,
    exchange,
    json_body,
    needs_condition,
    resolved,
    seconds,
    text,
)
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement

DEFAULT_TIMEOUT = 60.0
DEFAULT_INTERVAL = 5.0
#: the longest a single HTTP request may take, whatever is left of the whole wait
REQUEST_TIMEOUT = 30.0
#: the least a request is given: the time left, when it is shorter than a round trip, would fail an answer
#: on its way (the whole wait may run over ``timeout`` by at most this; the in-flight bound has 30 s to spare)
MIN_REQUEST_TIMEOUT = 1.0


class JenkinsProvider:
    """Answers ``StartMeasurement`` effects whose metric has a ``jenkins`` provider block (blocking)."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.clock = clock
        self.sleep = sleep

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        return answer(start, lambda: self._measure(start))

    def _measure(self, start: StartMeasurement) -> MeasuredValue:
        config = block(start, "jenkins")
        needs_condition(start, 'successCondition: result == "SUCCESS"')
        run = _Run(config, self.clock, self.sleep)
        queue_item = run.trigger()
        build = run.poll(queue_item, _build_url, "queued")
        return run.poll(run.rebase(build), _result, "running")


class _Run:
    """One triggered build: the settings, the deadline and the HTTP calls."""

    def __init__(
        self, config: dict[str, Any], clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.base = (text(config, "jenkins", "baseUrl") or "").rstrip("/")
        pipeline = text(config, "jenkins", "pipelineName") or ""
        self.job = "/".join("job/" + quote(part, safe="") for part in pipeline.strip("/").split("/"))
        self.auth = (text(config, "jenkins", "username") or "", text(config, "jenkins", "apiToken") or "")
        self.parameters = _parameters(config.get("parameters"))
        self.verify = config.get("tlsVerification", True) is not False
        self.timeout = seconds(config, "jenkins", "timeout", DEFAULT_TIMEOUT)
        self.interval = seconds(config, "jenkins", "interval", DEFAULT_INTERVAL)
        self.clock, self.sleep = clock, sleep
        self.deadline = clock() + self.timeout

    def call(self, method: str, url: str, **request: Any) -> httpx.Response:
        left = self.deadline - self.clock()
        if left <= 0:
            raise ProviderError(f"Jenkins job {self.job} did not finish within {self.timeout:g}s")
        return exchange(
            method,
            url,
            timeout=min(max(left, MIN_REQUEST_TIMEOUT), REQUEST_TIMEOUT),
            verify=self.verify,
            what="Jenkins",
            check=False,
            auth=self.auth,
            **request,
        )

    def trigger(self) -> str:
        """Start a build; the URL of its queue item."""
        headers: dict[str, str] = {}
        crumb = self.call("GET", f"{self.base}/crumbIssuer/api/json")
        if crumb.status_code == 200:
            doc = json_body(crumb)
            if isinstance(doc, dict) and "crumbRequestField" in doc and "crumb" in doc:
                headers[str(doc["crumbRequestField"])] = str(doc["crumb"])
        elif crumb.status_code != 404:
            raise ProviderError(_http_error("crumb", crumb))
        endpoint = "buildWithParameters" if self.parameters else "build"
        url = f"{self.base}/{self.job}/{endpoint}"
        response = self.call("POST", url, headers=headers, data=self.parameters)
        if response.status_code not in (200, 201):
            raise ProviderError(_http_error(f"triggering {self.job}", response))
        location = response.headers.get("Location")
        if not location:
            raise ProviderError(f"Jenkins answered {url} without a queue item (no Location header)")
        return self.rebase(str(location))

    def rebase(self, url: str) -> str:
        """``url`` (a queue item or a build Jenkins named) on ``baseUrl``: Jenkins writes its own root URL,
        which may be a name the cluster cannot reach; the path from ``/queue/`` or the first ``/job/`` on is
        kept."""
        path = urlsplit(url).path.rstrip("/")
        for marker in ("/queue/item/", "/job/"):
            at = path.find(marker)
            if at >= 0:
                return self.base + path[at:]
        return url.rstrip("/")

    def poll(self, url: str, done: Callable[[dict[str, Any]], str | None], state: str) -> str:
        """GET ``{url}/api/json`` every ``interval`` until ``done`` gives a value, within the deadline."""
        while True:
            response = self.call("GET", f"{url}/api/json")
            if response.status_code != 200:
                raise ProviderError(_http_error(f"polling {url}", response))
            doc = json_body(response)
            if not isinstance(doc, dict):
                raise ProviderError(f"Jenkins answered {url}/api/json with {doc!r:.200}")
            value = done(doc)
            if value is not None:
                return str(value)
            if self.clock() + self.interval >= self.deadline:
                raise ProviderError(
                    f"Jenkins job {self.job} did not finish within {self.timeout:g}s (still {state})"
                )
            self.sleep(self.interval)


def _build_url(item: dict[str, Any]) -> str | None:
    """The build a queue item became, None while it waits; ProviderError when it was cancelled."""
    if item.get("cancelled"):
        raise ProviderError(f"the Jenkins queue item was cancelled: {item.get('why') or 'no reason given'}")
    executable = item.get("executable")
    if isinstance(executable, dict) and isinstance(executable.get("url"), str):
        return str(executable["url"]).rstrip("/")
    return None


def _result(build: dict[str, Any]) -> str | None:
    if build.get("building") or build.get("result") is None:
        return None
    return str(build["result"])


def _parameters(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ProviderError("provider.jenkins.parameters must be a list of {key, value}")
    out: dict[str, str] = {}
    for i, p in enumerate(raw):
        if not (isinstance(p, dict) and isinstance(p.get("key"), str) and "value" in p):
            raise ProviderError(f"provider.jenkins.parameters[{i}] needs a key and a value")
        resolved(f"provider.jenkins.parameters[{i}].value", p["value"])
        out[p["key"]] = str(p["value"])
    return out


def _http_error(what: str, response: httpx.Response) -> str:
    return f"Jenkins HTTP {response.status_code} {what}: {excerpt(response)}"
