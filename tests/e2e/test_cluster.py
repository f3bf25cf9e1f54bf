"""Against a real cluster (kind, k3s, ...): skipped unless ``EBBTIDE_E2E_KUBECONFIG`` names a kubeconfig.

What it checks that the stand-in API server cannot: that the real API server accepts the generated
CustomResourceDefinitions (structural schemas, printer columns, status and scale subresources), validates a
workload with them (a schema violation is refused with 422), keeps spec and status apart, and that
deploy/rbac.yaml lets the controller's ServiceAccount make every call listed in access.py (asked with
SubjectAccessReview) and nothing it should not. It creates cluster-scoped objects (the CRDs, the
ClusterRole and its binding, the ebbtide-system namespace): use a throwaway cluster. See docs/kubernetes.md.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ebbtide.adapters.kubernetes import crds
from ebbtide.adapters.kubernetes.access import ACCESS
from ebbtide.adapters.kubernetes.workload import Workload

KUBECONFIG = os.environ.get("EBBTIDE_E2E_KUBECONFIG")
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

pytestmark = pytest.mark.skipif(
    not KUBECONFIG, reason="set EBBTIDE_E2E_KUBECONFIG to a test cluster's kubeconfig"
)


@pytest.fixture(scope="module")
def api() -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=KUBECONFIG)
    yield api_client
    api_client.close()


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the cluster did not get there in time")
        time.sleep(0.5)


def established(extensions: client.ApiextensionsV1Api, name: str) -> bool:
    status = extensions.read_custom_resource_definition(name).status
    return any(c.type == "Established" and c.status == "True" for c in (status.conditions or []) if status)


def apply_crds(api: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api)
    for path in sorted((DEPLOY / "crds").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        try:
            extensions.create_custom_resource_definition(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            current = extensions.read_custom_resource_definition(body["metadata"]["name"])
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            extensions.replace_custom_resource_definition(body["metadata"]["name"], body)
        wait_for(lambda name=body["metadata"]["name"]: established(extensions, name))


@pytest.fixture(scope="module")
def namespace(api: client.ApiClient) -> Iterator[str]:
    apply_crds(api)
    name = f"ebbtide-e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def test_the_definitions_are_established(api: client.ApiClient) -> None:
    apply_crds(api)
    extensions = client.ApiextensionsV1Api(api)
    for kind in crds.KINDS:
        assert established(extensions, kind.name)


WORKLOAD: dict[str, Any] = {
    "apiVersion": crds.API_VERSION,
    "kind": "EbbtideDeployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "web:1"}]},
        },
        "progressDeadlineSeconds": 120,
    },
}


def test_a_workload_round_trips_and_its_status_is_apart(api: client.ApiClient, namespace: str) -> None:
    objects = client.CustomObjectsApi(api)
    args = (crds.GROUP, crds.VERSION, namespace, "ebbtidedeployments")
    made = objects.create_namespaced_custom_object(*args, WORKLOAD)
    assert made["spec"] == WORKLOAD["spec"]
    assert Workload.model_validate(made).spec.replicas == 3
    status = {"phase": "live", "weights": "web-1=100", "stableRevision": "web-1", "replicas": 3}
    objects.patch_namespaced_custom_object_status(*args, "web", {"status": status, "spec": {"replicas": 9}})
    read = objects.get_namespaced_custom_object(*args, "web")
    assert read["status"] == status and read["spec"]["replicas"] == 3
    scale = objects.get_namespaced_custom_object_scale(*args, "web")
    assert scale["spec"]["replicas"] == 3


def test_the_api_server_refuses_what_the_schema_refuses(api: client.ApiClient, namespace: str) -> None:
    objects = client.CustomObjectsApi(api)
    bad = {**WORKLOAD, "metadata": {"name": "bad"}, "spec": {**WORKLOAD["spec"], "replicas": -1}}
    with pytest.raises(ApiException) as refused:
        objects.create_namespaced_custom_object(
            crds.GROUP, crds.VERSION, namespace, "ebbtidedeployments", bad
        )
    assert refused.value.status == 422 and "spec.replicas" in str(refused.value.body)


def apply_rbac(api: client.ApiClient) -> tuple[str, str]:
    """Apply the namespace and ServiceAccount of deploy/controller.yaml, and deploy/rbac.yaml."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    controller = [d for d in yaml.safe_load_all((DEPLOY / "controller.yaml").read_text()) if d]
    (ns,) = [d for d in controller if d["kind"] == "Namespace"]
    (account,) = [d for d in controller if d["kind"] == "ServiceAccount"]
    creators: dict[str, Callable[[dict[str, Any]], Any]] = {
        "Namespace": core.create_namespace,
        "ServiceAccount": lambda d: core.create_namespaced_service_account(d["metadata"]["namespace"], d),
        "ClusterRole": rbac.create_cluster_role,
        "ClusterRoleBinding": rbac.create_cluster_role_binding,
        "Role": lambda d: rbac.create_namespaced_role(d["metadata"]["namespace"], d),
        "RoleBinding": lambda d: rbac.create_namespaced_role_binding(d["metadata"]["namespace"], d),
    }
    for doc in [ns, account, *[d for d in yaml.safe_load_all((DEPLOY / "rbac.yaml").read_text()) if d]]:
        try:
            creators[doc["kind"]](doc)
        except ApiException as exc:
            if exc.status != 409:  # already there from an earlier run
                raise
    return ns["metadata"]["name"], account["metadata"]["name"]


def allowed(api: client.ApiClient, user: str, namespace: str, group: str, resource: str, verb: str) -> bool:
    plural, _, sub = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{user.split(':')[2]}"],
            "resourceAttributes": {
                "namespace": namespace,
                "group": group,
                "resource": plural,
                "subresource": sub,
                "verb": verb,
            },
        },
    }
    return bool(client.AuthorizationV1Api(api).create_subject_access_review(review).status.allowed)


def test_the_service_account_may_make_every_listed_call_and_no_other(api: client.ApiClient) -> None:
    own, account = apply_rbac(api)
    user = f"system:serviceaccount:{own}:{account}"
    for access in ACCESS:
        where = own if access.scope == "own-namespace" else "default"
        for verb in access.verbs:
            assert allowed(api, user, where, access.group, access.resource, verb), (access, verb)
    assert not allowed(api, user, "default", "", "secrets", "get")
    assert not allowed(api, user, "default", "", "pods", "delete")
    assert not allowed(api, user, "default", "coordination.k8s.io", "leases", "update")
