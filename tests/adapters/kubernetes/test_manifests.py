"""deploy/rbac.yaml and deploy/controller.yaml: well-formed, consistent, granting what the code calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from ebbtide.adapters.kubernetes.access import ACCESS

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
MODELS = {
    "ClusterRole": client.V1ClusterRole,
    "ClusterRoleBinding": client.V1ClusterRoleBinding,
    "Role": client.V1Role,
    "RoleBinding": client.V1RoleBinding,
    "Namespace": client.V1Namespace,
    "ServiceAccount": client.V1ServiceAccount,
    "Deployment": client.V1Deployment,
    "Service": client.V1Service,
}


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


RBAC = documents("rbac.yaml")
CONTROLLER = documents("controller.yaml")


@pytest.mark.parametrize("doc", RBAC + CONTROLLER, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_document_is_a_well_formed_object_of_its_kind(doc: dict[str, Any]) -> None:
    model = MODELS[doc["kind"]].from_dict(doc)
    assert model is not None and model.metadata.name == doc["metadata"]["name"]


def grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def needed(scope: str) -> set[tuple[str, str, str]]:
    return {(a.group, a.resource, verb) for a in ACCESS if a.scope == scope for verb in a.verbs}


def test_the_cluster_role_grants_exactly_the_calls_the_adapter_makes() -> None:
    assert grants(one(RBAC, "ClusterRole")) == needed("cluster")


def test_the_namespaced_role_grants_exactly_the_leader_election_calls() -> None:
    role = one(RBAC, "Role")
    assert grants(role) == needed("own-namespace")
    assert role["metadata"]["namespace"] == one(CONTROLLER, "Namespace")["metadata"]["name"]


def test_no_wildcards_and_secrets_only_read_one_by_one() -> None:
    for group, resource, verb in grants(one(RBAC, "ClusterRole")) | grants(one(RBAC, "Role")):
        assert "*" not in (group, resource, verb)
        assert resource != "configmaps" and verb not in ("escalate", "bind", "impersonate")
        assert resource != "secrets" or verb == "get"  # a secretKeyRef names its Secret: no list, no watch


@pytest.mark.parametrize(
    ("binding", "role"), [("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")]
)
def test_the_bindings_give_the_roles_to_the_controller_service_account(binding: str, role: str) -> None:
    bound = one(RBAC, binding)
    assert bound["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": role,
        "name": one(RBAC, role)["metadata"]["name"],
    }
    account = one(CONTROLLER, "ServiceAccount")["metadata"]
    assert bound["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]


def test_the_controller_deployment() -> None:
    deployment = one(CONTROLLER, "Deployment")
    namespace = one(CONTROLLER, "Namespace")["metadata"]["name"]
    assert deployment["metadata"]["namespace"] == namespace
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    assert spec["replicas"] >= 2  # a standby waits on the Lease
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["serviceAccountName"] == one(CONTROLLER, "ServiceAccount")["metadata"]["name"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[0] == "controller" and "--leader-elect" in args
    assert "--lease-namespace=$(POD_NAMESPACE)" in args and "--identity=$(POD_NAME)" in args
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert f"--metrics-port={ports['http']}" in args
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_the_docs_list_exactly_the_granted_calls() -> None:
    lines = (DEPLOY.parent / "docs" / "kubernetes.md").read_text().splitlines()
    start = lines.index("| API group | Resource | Verbs | Scope |") + 2
    rows = set(lines[start : lines.index("", start)])
    listed = {
        f"| `{a.group or 'core'}` | `{a.resource}` | {', '.join(a.verbs)} | {a.scope} |" for a in ACCESS
    }
    assert rows == listed
