"""Scenario files: ``kind: Scenario`` documents that say what to simulate.

A scenario names the rollout specs (files, or documents in the same YAML file), the behaviour of every
revision, how metrics map to signals, the traffic, the actions to take and when, and how long to run.
``docs/scenario.md`` is the reference; :meth:`Scenario.model_json_schema` is its JSON Schema.

Loading validates everything before anything runs; every problem is reported at once as a
:class:`~ebbtide.core.spec.SpecError` whose problems name the file, the document, the field and the reason.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError

from ebbtide.adapters.memory import (
    ClusterConfig,
    Duration,
    MetricMapping,
    Model,
    RevisionBehaviour,
    find_mapping,
)
from ebbtide.adapters.specfiles import FileProblem, read_text
from ebbtide.core.plan import MAX_REPLICAS, Plan
from ebbtide.core.spec import (
    Document,
    Problem,
    Repair,
    SpecError,
    SpecSet,
    compile_plan,
    error_reason,
    loc_path,
    parse_documents,
    repair_model,
)

API_VERSION = "ebbtide.dev/v1alpha1"
#: the most scripted actions in one scenario, and the most runs of one simulation (docs/spec-reference.md)
MAX_ACTIONS = 10_000
MAX_RUNS = 1_000_000
ActionName = Literal["deploy", "promote", "promoteFull", "pause", "resume", "abort", "retry", "rollback"]


class Metadata(Model):
    name: str = "scenario"
    description: str | None = None


class StableRef(Model):
    """The revision live when the simulation starts (deployed at time 0, live at once)."""

    revision: str


class Traffic(Model):
    #: requests per second reaching the router
    rps: float = Field(100.0, ge=0.0, allow_inf_nan=False)
    #: share of requests (0..1) carrying the header of the rollout's header routes
    header_share: float = Field(0.0, ge=0.0, le=1.0)


class Action(Model):
    """A scripted action at a simulated time: deploy a revision, or a rollout action (a command)."""

    at: Duration
    action: ActionName
    #: deploy: the revision to deploy; rollback: the revision to roll back to (default: previous successful)
    revision: str | None = None


class ScenarioSpec(Model):
    #: rollout spec files (Ocean CD or Argo Rollouts YAML), relative to the scenario file; the other documents
    #: of the scenario file itself are specs too
    specs: list[str] = Field(default_factory=list)
    #: which rollout to simulate when the specs define several
    rollout: str | None = None
    #: replica count of the workload (default: the spec's)
    replicas: int | None = Field(None, ge=1, le=MAX_REPLICAS)
    stable: StableRef
    revisions: dict[str, RevisionBehaviour]
    #: how metrics of the verification templates map to revision signals
    metrics: list[MetricMapping] = Field(default_factory=list)
    traffic: Traffic = Field(default_factory=Traffic)
    actions: list[Action] = Field(default_factory=list, max_length=MAX_ACTIONS)
    #: how long to simulate; a run also stops as soon as the rollout settles with nothing scheduled
    duration: Duration
    #: default number of runs and seed (the command line overrides them)
    runs: int = Field(1, ge=1, le=MAX_RUNS)
    seed: int = 0


class Scenario(Model):
    api_version: Literal["ebbtide.dev/v1alpha1"] = "ebbtide.dev/v1alpha1"
    kind: Literal["Scenario"] = "Scenario"
    metadata: Metadata = Field(default_factory=Metadata)
    spec: ScenarioSpec

    _plan: Plan | None = PrivateAttr(default=None)
    _file: str = PrivateAttr(default="<scenario>")
    _document: int = PrivateAttr(default=0)
    _repair: Repair | None = PrivateAttr(default=None)

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            raise RuntimeError(
                "the scenario has no compiled plan: load it with load_scenario() or bind() one"
            )
        return self._plan

    @property
    def file(self) -> str:
        return self._file

    def bind(self, plan: Plan, file: str = "<scenario>", document: int = 1) -> Scenario:
        """Attach the compiled plan, after checking the scenario against it (raises SpecError)."""
        problems = check(self, plan, file, document)
        if problems:
            raise SpecError(problems)
        self._plan = plan
        self._file = file
        self._document = document
        return self

    def cluster_config(self) -> ClusterConfig:
        return ClusterConfig(
            revisions=self.spec.revisions,
            metrics=tuple(self.spec.metrics),
            rps=self.spec.traffic.rps,
            header_share=self.spec.traffic.header_share,
        )


# ----------------------------------------------------------------------------------------------------------
# validation against the plan
# ----------------------------------------------------------------------------------------------------------
def used_templates(plan: Plan) -> list[str]:
    names: list[str] = []
    for step in plan.steps:
        for t in step.templates:
            if t not in names:
                names.append(t)
    for t in plan.background_templates:
        if t not in names:
            names.append(t)
    return names


def check(scenario: Scenario, plan: Plan, file: str, document: int) -> list[Problem]:
    """Every semantic problem of a scenario against the plan it simulates."""
    spec = scenario.spec
    problems: list[Problem] = []

    def bad(field: str, reason: str) -> None:
        problems.append(
            Problem(
                file=file,
                document=document,
                kind="Scenario",
                name=scenario.metadata.name,
                field=field,
                reason=reason,
            )
        )

    known = set(spec.revisions)
    if spec.stable.revision not in known:
        bad("spec.stable.revision", f"revision {spec.stable.revision!r} is not declared in spec.revisions")
    if spec.duration <= 0:
        bad("spec.duration", "the duration must be positive")
    deployed = [spec.stable.revision]
    rollout_started = False
    order = sorted(range(len(spec.actions)), key=lambda i: spec.actions[i].at)
    for i in order:
        action = spec.actions[i]
        where = f"spec.actions[{i}]"
        if action.at > spec.duration:
            bad(f"{where}.at", f"at {action.at:g}s is after the end of the run (duration {spec.duration:g}s)")
        if action.action == "deploy":
            if action.revision is None:
                bad(f"{where}.revision", "deploy needs the revision to deploy")
                continue
            if action.revision not in known:
                bad(f"{where}.revision", f"revision {action.revision!r} is not declared in spec.revisions")
            deployed.append(action.revision)
            rollout_started = True
            continue
        if action.action == "rollback" and action.revision is not None:
            if action.revision not in known:
                bad(f"{where}.revision", f"revision {action.revision!r} is not declared in spec.revisions")
            elif action.revision not in deployed:
                bad(
                    f"{where}.revision",
                    f"rollback to {action.revision!r}, which is not deployed before t={action.at:g}s",
                )
            continue
        if action.revision is not None and action.action != "rollback":
            bad(f"{where}.revision", f"{action.action} takes no revision (only deploy and rollback do)")
        if not rollout_started:
            bad(
                f"{where}.action",
                f"{action.action} at t={action.at:g}s acts on nothing: no revision is deployed before it "
                f"(only the stable revision {spec.stable.revision!r} is live)",
            )

    for tname in used_templates(plan):
        template = plan.templates.get(tname)
        if template is None:
            continue
        for metric in template.metrics:
            mapping = find_mapping(tuple(spec.metrics), metric.name, metric.provider)
            if mapping is None:
                bad(
                    "spec.metrics",
                    f"metric {metric.name!r} of template {tname!r} maps to no signal: add "
                    f"{{metric: {metric.name}, signal: ...}} (or a query substring) to spec.metrics",
                )
                continue
            for rev in dict.fromkeys(deployed):
                behaviour = spec.revisions.get(rev)
                if behaviour is not None and mapping.signal not in behaviour.signals:
                    bad(
                        f"spec.revisions.{rev}.signals",
                        f"revision {rev!r} has no signal {mapping.signal!r} (measured by metric "
                        f"{metric.name!r} of template {tname!r})",
                    )
    return problems


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[Any, ...]] = set()
    out: list[Problem] = []
    for p in problems:
        key = (p.file, p.document, p.field, p.reason)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# ----------------------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------------------
def parse_scenario(data: Any, file: str, document: int) -> Scenario:
    """Validate one Scenario document (structure only); raises SpecError."""
    scenario, problems = parse_scenario_leniently(data, file, document)
    if problems or scenario is None:
        raise SpecError(problems)
    return scenario


def parse_scenario_leniently(data: Any, file: str, document: int) -> tuple[Scenario | None, list[Problem]]:
    """Validate one Scenario document; on structural problems also return the document with the broken
    parts cut out (when that validates), so that the cross-checks can still report their problems."""
    try:
        return Scenario.model_validate(data), []
    except ValidationError as exc:
        meta = data.get("metadata") if isinstance(data, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        problems = [
            Problem(
                file=file,
                document=document,
                kind="Scenario",
                name=name if isinstance(name, str) else None,
                field=loc_path(err["loc"]),
                reason=error_reason(err),
            )
            for err in exc.errors()
        ]
        repair = repair_model(Scenario, data, exc)
        if repair is None or not isinstance(repair.model, Scenario):
            return None, problems
        repaired: Scenario = repair.model
        repaired._repair = repair
        return repaired, problems


def _file_problem(file: str, document: int, field: str, reason: str) -> Problem:
    return Problem(file=file, document=document, kind="Scenario", name=None, field=field, reason=reason)


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file, load and compile the specs it names, and check them together.

    Raises :class:`~ebbtide.core.spec.SpecError` listing every problem found (the scenario's and its
    specs'); nothing is returned half-checked.
    """
    path = Path(path)
    file = str(path)
    try:
        text = read_text(path)
    except FileProblem as exc:
        raise SpecError([_file_problem(file, 0, "", exc.reason)]) from None
    docs = parse_documents(text, file)
    scenario_docs = [d for d in docs if d.kind == "Scenario"]
    if len(scenario_docs) != 1:
        reason = (
            "no kind: Scenario document" if not scenario_docs else "more than one kind: Scenario document"
        )
        raise SpecError([_file_problem(file, 1, "kind", reason)])
    doc = scenario_docs[0]
    problems: list[Problem] = []
    scenario, structural = parse_scenario_leniently(doc.body, file, doc.index)
    problems.extend(structural)

    documents: list[Document] = [d for d in docs if d.kind != "Scenario"]
    rels: list[str] = []
    if scenario is not None:
        rels = scenario.spec.specs
    elif isinstance(doc.body, dict) and isinstance(doc.body.get("spec"), dict):
        raw = doc.body["spec"].get("specs")
        rels = [r for r in raw if isinstance(r, str)] if isinstance(raw, list) else []
    for i, rel in enumerate(rels):
        spec_path = Path(rel) if Path(rel).is_absolute() else path.parent / rel
        try:
            spec_text = read_text(spec_path)
        except FileProblem as exc:
            problems.append(_file_problem(file, doc.index, f"spec.specs[{i}]", f"{rel}: {exc.reason}"))
            continue
        try:
            documents.extend(parse_documents(spec_text, str(spec_path)))
        except SpecError as exc:
            problems.extend(exc.problems)
    if not documents and not problems:
        problems.append(
            _file_problem(
                file,
                doc.index,
                "spec.specs",
                "no rollout spec: list spec files in spec.specs or add the spec documents to this file",
            )
        )
    plan: Plan | None = None
    if documents:
        try:
            specset = SpecSet.from_documents(documents, ignore_kinds={"Scenario"})
            if scenario is not None:
                plan = compile_plan(specset, rollout=scenario.spec.rollout, replicas=scenario.spec.replicas)
        except SpecError as exc:
            problems.extend(exc.problems)
    if scenario is not None and plan is not None:
        cross = check(scenario, plan, file, doc.index)
        if scenario._repair is not None:  # paths in a repaired copy: map them back to the file's
            seen = {p.field for p in problems}
            mapped = [dataclasses.replace(p, field=scenario._repair.original_path(p.field)) for p in cross]
            cross = [p for p in mapped if p.field not in seen]
        problems.extend(cross)
    if problems or scenario is None or plan is None:
        raise SpecError(_dedupe(problems))
    scenario._plan = plan
    scenario._file = file
    scenario._document = doc.index
    return scenario
