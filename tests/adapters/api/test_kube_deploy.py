"""deploy/: the controller serves the operator API on a named port that the ebbtide-api Service targets, and
its role may create the TokenReviews and SubjectAccessReviews the authorizer sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def docs(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((DEPLOY / name).read_text()))


def test_the_api_port_is_served_and_the_service_targets_it() -> None:
    controller = docs("controller.yaml")
    deployment = next(d for d in controller if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert f"--api-port={ports['api']}" in container["args"] and "--api-address=0.0.0.0" in container["args"]
    service = next(d for d in controller if d["kind"] == "Service")
    assert service["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["api"]


def test_the_role_may_review_tokens_and_access() -> None:
    role = next(d for d in docs("rbac.yaml") if d["kind"] == "ClusterRole")
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert ("authentication.k8s.io", "tokenreviews", "create") in granted
    assert ("authorization.k8s.io", "subjectaccessreviews", "create") in granted
    for kind in ("rolloutspecs", "strategies", "verificationtemplates", "verificationproviders"):
        assert {("ebbtide.dev", kind, v) for v in ("create", "update", "delete")} <= granted
