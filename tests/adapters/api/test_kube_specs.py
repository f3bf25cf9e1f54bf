"""Spec documents through the HTTP API on the stand-in cluster: switching a RolloutSpec's failure policy
between immediate and newRollout (native and Ocean CD-compatible routes), and bad specs refused with the
located problems of ``ebbtide validate``, nothing applied."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from ebbtide.adapters.kubernetes.reconcile import GROUP, VERSION

from ..kubernetes import test_controller as tc
from .kubehelp import VIEWER, cluster

SPEC = f"/api/v1/namespaces/{tc.NS}/specs/RolloutSpec/orders"


def stored(api: Any, plural: str = "rolloutspecs", name: str = "orders") -> dict[str, Any]:
    got: dict[str, Any] = client.CustomObjectsApi(api.client).get_namespaced_custom_object(
        GROUP, VERSION, tc.NS, plural, name
    )
    return got


def test_the_failure_policy_switches_between_immediate_and_new_rollout_through_the_api() -> None:
    with cluster() as c, c.http() as http:
        for mode in ("newRollout", "immediate", "newRollout"):
            doc = http.get(SPEC).json()
            doc["spec"]["failurePolicy"] = {"action": "rollback", "rollback": {"mode": mode}}
            got = http.put(SPEC, json=doc)
            assert got.status_code == 200, got.text
            assert stored(c.api)["spec"]["failurePolicy"] == {
                "action": "rollback",
                "rollback": {"mode": mode},
            }
        # the same through the Ocean CD-compatible route: {"rolloutSpec": {name, ...spec fields}}
        ocean = http.get("/ocean/cd/rolloutSpec/orders", params={"namespace": tc.NS}).json()
        spec = ocean["response"]["items"][0]
        assert spec["name"] == "orders" and spec["failurePolicy"]["rollback"] == {"mode": "newRollout"}
        spec["failurePolicy"] = {"action": "rollback", "rollback": {"mode": "immediate"}}
        spec["spotDeployment"] = {"name": "orders", "namespace": tc.NS, "clusterId": "c-1"}
        got = http.put("/ocean/cd/rolloutSpec/orders", json={"rolloutSpec": spec})
        assert got.status_code == 200, got.text
        assert got.json()["response"]["kind"] == "oceanCD:rolloutSpec"
        assert stored(c.api)["spec"]["failurePolicy"]["rollback"] == {"mode": "immediate"}


def test_the_failure_policy_the_api_set_is_the_one_the_controller_rolls_back_with() -> None:
    """newRollout set through the API: a failing v2 is rolled back by a new rollout (initiator
    failurePolicy) rather than inside its own."""
    with cluster() as c:
        with c.http() as http:
            doc = http.get(SPEC).json()
            doc["spec"]["failurePolicy"] = {"action": "rollback", "rollback": {"mode": "newRollout"}}
            assert http.put(SPEC, json=doc).status_code == 200
        c.table = tc.Table({tc.V1: 0.01, tc.V2: 0.5})  # v2 fails its verification
        with c.controller():
            before = tc.wait_for(c.api, tc.settled(tc.V1))
            tc.set_image(c.api, "orders:2")
            tc.wait_for(c.api, lambda s: s.rollout_id > before.rollout_id + 1 and tc.settled(tc.V1)(s))
        # the arrival back at live is recorded on the object, linked to the failed rollout it rolls back
        last = tc.get(c.api)["status"]["liveHistory"][-1]
        assert (last["revision"], last["originalRolloutId"]) == (tc.V1, before.rollout_id + 1)


def test_a_bad_spec_is_422_with_located_problems_and_nothing_is_applied() -> None:
    with cluster() as c, c.http() as http:
        before = stored(c.api)
        doc = http.get(SPEC).json()
        doc["spec"]["strategy"] = {"name": "nope"}
        doc["spec"]["failurePolicy"] = {"action": "rollback", "rollback": {"mode": "sideways"}}
        got = http.put(SPEC, json=doc)
        assert got.status_code == 422
        problems = got.json()["detail"]
        fields = {p["field"] for p in problems}
        assert "spec.failurePolicy.rollback.mode" in fields, problems
        assert all(p["document"] == "request: document 1" for p in problems)
        assert all(p["message"].startswith("request: document 1 (RolloutSpec/orders)") for p in problems)
        assert stored(c.api) == before


def test_a_set_is_applied_all_or_nothing() -> None:
    strategy = {
        "apiVersion": "ebbtide.dev/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": "quick"},
        "spec": {"canary": {"steps": [{"setWeight": 50}]}},
    }
    with cluster() as c, c.http() as http:
        before = stored(c.api)
        doc = http.get(SPEC).json()
        doc["spec"]["strategy"] = {"name": "quick"}
        doc["spec"]["replicas"] = -1
        bad = http.post(f"/api/v1/namespaces/{tc.NS}/specs", json=[strategy, doc])
        assert bad.status_code == 422, bad.text
        assert [p["field"] for p in bad.json()["detail"]] == ["spec.replicas"]
        strategies = client.CustomObjectsApi(c.api.client).list_namespaced_custom_object(
            GROUP, VERSION, tc.NS, "strategies"
        )
        assert [s["metadata"]["name"] for s in strategies["items"]] == ["steps"]  # nothing created
        assert stored(c.api) == before
        del doc["spec"]["replicas"]
        good = http.post(f"/api/v1/namespaces/{tc.NS}/specs", json=[strategy, doc])
        assert good.status_code == 200, good.text
        assert [d["kind"] for d in good.json()["items"]] == ["Strategy", "RolloutSpec"]
        assert stored(c.api)["spec"]["strategy"] == {"name": "quick"}
        # the old strategy is unused now: it may go; the one in use may not
        refused = http.delete(f"/api/v1/namespaces/{tc.NS}/specs/Strategy/quick")
        assert refused.status_code == 409
        assert (
            refused.json()["detail"]["reason"]
            == "Strategy quick is still needed by: RolloutSpec/orders spec.strategy.name"
        )
        assert http.delete(f"/api/v1/namespaces/{tc.NS}/specs/strategies/steps").status_code == 200
        assert http.get(f"/api/v1/namespaces/{tc.NS}/specs/Strategy/steps").status_code == 404


def test_spec_routes_check_the_verb_on_the_kind() -> None:
    with cluster() as c, c.http(VIEWER) as viewer:
        assert viewer.get(SPEC).status_code == 200
        doc = viewer.get(SPEC).json()
        denied = viewer.put(SPEC, json=doc)
        assert denied.status_code == 403 and "update rolloutspecs" in denied.json()["detail"]
        assert viewer.delete(SPEC).status_code == 403
        assert viewer.get(f"/api/v1/namespaces/{tc.NS}/specs/Widget/x").status_code == 404
        assert stored(c.api)["metadata"]["resourceVersion"] == doc["metadata"]["resourceVersion"]
