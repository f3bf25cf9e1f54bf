"""docs/api.md's (and docs/operations.md's) curl examples are real: one session on the stand-in cluster with
a running controller and the API served on 127.0.0.1 makes each request and the docs show what came back;
docs/api/openapi.json is the app's OpenAPI document. When an output changes on purpose, regenerate both:

    EBBTIDE_REGENERATE_DOCS=1 python -m pytest tests/adapters/api/test_kube_docs.py

Values that differ between two runs (uids, timestamps, resourceVersions, generated ids, the port) are
replaced by fixed placeholders before they are compared, nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ebbtide.adapters.api.app import create_app
from ebbtide.adapters.api.auth import AllowLocal

from ..kubernetes import test_controller as tc
from .fakes import FakeBackend
from .kubehelp import ADMIN, VIEWER, Cluster, cluster

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "api.md"
OPERATIONS = ROOT / "docs" / "operations.md"
OPENAPI = ROOT / "docs" / "api" / "openapi.json"
REGENERATE = os.environ.get("EBBTIDE_REGENERATE_DOCS") == "1"
BASE = "http://127.0.0.1:8081"
TOKENS = {ADMIN: "$TOKEN", VIEWER: "$VIEWER_TOKEN"}
VOLATILE = {
    "uid": "…",
    "creationTimestamp": "2026-01-01T00:00:00Z",
    "createdAt": "2026-01-01T00:00:00Z",
    "resourceVersion": "…",
    "at": "…",
    "managedFields": None,
}
BLOCK = re.compile(r"<!-- example: (?P<name>[a-z0-9-]+) -->\n```console\n(?P<body>.*?)```\n", re.S)


def steady(value: Any) -> Any:
    """``value`` with the fields that differ between runs replaced (see :data:`VOLATILE`)."""
    if isinstance(value, dict):
        return {
            k: (VOLATILE[k] if k in VOLATILE and v is not None else steady(v))
            for k, v in value.items()
            if not (k in VOLATILE and VOLATILE[k] is None)
        }
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


@dataclass
class Session:
    c: Cluster
    shown: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        name: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        token: str | None = ADMIN,
        headers: dict[str, str] | None = None,
        pretty: bool = False,
        raw: bytes | None = None,
        raw_as: str = "",
    ) -> httpx.Response:
        """Make the request; keep the console block showing its curl command and what came back."""
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        with httpx.Client(base_url=self.c.server.url, timeout=30) as http:
            if raw is not None:
                got = http.request(
                    method, path, content=raw, headers=sent | {"Content-Type": "application/json"}
                )
            else:
                got = http.request(method, path, json=body, headers=sent)
        words = ["curl", "-s"] + ([] if pretty else ["-w", r"'\n%{http_code}\n'"])
        words += [] if method == "GET" else ["-X", method]
        for key, value in sent.items():
            shown_value = TOKENS.get(value[7:], value[7:]) if key == "Authorization" else value
            words += [
                "-H",
                f'"{key}: Bearer {shown_value}"'
                if key == "Authorization"
                else shlex.quote(f"{key}: {value}"),
            ]
        if raw is not None:
            words += ["-H", "'Content-Type: application/json'", "-d", raw_as]
        elif body is not None:
            words += ["-H", "'Content-Type: application/json'", "-d", shlex.quote(json.dumps(body))]
        words.append(shlex.quote(BASE + path) if "?" in path else BASE + path)
        command = "$ " + " ".join(words) + (" | jq ." if pretty else "")
        data = steady(got.json())
        if pretty:
            output = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        else:
            output = json.dumps(data, separators=(",", ":"), ensure_ascii=False) + f"\n{got.status_code}\n"
        self.shown[name] = command + "\n" + output
        return got


def spec_path(kind: str = "RolloutSpec", name: str = "orders") -> str:
    return f"/api/v1/namespaces/{tc.NS}/specs/{kind}/{name}"


def session() -> dict[str, str]:
    with cluster() as c:
        s = Session(c)
        doc = s.request("spec-get", "GET", spec_path(), pretty=True).json()
        for key in ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields"):
            doc["metadata"].pop(key, None)
        doc.pop("status", None)
        doc["spec"].pop("rollbackWindow")
        doc["spec"]["failurePolicy"] = {"action": "rollback", "rollback": {"mode": "newRollout"}}
        assert s.request("spec-put", "PUT", spec_path(), body=doc, pretty=True).status_code == 200
        bad = json.loads(json.dumps(doc))
        bad["spec"]["failurePolicy"]["rollback"]["mode"] = "sideways"
        bad["spec"]["strategy"]["name"] = "quick"
        assert s.request("spec-put-bad", "PUT", spec_path(), body=bad, pretty=True).status_code == 422
        strategy = {
            "apiVersion": "ebbtide.dev/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "quick"},
            "spec": {"canary": {"steps": [{"setWeight": 50}, {"setWeight": 120}]}},
        }
        posted = s.request("specs-post-bad", "POST", f"/api/v1/namespaces/{tc.NS}/specs", body=[strategy])
        assert posted.status_code == 422
        assert s.request("spec-delete-used", "DELETE", spec_path("Strategy", "steps")).status_code == 409
        ocean_spec = s.request(
            "ocean-spec-get", "GET", "/ocean/cd/rolloutSpec/orders?namespace=shop", pretty=True
        )
        assert ocean_spec.status_code == 200
        with c.controller():
            tc.wait_for(c.api, tc.settled(tc.V1))
            tc.set_image(c.api, "orders:2")
            end = tc.wait_for(c.api, tc.settled(tc.V2))
            _synced(c, end.rollout_id)
            rid = f"{tc.NS}.{tc.NAME}.{end.rollout_id}"
            assert s.request("ocean-get", "GET", f"/ocean/cd/rollout/{rid}", pretty=True).status_code == 200
            action = f"/ocean/cd/rollout/{rid}"
            assert s.request("ocean-retry", "PUT", action, body={"action": "retry"}).status_code == 409
            assert (
                s.request("ocean-no-token", "PUT", action, body={"action": "pause"}, token=None).status_code
                == 401
            )
            assert (
                s.request("ocean-viewer", "PUT", action, body={"action": "pause"}, token=VIEWER).status_code
                == 403
            )
            assert s.request("ocean-malformed", "PUT", action, body={"action": "undo"}).status_code == 422
            big = json.dumps({"action": "pause", "to": "x" * (1 << 20)}).encode()
            assert s.request("too-large", "PUT", action, raw=big, raw_as="@big.json").status_code == 413
            verification = f"/api/v1/namespaces/{tc.NS}/rollouts/{tc.NAME}/externalVerification"
            assert (
                s.request("verification", "PUT", verification, body={"status": "passed"}).status_code == 409
            )
            key = {"Idempotency-Key": "rollback-orders-1"}
            got = s.request("ocean-rollback", "PUT", action, body={"action": "rollback"}, headers=key)
            assert got.status_code == 200, got.text
            tc.wait_for(c.api, lambda st: st.desired == tc.V1 and tc.settled(tc.V1)(st))
        return s.shown


def _synced(c: Cluster, rollout: int) -> None:
    from .test_kube_actions import synced

    synced(c, rollout)


def replace_blocks(text: str, shown: dict[str, str], check: Callable[[str, str, str], None]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m["name"]
        assert name in shown, f"docs/api.md shows an example the session does not make: {name}"
        check(name, m["body"], shown[name])
        return f"<!-- example: {name} -->\n```console\n{shown[name]}```\n"

    return BLOCK.sub(one, text)


def test_the_curl_examples_show_what_the_api_answers() -> None:
    """docs/api.md shows every example of the session once; docs/operations.md shows some of them."""
    shown = session()
    assert {m["name"] for m in BLOCK.finditer(DOC.read_text())} == set(shown), "every example is shown once"
    assert {m["name"] for m in BLOCK.finditer(OPERATIONS.read_text())} == {"ocean-rollback", "spec-put"}
    for path in (DOC, OPERATIONS):

        def check(name: str, in_doc: str, real: str, path: Path = path) -> None:
            if not REGENERATE:
                assert in_doc == real, (
                    f"{path.name} example {name}: regenerate with EBBTIDE_REGENERATE_DOCS=1"
                )

        new = replace_blocks(path.read_text(), shown, check)
        if REGENERATE:
            path.write_text(new)


def openapi() -> str:
    app = create_app(FakeBackend(), AllowLocal())
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def test_the_published_openapi_document_is_the_apps() -> None:
    if REGENERATE:
        OPENAPI.parent.mkdir(exist_ok=True)
        OPENAPI.write_text(openapi())
    assert OPENAPI.read_text() == openapi(), (
        "docs/api/openapi.json: regenerate with EBBTIDE_REGENERATE_DOCS=1"
    )
