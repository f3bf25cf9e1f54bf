"""Argo Rollouts YAML, unchanged, mapped onto the Ocean CD dialect documents of :mod:`ebbtide.core.spec`.

- ``Rollout`` -> a ``RolloutSpec`` and a ``Strategy``, both named after the Rollout (``blueGreen`` through
  :mod:`ebbtide.core.argo_bluegreen`);
  ``analysis`` steps become ``verification`` steps, the background ``analysis`` becomes
  ``backgroundVerification`` (``startingStep`` kept); an analysis's ``dryRun`` list is kept on its
  verification (matched against the metric names when the plan is compiled) and ``measurementRetention``
  is checked and dropped (ebbtide keeps counters, not measurements); the analysis ``args`` of all steps
  become the RolloutSpec's strategy args (the same arg given different values in different steps is
  reported, not guessed); Argo's failure behaviour is ``failurePolicy: {action: rollback, rollback:
  {mode: immediate}}``.
- ``AnalysisTemplate`` / ``ClusterAnalysisTemplate`` -> a ``VerificationTemplate`` (``spec.dryRun``
  rules, regular expressions found in a metric name as Argo matches them, or ``*``, set the matching
  metrics' ``dryRun``; a rule that matches no metric is a problem).

Some fields are accepted and ignored (see :data:`IGNORED_ROLLOUT_FIELDS`, :data:`IGNORED_CANARY_FIELDS`,
:data:`IGNORED_TEMPLATE_FIELDS`): those a user could expect to change behaviour earn a warning, listed with
what ebbtide does instead in :mod:`ebbtide.core.argo_ignored`. Unknown fields and unsupported features
(experiment and plugin steps, providers ebbtide has no adapter for) are problems.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .argo_bluegreen import BLUE_GREEN_KNOWN, convert_blue_green
from .spec import API_VERSION, Document, Problem, dry_run_matches, pattern_problem

__all__ = [
    "IGNORED_CANARY_FIELDS",
    "IGNORED_ROLLOUT_FIELDS",
    "IGNORED_TEMPLATE_FIELDS",
    "KNOWN_FIELDS",
    "convert_argo",
]

#: Rollout.spec fields used
_USED_ROLLOUT_FIELDS = (
    "replicas",
    "strategy",
    "progressDeadlineSeconds",
    "revisionHistoryLimit",
    "rollbackWindow",
)

#: Rollout.spec fields accepted and ignored (pod template, selection, status housekeeping)
IGNORED_ROLLOUT_FIELDS = frozenset(
    {
        "selector",
        "template",
        "workloadRef",
        "minReadySeconds",
        "paused",
        "restartAt",
        "analysis",
        "progressDeadlineAbort",
    }
)
#: Rollout.spec.strategy.canary fields accepted and ignored (routing plumbing, pod metadata, placement)
IGNORED_CANARY_FIELDS = frozenset(
    {
        "canaryService",
        "stableService",
        "canaryMetadata",
        "stableMetadata",
        "antiAffinity",
        "pingPong",
        "minPodsPerReplicaSet",
        "replicaProgressThreshold",
    }
)
#: AnalysisTemplate.spec fields accepted and ignored
IGNORED_TEMPLATE_FIELDS = frozenset({"measurementRetention"})
#: Argo metric providers ebbtide has no adapter for
UNSUPPORTED_PROVIDERS = frozenset({"kayenta", "wavefront", "influxdb", "skywalking", "graphite", "plugin"})

_COPIED_CANARY = (
    "dynamicStableScale",
    "abortScaleDownDelaySeconds",
    "scaleDownDelaySeconds",
    "scaleDownDelayRevisionLimit",
    "maxSurge",
    "maxUnavailable",
)
_STEP_ACTIONS = ("setWeight", "pause", "analysis", "setCanaryScale", "setHeaderRoute", "setMirrorRoute")
#: steps refused (with why), each with one problem that names the step; the step is then left out
_UNSUPPORTED_STEPS = {
    "experiment": "experiment steps are not supported yet: ebbtide does not run an experiment's temporary "
    "ReplicaSets and their analyses (use setWeight with an analysis step instead)",
    "plugin": "plugin steps are not supported",
}


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def convert_argo(doc: Document) -> tuple[list[Document], list[Problem]]:
    """Convert one Argo document into ebbtide-dialect documents (same file and index) + problems."""
    if doc.kind == "Rollout":
        return _rollout(doc)
    return _template(doc)


def _template_names(doc: Document, at: str, analysis: Any, problems: list[Problem]) -> list[Any]:
    refs = _d(analysis).get("templates")
    if not isinstance(refs, list) or not refs:
        problems.append(doc.problem(f"{at}.templates", "at least one template is required"))
        return []
    names: list[Any] = []
    for j, ref in enumerate(refs):
        name = _d(ref).get("templateName")
        if not isinstance(name, str) or not name:
            problems.append(doc.problem(f"{at}.templates[{j}].templateName", "required field is missing"))
        else:
            names.append(name)
        for key in _d(ref):  # clusterScope: templates are found by name, of either kind
            if key not in ("templateName", "clusterScope"):
                problems.append(doc.problem(f"{at}.templates[{j}].{key}", "unknown field"))
    return names


def _merge_args(
    doc: Document, at: str, analysis: Any, args: dict[str, dict[str, Any]], problems: list[Problem]
) -> None:
    given = _d(analysis).get("args") or []
    if not isinstance(given, list):
        problems.append(doc.problem(f"{at}.args", "must be a list"))
        return
    for j, arg in enumerate(given):
        if not isinstance(arg, dict) or not isinstance(arg.get("name"), str):
            problems.append(doc.problem(f"{at}.args[{j}].name", "required field is missing"))
            continue
        name = arg["name"]
        if name in args and args[name] != arg:
            problems.append(
                doc.problem(
                    f"{at}.args[{j}]",
                    f"arg {name!r} has a different value than in another analysis; ebbtide passes one value "
                    "per arg to all verifications of a rollout",
                )
            )
            continue
        args[name] = arg


def _verification(
    doc: Document, at: str, analysis: Any, args: dict[str, dict[str, Any]], problems: list[Problem]
) -> dict[str, Any]:
    """An Argo ``analysis`` block as a verification: templates, args merged, ``dryRun`` kept (checked by
    the Strategy model), ``measurementRetention`` checked and dropped (ebbtide keeps counters only)."""
    out: dict[str, Any] = {"templateNames": _template_names(doc, at, analysis, problems)}
    _merge_args(doc, at, analysis, args, problems)
    if "dryRun" in _d(analysis):
        out["dryRun"] = analysis["dryRun"]
    _check_retention(doc, f"{at}.measurementRetention", _d(analysis).get("measurementRetention"), problems)
    return out


def _check_retention(doc: Document, at: str, rules: Any, problems: list[Problem]) -> None:
    """``measurementRetention: [{metricName, limit}]`` is accepted (it changes no verdict) but checked."""
    if rules is None:
        return
    if not isinstance(rules, list):
        problems.append(doc.problem(at, "must be a list"))
        return
    for j, rule in enumerate(rules):
        if not isinstance(rule, dict):
            problems.append(doc.problem(f"{at}[{j}]", "must be a mapping with metricName and limit"))
            continue
        if not isinstance(rule.get("metricName"), str) or not rule["metricName"]:
            problems.append(doc.problem(f"{at}[{j}].metricName", "required field is missing"))
        limit = rule.get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            problems.append(doc.problem(f"{at}[{j}].limit", f"must be a positive integer, not {limit!r}"))
        for key in rule:
            if key not in ("metricName", "limit"):
                problems.append(doc.problem(f"{at}[{j}].{key}", "unknown field"))


def _rollout(doc: Document) -> tuple[list[Document], list[Problem]]:
    problems: list[Problem] = []
    body = doc.body
    name = doc.name
    spec = _d(body.get("spec"))
    for key in body:
        if key not in ("apiVersion", "kind", "metadata", "spec", "status"):
            problems.append(doc.problem(key, "unknown field"))
    if not name:
        problems.append(doc.problem("metadata.name", "required field is missing"))
    for key in spec:
        if key not in IGNORED_ROLLOUT_FIELDS and key not in _USED_ROLLOUT_FIELDS:
            problems.append(doc.problem(f"spec.{key}", "unknown field"))
    for key in _d(spec.get("analysis")):
        if key not in _HISTORY_LIMITS:
            problems.append(doc.problem(f"spec.analysis.{key}", "unknown field"))
    strategy = _d(spec.get("strategy"))
    for key in strategy:
        if key not in ("canary", "blueGreen"):
            problems.append(doc.problem(f"spec.strategy.{key}", "unknown field"))
    if "canary" in strategy and "blueGreen" in strategy:
        problems.append(doc.problem("spec.strategy", "give one of canary or blueGreen, not both"))
    if "canary" not in strategy:
        if "blueGreen" not in strategy:
            problems.append(doc.problem("spec.strategy.canary", "required field is missing"))
            return [], problems
        converted, more = convert_blue_green(doc, _verification)  # see core/argo_bluegreen.py
        return [dataclasses.replace(d, form="argo") for d in converted], problems + more
    canary = _d(strategy.get("canary"))
    args: dict[str, dict[str, Any]] = {}
    raw_steps = canary.get("steps") or []
    if not isinstance(raw_steps, list):
        problems.append(doc.problem("spec.strategy.canary.steps", "must be a list"))
        raw_steps = []
    steps, path_map, first_of = _steps(doc, raw_steps, args, problems)
    path_map.append(("spec.canary", "spec.strategy.canary"))
    strategy_spec: dict[str, Any] = {"steps": steps}
    for key in _d(canary.get("trafficRouting")):
        if key not in _ROUTER_KEYS and key != "maxTrafficWeight":
            problems.append(doc.problem(f"spec.strategy.canary.trafficRouting.{key}", "unknown field"))
    if "analysis" in canary:
        bg = canary["analysis"]
        background = _verification(doc, "spec.strategy.canary.analysis", bg, args, problems)
        if "startingStep" in _d(bg):
            start = bg["startingStep"]  # an Argo step index: the first ebbtide step that Argo step became
            if isinstance(start, int) and not isinstance(start, bool) and start >= 0:
                past = len(steps) + start - len(first_of)  # past the last step stays past it
                start = first_of[start] if start < len(first_of) else past
            background["startingStep"] = start
        strategy_spec["backgroundVerification"] = background
        for extra in _d(bg):
            if extra not in ("templates", "args", "startingStep", "dryRun", "measurementRetention"):
                problems.append(doc.problem(f"spec.strategy.canary.analysis.{extra}", "unknown field"))
        path_map.insert(0, ("spec.canary.backgroundVerification", "spec.strategy.canary.analysis"))
    for key in canary:
        if (
            key not in IGNORED_CANARY_FIELDS
            and key not in _COPIED_CANARY
            and key not in ("steps", "analysis", "trafficRouting")
        ):
            problems.append(doc.problem(f"spec.strategy.canary.{key}", "unknown field"))

    meta = {"name": name or "rollout"}
    strategy_doc = {
        "apiVersion": API_VERSION,
        "kind": "Strategy",
        "metadata": meta,
        "spec": {"canary": strategy_spec},
    }
    rspec: dict[str, Any] = {
        "strategy": {"name": name or "rollout", "args": list(args.values())},
        "failurePolicy": {"action": "rollback", "rollback": {"mode": "immediate"}},
    }
    rmap: list[tuple[str, str]] = [("spec.strategy.args", "spec.strategy.canary.steps[*].analysis.args")]
    ref = _d(spec.get("workloadRef"))
    if isinstance(ref.get("name"), str) and ref["name"]:
        rspec["workload"] = {"name": ref["name"]}  # its Deployment, when in the set, gives the replicas
    for key in ("replicas", "progressDeadlineSeconds", "revisionHistoryLimit", "rollbackWindow"):
        if key in spec:
            rspec[key] = spec[key]
    for key in _COPIED_CANARY:
        if key in canary:
            rspec[key] = canary[key]
            rmap.append((f"spec.{key}", f"spec.strategy.canary.{key}"))
    traffic = _traffic(canary)
    if traffic:
        rspec["traffic"] = traffic
        rmap.append(("spec.traffic", "spec.strategy.canary.trafficRouting"))
    rollout_doc = {"apiVersion": API_VERSION, "kind": "RolloutSpec", "metadata": meta, "spec": rspec}
    return [
        Document(doc.file, doc.index, strategy_doc, doc.line, tuple(path_map), doc.kind, form="argo"),
        Document(doc.file, doc.index, rollout_doc, doc.line, tuple(rmap), doc.kind, form="argo"),
    ], problems


#: the actions an Argo step may combine, in the order ebbtide runs them as separate steps (as an Ocean CD
#: phase's, see core/manifests.py): Argo applies them together and completes the step on the first of
#: pause, setCanaryScale, setWeight, analysis that it holds
_ARGO_STEP_ORDER = ("setCanaryScale", "setWeight", "setHeaderRoute", "setMirrorRoute", "analysis", "pause")
#: at most one of these in one Argo step (Argo's own rule)
_ONE_OF = ("setWeight", "pause", "analysis")


def _steps(
    doc: Document, raw_steps: list[Any], args: dict[str, dict[str, Any]], problems: list[Problem]
) -> tuple[list[Any], list[tuple[str, str]], list[int]]:
    """The canary steps as ebbtide steps, the path map back to the Argo ones, and the index of the first
    ebbtide step of each Argo step (a step of several actions becomes one step per action)."""
    steps: list[Any] = []
    path_map: list[tuple[str, str]] = []
    first_of: list[int] = []
    for i, step in enumerate(raw_steps):
        first_of.append(len(steps))
        at = f"spec.strategy.canary.steps[{i}]"
        refused = [key for key in _UNSUPPORTED_STEPS if isinstance(step, dict) and key in step]
        if refused:  # one problem for the step, and the step left out: no follow-on problems
            problems.append(doc.problem(f"{at}.{refused[0]}", _UNSUPPORTED_STEPS[refused[0]]))
            continue
        if not isinstance(step, dict):
            path_map.append((f"spec.canary.steps[{len(steps)}]", at))
            steps.append(step)
            continue
        exclusive = [a for a in _ONE_OF if a in step]
        if len(exclusive) > 1:
            found = ", ".join(exclusive)
            problems.append(
                doc.problem(at, f"a step holds at most one of setWeight, pause, analysis, found {found}")
            )
            continue
        for part in _split(step):
            path_map.append((f"spec.canary.steps[{len(steps)}]", at))
            out: dict[str, Any] = {}
            for key, value in part.items():
                if key == "analysis":
                    out["verification"] = _verification(doc, f"{at}.analysis", value, args, problems)
                    for extra in _d(value):
                        if extra not in ("templates", "args", "dryRun", "measurementRetention"):
                            problems.append(doc.problem(f"{at}.analysis.{extra}", "unknown field"))
                    path_map.insert(-1, (f"spec.canary.steps[{len(steps)}].verification", f"{at}.analysis"))
                else:
                    out[key] = (
                        value  # setWeight, pause, setCanaryScale, setHeaderRoute, setMirrorRoute (same shape)
                    )
            steps.append(out)
    return steps, path_map, first_of


def _split(step: dict[str, Any]) -> list[dict[str, Any]]:
    """An Argo step of several actions as one step per action, in :data:`_ARGO_STEP_ORDER`; other keys (a
    misspelt action) stay with the first, to be reported there."""
    actions = [a for a in _ARGO_STEP_ORDER if a in step]
    if len(actions) < 2:
        return [step]
    rest = {k: v for k, v in step.items() if k not in actions}
    return [{**(rest if j == 0 else {}), a: step[a]} for j, a in enumerate(actions)]


#: Rollout.spec.analysis: how many AnalysisRuns Argo keeps (accepted, with a warning)
_HISTORY_LIMITS = ("successfulRunHistoryLimit", "unsuccessfulRunHistoryLimit")
#: Argo trafficRouting keys -> the RolloutSpec traffic field that holds them (maxTrafficWeight is ignored)
_ROUTER_KEYS = {
    "istio": "istio",
    "nginx": "nginx",
    "smi": "smi",
    "alb": "alb",
    "ambassador": "ambassador",
    "traefik": "traefik",
    "apisix": "apisix",
    "appMesh": "appmesh",
    "plugins": "plugins",
    "managedRoutes": "managedRoutes",
}


def _traffic(canary: dict[str, Any]) -> dict[str, Any]:
    """Argo's trafficRouting (and the canary/stable services) as a RolloutSpec traffic block; none when the
    rollout has no trafficRouting (a basic canary: the weight is realised as a ratio of pods)."""
    routing = _d(canary.get("trafficRouting"))
    out: dict[str, Any] = {_ROUTER_KEYS[k]: v for k, v in routing.items() if k in _ROUTER_KEYS}
    if not out:
        return {}
    for key in ("canaryService", "stableService"):
        if isinstance(canary.get(key), str):
            out[key] = canary[key]
    return out


def _template(doc: Document) -> tuple[list[Document], list[Problem]]:
    problems: list[Problem] = []
    body = doc.body
    spec = _d(body.get("spec"))
    for key in body:
        if key not in ("apiVersion", "kind", "metadata", "spec"):
            problems.append(doc.problem(key, "unknown field"))
    dry: list[tuple[int, str]] = []
    for j, entry in enumerate(spec.get("dryRun") or []):
        metric = _d(entry).get("metricName")
        if not isinstance(metric, str) or not metric:
            problems.append(doc.problem(f"spec.dryRun[{j}].metricName", "required field is missing"))
            continue
        bad = pattern_problem(metric)
        if bad:
            problems.append(doc.problem(f"spec.dryRun[{j}].metricName", bad))
        else:
            dry.append((j, metric))
    names = [m.get("name") for m in spec.get("metrics") or [] if isinstance(m, dict)]
    for j, pattern in dry:
        if not any(isinstance(n, str) and dry_run_matches(pattern, n) for n in names):
            problems.append(doc.problem(f"spec.dryRun[{j}].metricName", f"{pattern!r} matches no metric"))
    _check_retention(doc, "spec.measurementRetention", spec.get("measurementRetention"), problems)
    metrics: list[Any] = []
    for i, m in enumerate(spec.get("metrics") or []):
        if not isinstance(m, dict):
            metrics.append(m)
            continue
        m = dict(m)
        provider = _d(m.get("provider"))
        for p in provider:
            if p in UNSUPPORTED_PROVIDERS:
                problems.append(
                    doc.problem(f"spec.metrics[{i}].provider.{p}", f"the {p} provider is not supported")
                )
        name = m.get("name")
        if isinstance(name, str) and any(dry_run_matches(pattern, name) for _, pattern in dry):
            m["dryRun"] = True
        metrics.append(m)
    out_spec: dict[str, Any] = {"metrics": metrics}
    if "args" in spec:
        out_spec["args"] = spec["args"]
    for key in spec:
        if key not in ("args", "metrics", "dryRun") and key not in IGNORED_TEMPLATE_FIELDS:
            problems.append(doc.problem(f"spec.{key}", "unknown field"))
    meta = {"name": doc.name or ""}
    converted = {
        "apiVersion": API_VERSION,
        "kind": "VerificationTemplate",
        "metadata": meta,
        "spec": out_spec,
    }
    return [Document(doc.file, doc.index, converted, doc.line, (), doc.kind, form="argo")], problems


#: every Argo field name the converter uses, accepts or refuses (for docs/spec-reference.md's test)
KNOWN_FIELDS = frozenset(
    {
        *_USED_ROLLOUT_FIELDS,
        *IGNORED_ROLLOUT_FIELDS,
        *_HISTORY_LIMITS,
        "canary",
        "blueGreen",
        *IGNORED_CANARY_FIELDS,
        *_COPIED_CANARY,
        "steps",
        "analysis",
        "trafficRouting",
        "maxTrafficWeight",
        *_ROUTER_KEYS,
        *_STEP_ACTIONS,
        *_UNSUPPORTED_STEPS,
        "templates",
        "templateName",
        "clusterScope",
        "args",
        "dryRun",
        "startingStep",
        "measurementRetention",
        "metricName",
        "limit",
        "metrics",
        *IGNORED_TEMPLATE_FIELDS,
        *BLUE_GREEN_KNOWN,
    }
)
