"""The workload kind, ``EbbtideDeployment``: a Deployment whose rollouts ebbtide runs (as Ocean CD's
SpotDeployment).

Either it carries its own pod ``template`` (with a ``selector`` matching the template's labels), as a
Deployment does, or a ``workloadRef`` names an existing Deployment in the same namespace whose template and
selector it adopts (:mod:`.adoption`; ``scaleDown`` says when that Deployment is scaled to 0, and
``replicas``, when not given, is the Deployment's). ``replicas``, ``revisionHistoryLimit``,
``progressDeadlineSeconds`` and ``minReadySeconds`` mean what they mean on a Deployment. A RolloutSpec names
the workload it rolls out (``spec.spotDeployment``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, Self

from pydantic import ConfigDict, Field, StrictInt, model_validator

from ebbtide.core.spec import Metadata, Model, NonNegInt, Replicas

KIND: Final = "EbbtideDeployment"


class LabelSelectorRequirement(Model):
    key: Annotated[str, Field(min_length=1)]
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


class LabelSelector(Model):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class DeploymentRef(Model):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["Deployment"] = "Deployment"
    name: Annotated[str, Field(min_length=1)]
    #: when the Deployment is scaled down (Argo's options): ``onsuccess`` to 0 once the adopted revision's
    #: pods are all ready, ``progressively`` one pod for each adopted pod ready, ``never`` left as it is
    scale_down: Literal["onsuccess", "progressively", "never"] = "onsuccess"


class WorkloadSpec(Model):
    replicas: Replicas = 1
    selector: LabelSelector | None = None
    #: a PodTemplateSpec, kept as written (the API server validates it when it lands in a ReplicaSet)
    template: dict[str, Any] | None = None
    workload_ref: DeploymentRef | None = None
    revision_history_limit: NonNegInt = 10
    progress_deadline_seconds: Annotated[StrictInt, Field(gt=0)] = 600
    min_ready_seconds: NonNegInt = 0

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.template is None) == (self.workload_ref is None):
            raise ValueError("give exactly one of template (the pod template) and workloadRef (a Deployment)")
        if self.template is not None:
            if self.selector is None or (
                not self.selector.match_labels and not self.selector.match_expressions
            ):
                raise ValueError("selector: required with a template, and must not be empty")
            labels = (self.template.get("metadata") or {}).get("labels") or {}
            wanted = self.selector.match_labels or {}
            if any(labels.get(k) != v for k, v in wanted.items()):
                raise ValueError("selector.matchLabels: does not match template.metadata.labels")
        return self


class ObjectMeta(Metadata):
    """The metadata as the API server returns it: the fields it adds (uid, resourceVersion, ...) pass."""

    model_config = ConfigDict(extra="ignore")


class Workload(Model):
    api_version: Literal["ebbtide.dev/v1alpha1"] = "ebbtide.dev/v1alpha1"
    kind: Literal["EbbtideDeployment"] = KIND
    metadata: ObjectMeta
    spec: WorkloadSpec
    #: written by the controller only (status subresource); its schema is in the CRD
    status: dict[str, Any] | None = None
