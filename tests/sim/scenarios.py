"""Scenario files written by the tests: inline specs (a two-phase canary) and a scenario around them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ebbtide.sim.scenario import Scenario, load_scenario

TEMPLATE = {
    "apiVersion": "ebbtide.dev/v1alpha1",
    "kind": "VerificationTemplate",
    "metadata": {"name": "health"},
    "spec": {
        "metrics": [
            {
                "name": "success-rate",
                "interval": "30s",
                "count": 2,
                "successCondition": "result >= 0.95",
                "provider": {"prometheus": {"address": "http://prom:9090", "query": "sr"}},
            }
        ]
    },
}


def strategy(steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    steps = steps or [
        {"setWeight": 20},
        {"verification": {"templateNames": ["health"]}},
        {"setWeight": 50},
        {"pause": {"duration": "1m"}},
        {"verification": {"templateNames": ["health"]}},
    ]
    return {
        "apiVersion": "ebbtide.dev/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": "two-phases"},
        "spec": {"canary": {"steps": steps}},
    }


def rollout_spec(
    name: str = "app", policy: str = "rollback", mode: str = "immediate", replicas: int = 4
) -> dict:
    failure: dict[str, Any] = {"action": policy}
    if policy == "rollback":
        failure["rollback"] = {"mode": mode}
    return {
        "apiVersion": "ebbtide.dev/v1alpha1",
        "kind": "RolloutSpec",
        "metadata": {"name": name},
        "spec": {
            "spotDeployment": {"name": "app", "namespace": "default"},
            "replicas": replicas,
            "strategy": {"name": "two-phases"},
            # a router splits by weight (without one the canary is basic: weights are pod ratios)
            "traffic": {"canaryService": "app-canary", "nginx": {"stableIngress": "app"}},
            "failurePolicy": failure,
        },
    }


HEALTHY = {"readiness": {"delay": "10s", "jitter": "5s"}, "signals": {"sr": {"value": 0.99, "noise": 0.002}}}
FAILING = {
    "readiness": {"delay": "10s", "jitter": "5s"},
    "misbehaveAt": {"weight": 20},
    "signals": {"sr": {"value": 0.99, "noise": 0.002, "misbehaving": 0.8}},
}


def scenario_doc(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "stable": {"revision": "v1"},
        "revisions": {"v1": HEALTHY, "v2": FAILING},
        "metrics": [{"metric": "success-rate", "signal": "sr"}],
        "traffic": {"rps": 10},
        "actions": [{"at": "1m", "action": "deploy", "revision": "v2"}],
        "duration": "2h",
    }
    body.update(spec)
    return {"apiVersion": "ebbtide.dev/v1alpha1", "kind": "Scenario", "metadata": {"name": "t"}, "spec": body}


def write(path: Path, scenario: dict[str, Any], specs: list[dict[str, Any]] | None = None) -> Path:
    docs = [scenario, *(specs if specs is not None else [TEMPLATE, strategy(), rollout_spec()])]
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def load(tmp_path: Path, specs: list[dict[str, Any]] | None = None, **spec: Any) -> Scenario:
    return load_scenario(write(tmp_path / "scenario.yaml", scenario_doc(**spec), specs))
