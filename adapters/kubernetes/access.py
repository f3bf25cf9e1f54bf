"""Every Kubernetes API call the adapter and controller make: resource, verbs and why, in one place.

``deploy/rbac.yaml`` grants exactly these (a test compares the two in both directions), so a new call
made without a line here fails CI rather than failing in a cluster with 403 Forbidden. ``scope`` says
where the grant applies: ``cluster`` (a ClusterRole: the controller reconciles workloads in every
namespace it is sharded to) or ``own-namespace`` (a Role in the controller's namespace: its Lease).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

READ = ("get", "list", "watch")
#: the spec kinds: read by the controller; written by the operator API (``--api-port``) for a caller a
#: SubjectAccessReview allowed the same verb
SPECS = (*READ, "create", "update", "delete")


@dataclass(frozen=True, slots=True)
class Access:
    group: str  # "" is the core group
    resource: str  # plural, or plural/subresource
    verbs: tuple[str, ...]
    why: str
    scope: Literal["cluster", "own-namespace"] = "cluster"


ACCESS: tuple[Access, ...] = (
    Access(
        "ebbtide.dev",
        "ebbtidedeployments",
        (*READ, "patch", "update"),
        "informer cache of workloads; consume recorded actions (remove the request annotation)",
    ),
    Access(
        "ebbtide.dev",
        "ebbtidedeployments/status",
        ("get", "patch", "update"),
        "persist engine state, conditions and summary with resourceVersion concurrency",
    ),
    Access(
        "ebbtide.dev", "rolloutspecs", SPECS, "the rollout spec a workload follows; the API's spec routes"
    ),
    Access("ebbtide.dev", "strategies", SPECS, "the strategy a rollout spec names; the API's spec routes"),
    Access("ebbtide.dev", "verificationtemplates", SPECS, "metrics and conditions of verifications; the API"),
    Access("ebbtide.dev", "verificationproviders", SPECS, "provider endpoints of verifications; the API"),
    Access(
        "ebbtide.dev", "rolloutspecs/status", ("patch", "update"), "an InvalidSpec condition on a bad spec"
    ),
    Access(
        "apps",
        "replicasets",
        (*READ, "create", "patch", "update", "delete"),
        "one ReplicaSet per revision: create, scale, trim beyond revisionHistoryLimit",
    ),
    Access(
        "apps",
        "deployments",
        (*READ, "patch"),
        "workloadRef: read the adopted Deployment's template, scale it to 0 once its pods are owned",
    ),
    Access("", "pods", READ, "crash loops and image pull errors (container waiting reasons) of a revision"),
    Access(
        "",
        "services",
        (*READ, "patch", "update"),
        "replica-ratio and router traffic: point stable/canary Service selectors at revisions",
    ),
    Access("", "events", ("create",), "a Kubernetes Event per transition (Ocean CD event names)"),
    Access(
        "",
        "secrets",
        ("get",),
        "args from valueFrom.secretKeyRef: read the named Secret (never listed or watched)",
    ),
    Access(
        "batch",
        "jobs",
        ("get", "create", "delete"),
        "job metrics: create a measurement's Job, read its conditions, delete it when it outlives its wait",
    ),
    Access("networking.istio.io", "virtualservices", (*READ, "patch", "update"), "Istio route weights"),
    Access(
        "networking.istio.io", "destinationrules", (*READ, "patch", "update"), "Istio subsets per revision"
    ),
    Access(
        "gateway.networking.k8s.io",
        "httproutes",
        (*READ, "patch", "update"),
        "Gateway API backendRefs weights",
    ),
    Access(
        "split.smi-spec.io", "trafficsplits", (*READ, "create", "patch", "update"), "SMI TrafficSplit weights"
    ),
    Access(
        "networking.k8s.io",
        "ingresses",
        (*READ, "create", "patch", "update", "delete"),
        "NGINX canary: a canary Ingress beside the stable one, removed when the rollout ends",
    ),
    Access(
        "authentication.k8s.io",
        "tokenreviews",
        ("create",),
        "the operator API: who a caller's bearer token belongs to",
    ),
    Access(
        "authorization.k8s.io",
        "subjectaccessreviews",
        ("create",),
        "the operator API: whether that caller may do the verb on the ebbtide resource",
    ),
    Access(
        "coordination.k8s.io",
        "leases",
        ("get", "create", "update"),
        "leader election: only the Lease holder writes",
        scope="own-namespace",
    ),
)
