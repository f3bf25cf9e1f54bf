"""The ebbtide.dev CustomResourceDefinitions: in sync with deploy/crds, structural, faithful to the models."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from typer.testing import CliRunner

from ebbtide.adapters.kubernetes import crds
from ebbtide.adapters.kubernetes.workload import Workload
from ebbtide.cli.main import app

from .standin import StandIn

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy" / "crds"
BY_KIND = {k.kind: k for k in crds.KINDS}


def test_deploy_crds_are_what_ebbtide_crd_generates() -> None:
    """Regenerate with ``ebbtide crd --out-dir deploy/crds`` after changing a model."""
    on_disk = {p.name: p.read_text() for p in DEPLOY.glob("*.yaml")}
    generated = {crds.file_name(k): crds.to_yaml(crds.crd(k)) for k in crds.KINDS}
    assert on_disk == generated


def test_the_command_prints_every_definition() -> None:
    result = CliRunner().invoke(app, ["crd"])
    assert result.exit_code == 0
    assert list(yaml.safe_load_all(result.stdout)) == crds.all_crds()


def test_the_command_writes_one_file_per_kind(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["crd", "--out-dir", str(tmp_path), "--kind", "Strategy"])
    assert result.exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["strategies.ebbtide.dev.yaml"]


def test_an_unknown_kind_is_bad_input() -> None:
    result = CliRunner().invoke(app, ["crd", "--kind", "Rollout"])
    assert result.exit_code == 2
    assert "--kind Rollout: unknown kind" in result.stderr and "Traceback" not in result.output


# -- structural schemas (the rules of the Kubernetes docs, "Specifying a structural schema") ---------------
def nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for name, sub in (schema.get("properties") or {}).items():
        found += nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        found += nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += nodes(schema["additionalProperties"], f"{path}{{}}")
    return found


@pytest.mark.parametrize("kind", list(BY_KIND))
def test_every_schema_node_is_structural(kind: str) -> None:
    (version,) = crds.crd(BY_KIND[kind])["spec"]["versions"]
    for path, node in nodes(version["schema"]["openAPIV3Schema"]):
        where = f"{kind}{path}"
        assert not {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "const", "definitions"} & set(node), (
            where
        )
        escape = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
        assert "type" in node or escape, f"{where}: no type"
        assert node.get("additionalProperties") is not False, where
        assert not ("properties" in node and "additionalProperties" in node), where
        assert not isinstance(node.get("exclusiveMinimum"), int | float) or isinstance(
            node.get("exclusiveMinimum"), bool
        ), f"{where}: OpenAPI v3.0 spells exclusiveMinimum as a flag"
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, where


# -- the schema says what the model says -----------------------------------------------------------------
def openapi_to_draft4(schema: Any) -> Any:
    """OpenAPI v3.0 schema -> JSON Schema draft 4 (the same keywords, bar Kubernetes' int-or-string)."""
    if isinstance(schema, list):
        return [openapi_to_draft4(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: openapi_to_draft4(v) for k, v in schema.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out["type"] = ["integer", "string"]
    return out


def validator(kind: str) -> jsonschema.Draft4Validator:
    (version,) = crds.crd(BY_KIND[kind])["spec"]["versions"]
    return jsonschema.Draft4Validator(openapi_to_draft4(version["schema"]["openAPIV3Schema"]))


def example_documents() -> list[dict[str, Any]]:
    found = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if (
                isinstance(doc, dict)
                and doc.get("kind") in BY_KIND
                and doc.get("apiVersion") == crds.API_VERSION
            ):
                found.append(doc)
    return found


def test_the_examples_are_valid_custom_resources() -> None:
    documents = example_documents()
    assert {d["kind"] for d in documents} >= {"RolloutSpec", "Strategy", "VerificationTemplate"}
    for doc in documents:
        errors = [e.message for e in validator(doc["kind"]).iter_errors(doc)]
        assert errors == [], f"{doc['kind']} {doc['metadata']['name']}"


def workload(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": crds.API_VERSION,
        "kind": "EbbtideDeployment",
        "metadata": {"name": "web"},
        "spec": spec,
    }


TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "web:1"}]}}
GOOD_WORKLOADS = [
    workload(replicas=4, selector={"matchLabels": {"app": "web"}}, template=TEMPLATE),
    workload(workloadRef={"name": "web"}, replicas=2, progressDeadlineSeconds=120),
]


@pytest.mark.parametrize("doc", GOOD_WORKLOADS)
def test_a_good_workload_passes_the_schema_and_the_model(doc: dict[str, Any]) -> None:
    assert list(validator("EbbtideDeployment").iter_errors(doc)) == []
    Workload.model_validate(doc)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("replicas", -1),
        ("replicas", "three"),
        ("progressDeadlineSeconds", 0),
        ("workloadRef", {"kind": "StatefulSet", "name": "web"}),
        ("selector", {"matchExpressions": [{"key": "app", "operator": "Near"}]}),
    ],
)
def test_the_schema_refuses_what_the_model_refuses(field: str, value: Any) -> None:
    doc = copy.deepcopy(GOOD_WORKLOADS[1])
    doc["spec"][field] = value
    assert list(validator("EbbtideDeployment").iter_errors(doc))
    with pytest.raises(ValidationError):
        Workload.model_validate(doc)


@pytest.mark.parametrize(
    ("path", "value", "valid"),
    [
        (("failurePolicy", "action"), "explode", False),
        (("progressDeadlineSeconds",), 0, False),
        (("maxSurge",), "50%", True),
        (("maxSurge",), 3, True),
        (("maxSurge",), 1.5, False),
    ],
)
def test_rollout_spec_fields(path: tuple[str, ...], value: Any, valid: bool) -> None:
    doc: dict[str, Any] = {
        "apiVersion": crds.API_VERSION,
        "kind": "RolloutSpec",
        "metadata": {"name": "r"},
        "spec": {"spotDeployment": {"name": "web"}, "strategy": {"name": "s"}},
    }
    node = doc["spec"]
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = value
    assert (list(validator("RolloutSpec").iter_errors(doc)) == []) == valid


def test_durations_are_int_or_string() -> None:
    (version,) = crds.crd(BY_KIND["Strategy"])["spec"]["versions"]
    steps = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["canary"]["properties"]
    pause = steps["steps"]["items"]["properties"]["pause"]["properties"]["duration"]
    assert pause == {"x-kubernetes-int-or-string": True}


def test_workload_model_rules() -> None:
    with pytest.raises(ValidationError, match="exactly one of template"):
        Workload.model_validate(workload(replicas=1))
    with pytest.raises(ValidationError, match=r"does not match template\.metadata\.labels"):
        Workload.model_validate(workload(selector={"matchLabels": {"app": "other"}}, template=TEMPLATE))


# -- printer columns and subresources -----------------------------------------------------------------------
def test_the_workload_columns_show_phase_step_weights_stable_canary_age() -> None:
    (version,) = crds.crd(BY_KIND["EbbtideDeployment"])["spec"]["versions"]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert {"Phase", "Step", "Weights", "Stable", "Canary", "Age"} <= set(columns)
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    for path in columns.values():
        top, name = path.split(".")[1:3]
        assert top in ("metadata", "spec") or name in status, path
    assert set(version["subresources"]) == {"status", "scale"}


def test_the_definitions_apply_and_a_workload_round_trips(api: StandIn) -> None:
    extensions = client.ApiextensionsV1Api(api.client)
    for path in sorted(DEPLOY.glob("*.yaml")):
        extensions.create_custom_resource_definition(yaml.safe_load(path.read_text()))
    objects = client.CustomObjectsApi(api.client)
    args = (crds.GROUP, crds.VERSION, "default", "ebbtidedeployments")
    made = objects.create_namespaced_custom_object(*args, GOOD_WORKLOADS[0])
    assert Workload.model_validate(made).spec.replicas == 4
    status = {"phase": "live", "weights": "web-1=100", "stableRevision": "web-1"}
    objects.patch_namespaced_custom_object_status(*args, "web", {"status": status})
    read = objects.get_namespaced_custom_object(*args, "web")
    assert read["status"] == status and read["spec"] == GOOD_WORKLOADS[0]["spec"]
    with pytest.raises(ApiException) as absent:
        objects.get_namespaced_custom_object(*args, "nope")
    assert absent.value.status == 404
