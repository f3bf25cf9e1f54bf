"""Scenario files: ``kind: Scenario`` documents that say what to simulate.

A scenario names the rollout specs (files, or documents in the same YAML file), the behaviour of every
revision, how metrics map to signals, the traffic, the actions to take and when, and how long to run.
``docs/scenario.md`` is the reference; :meth:`Scenario.model_json_schema` is its JSON Schema.

Loading validates everything before anything runs; every problem is reported at once as a
:class:`~ebbtide.core.spec.SpecError` whose problems name the file, the document, the field and the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError

from ebbtide.adapters.memory import (
    ClusterConfig,
    Duration,
    ExternalVerifier,
    MetricMapping,
    Model,
    RevisionBehaviour,
    find_mapping,
    find_verifier,
)
from ebbtide.adapters.recorded import Recording, RecordingError, load_recording
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
from ebbtide.sim.loop import Prepared, check_start, prepare

API_VERSION = "ebbtide.dev/v1alpha1"
#: the most scripted actions in one scenario, and the most runs of one simulation (docs/spec-reference.md)
MAX_ACTIONS = 10_000
MAX_RUNS = 1_000_000
ActionName = Literal[
    "deploy", "promote", "promoteFull", "pause", "resume", "abort", "retry", "rollback", "specChange"
]


class Metadata(Model):
    name: str = "scenario"
    description: str | None = None


class StableRef(Model):
    """The revision live when the simulation starts (deployed at time 0, live at once)."""

    revision: str
    #: pods ready at t=0 (default: all); the others become ready as the revision's readiness says
    ready: int | None = Field(None, ge=0)


class CanaryStart(Model):
    """A rollout already under way when the simulation starts: ``revision`` deployed over the stable one
    and already at plan step ``step``. Before t=0 the engine is driven through the deploy and ``promote``
    commands, with every pod ready at once, until the rollout reaches that step; the run starts from there."""

    revision: str
    step: int = Field(0, ge=0)


class Traffic(Model):
    #: requests per second reaching the router
    rps: float = Field(100.0, ge=0.0, le=10_000_000, allow_inf_nan=False)
    #: share of requests (0..1) carrying the header of the rollout's header routes
    header_share: float = Field(0.0, ge=0.0, le=1.0)


class Action(Model):
    """A scripted action at a simulated time: deploy a revision, or a rollout action (a command)."""

    at: Duration
    action: ActionName
    #: deploy: the revision to deploy; rollback: the revision to roll back to (default: previous successful)
    revision: str | None = None
    #: specChange: the RolloutSpec (or Argo Rollout) of the specs that becomes the rollout's spec
    rollout: str | None = None
    #: specChange: the new replica count (default: the new spec's, or the scenario's)
    replicas: int | None = Field(None, ge=1)


class RecordingRef(Model):
    """Recorded provider answers that replace the signals of the metrics they hold (docs/simulator.md)."""

    #: the recording (JSON lines, written by ``ebbtide record`` or a RecordingProvider), relative to the
    #: scenario file
    file: str
    #: use only this metric of the recording (default: every metric it holds)
    metric: str | None = None
    #: the run's t=0 reads the recording this long after its start
    offset: Duration = Field(0.0, ge=0.0)


class ScenarioSpec(Model):
    #: rollout spec files (Ocean CD or Argo Rollouts YAML), relative to the scenario file; the other documents
    #: of the scenario file itself are specs too
    specs: list[str] = Field(default_factory=list)
    #: which rollout to simulate when the specs define several
    rollout: str | None = None
    #: replica count of the workload (default: the spec's)
    replicas: int | None = Field(None, ge=1, le=MAX_REPLICAS)
    #: the revision live at t=0; none: nothing is deployed when the run starts
    stable: StableRef | None = None
    #: a rollout already under way at t=0 (needs ``stable``)
    canary: CanaryStart | None = None
    revisions: dict[str, RevisionBehaviour]
    #: how metrics of the verification templates map to revision signals
    metrics: list[MetricMapping] = Field(default_factory=list)
    #: recorded provider answers: the metrics they hold replay them instead of the revisions' signals
    recordings: list[RecordingRef] = Field(default_factory=list)
    #: who answers the external verifications (Ocean CD v1), when and how: late, never or wrong rehearse
    #: the fallback
    external_verifiers: list[ExternalVerifier] = Field(default_factory=list)
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
    #: the plans of the specChange actions, by action index
    _spec_plans: dict[int, Plan] = PrivateAttr(default_factory=dict)
    _file: str = PrivateAttr(default="<scenario>")
    _document: int = PrivateAttr(default=0)
    _repair: Repair | None = PrivateAttr(default=None)
    #: the loaded recordings of ``spec.recordings``, in order
    _recordings: tuple[Recording, ...] = PrivateAttr(default=())

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

    @property
    def spec_plans(self) -> dict[int, Plan]:
        """The compiled plan of every ``specChange`` action, by its index in ``spec.actions``."""
        return self._spec_plans

    def bind(
        self,
        plan: Plan,
        file: str = "<scenario>",
        document: int = 1,
        spec_plans: dict[int, Plan] | None = None,
    ) -> Scenario:
        """Attach the compiled plan (and the plans of the ``specChange`` actions, by action index), after
        checking the scenario against it (raises SpecError)."""
        spec_plans = dict(spec_plans or {})
        self._file = file
        problems = self.load_recordings(Path(file).parent if file != "<scenario>" else Path(), document)
        problems += check(self, plan, file, document, spec_plans.values())
        for i, action in enumerate(self.spec.actions):
            if action.action == "specChange" and i not in spec_plans:
                problems.append(
                    Problem(
                        file,
                        document,
                        "Scenario",
                        self.metadata.name,
                        f"spec.actions[{i}]",
                        "specChange needs its plan: pass it in spec_plans",
                    )
                )
        if problems:
            raise SpecError(problems)
        self._plan = plan
        self._spec_plans = spec_plans
        self._file = file
        self._document = document
        if self.spec.canary is not None:
            why = check_start(self.prepare())
            if why is not None:
                self._plan = None
                raise SpecError(
                    [Problem(file, document, "Scenario", self.metadata.name, "spec.canary.step", why)]
                )
        return self

    @property
    def recordings(self) -> tuple[Recording, ...]:
        """The loaded recordings of ``spec.recordings`` (see :meth:`load_recordings`)."""
        return self._recordings

    def load_recordings(self, base: Path, document: int = 1) -> list[Problem]:
        """Read the files of ``spec.recordings`` (paths relative to ``base``); the problems found."""
        loaded: list[Recording] = []
        problems: list[Problem] = []
        for i, ref in enumerate(self.spec.recordings):
            path = Path(ref.file) if Path(ref.file).is_absolute() else base / ref.file
            where = f"spec.recordings[{i}]"
            try:
                recording = load_recording(path)
            except RecordingError as exc:
                problems += [
                    _file_problem(
                        self._file, document, f"{where}.file", f"{ref.file}: {w + ': ' if w else ''}{r}"
                    )
                    for w, r in exc.problems
                ]
                continue
            if ref.metric is not None and ref.metric not in recording.metrics():
                problems.append(
                    _file_problem(
                        self._file,
                        document,
                        f"{where}.metric",
                        f"{ref.file} holds no metric {ref.metric!r} "
                        f"(it holds: {', '.join(recording.metrics())})",
                    )
                )
                continue
            loaded.append(recording.only(ref.metric, ref.offset))
        self._recordings = tuple(loaded)
        return problems

    def recorded_metrics(self) -> set[tuple[str, str]]:
        """(metric, role) of every track of the loaded recordings."""
        return {key for r in self._recordings for key in r.tracks}

    def prepare(self) -> Prepared:
        """What every run of the scenario needs, built once (see :mod:`ebbtide.sim.loop`)."""
        spec = self.spec
        return prepare(
            self.plan,
            self.cluster_config(),
            spec.stable.revision if spec.stable is not None else None,
            [(a.at, a.action, a.revision) for a in spec.actions],
            spec.duration,
            stable_ready=spec.stable.ready if spec.stable is not None else None,
            canary=(spec.canary.revision, spec.canary.step) if spec.canary is not None else None,
            spec_plans=self.spec_plans,
        )

    def cluster_config(self) -> ClusterConfig:
        return ClusterConfig(
            revisions=self.spec.revisions,
            metrics=tuple(self.spec.metrics),
            external=tuple(self.spec.external_verifiers),
            rps=self.spec.traffic.rps,
            header_share=self.spec.traffic.header_share,
            recordings=self._recordings,
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


Bad = Callable[[str, str], None]


def check(
    scenario: Scenario, plan: Plan, file: str, document: int, spec_plans: Iterable[Plan] = ()
) -> list[Problem]:
    """Every semantic problem of a scenario against the plan it simulates (and the plans its
    ``specChange`` actions switch to)."""
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

    if spec.duration <= 0:
        bad("spec.duration", "the duration must be positive")
    deployed = _check_start(spec, plan, bad)
    _check_actions(spec, deployed, bad)
    recorded = scenario.recorded_metrics()
    for p in (plan, *spec_plans):
        _check_signals(spec, p, deployed, bad, recorded)
    _check_verifiers(spec, (plan, *spec_plans), bad)
    return problems


def _undeclared(revision: str) -> str:
    return f"revision {revision!r} is not declared in spec.revisions"


def _check_start(spec: ScenarioSpec, plan: Plan, bad: Bad) -> list[str]:
    """Problems of the start state; returns the revisions deployed when the run starts."""
    deployed: list[str] = []
    if spec.stable is not None:
        deployed.append(spec.stable.revision)
        if spec.stable.revision not in spec.revisions:
            bad("spec.stable.revision", _undeclared(spec.stable.revision))
        if spec.stable.ready is not None and spec.stable.ready > plan.replicas:
            bad("spec.stable.ready", f"{spec.stable.ready} ready pods, but the rollout has {plan.replicas}")
    canary = spec.canary
    if canary is not None:
        deployed.append(canary.revision)
        if spec.stable is None:
            bad("spec.canary", "a rollout under way needs the stable revision it started from (spec.stable)")
        elif canary.revision == spec.stable.revision:
            bad("spec.canary.revision", "the canary must be another revision than the stable one")
        if canary.revision not in spec.revisions:
            bad("spec.canary.revision", _undeclared(canary.revision))
        if canary.step >= len(plan.steps):
            last = len(plan.steps) - 1
            bad("spec.canary.step", f"step {canary.step} does not exist: the plan has steps 0..{last}")
    return deployed


def _check_actions(spec: ScenarioSpec, deployed: list[str], bad: Bad) -> None:
    """Problems of the scripted actions, in time order; adds the revisions they deploy to ``deployed``."""
    rollout_started = spec.canary is not None
    for i in sorted(range(len(spec.actions)), key=lambda i: spec.actions[i].at):
        action = spec.actions[i]
        where = f"spec.actions[{i}]"
        name = action.action
        if action.at > spec.duration:
            bad(f"{where}.at", f"at {action.at:g}s is after the end of the run (duration {spec.duration:g}s)")
        if name != "specChange" and (action.rollout is not None or action.replicas is not None):
            field = "rollout" if action.rollout is not None else "replicas"
            bad(f"{where}.{field}", f"{name} takes no {field} (only specChange does)")
        if name == "specChange":
            if action.revision is not None:
                bad(
                    f"{where}.revision", "specChange takes no revision: it changes the spec, not the revision"
                )
            if action.rollout is None and action.replicas is None:
                bad(f"{where}.action", "specChange needs the new rollout spec (rollout) or replicas")
        elif name == "deploy":
            if action.revision is None:
                bad(f"{where}.revision", "deploy needs the revision to deploy")
                continue
            if action.revision not in spec.revisions:
                bad(f"{where}.revision", _undeclared(action.revision))
            deployed.append(action.revision)
            rollout_started = True
        elif name == "rollback" and action.revision is not None:
            if action.revision not in spec.revisions:
                bad(f"{where}.revision", _undeclared(action.revision))
            elif action.revision not in deployed:
                bad(
                    f"{where}.revision",
                    f"rollback to {action.revision!r}, which is not deployed before t={action.at:g}s",
                )
        else:
            if action.revision is not None and name != "rollback":
                bad(f"{where}.revision", f"{name} takes no revision (only deploy and rollback do)")
            if not rollout_started:
                live = (
                    f"only the stable revision {spec.stable.revision!r} is live"
                    if spec.stable is not None
                    else "nothing is deployed"
                )
                bad(
                    f"{where}.action",
                    f"{name} at t={action.at:g}s acts on nothing: no revision is deployed before it ({live})",
                )


def _check_signals(
    spec: ScenarioSpec,
    plan: Plan,
    deployed: list[str],
    bad: Bad,
    recorded: set[tuple[str, str]] | None = None,
) -> None:
    """Every metric the plan measures maps to a signal that every deployed revision (and attempt) has, or
    is answered by a recording."""
    for tname in used_templates(plan):
        template = plan.templates.get(tname)
        if template is None:
            continue
        for metric in template.metrics:
            if "external" in metric.provider:
                if find_verifier(tuple(spec.external_verifiers), metric.name) is None:
                    bad(
                        "spec.externalVerifiers",
                        f"metric {metric.name!r} of template {tname!r} is an external verification: add "
                        f"{{metric: {metric.name}, answer: correct, after: 1m}} to spec.externalVerifiers "
                        "(answer: correct, wrong, passed, failed or never)",
                    )
                continue
            mapping = find_mapping(tuple(spec.metrics), metric.name, metric.provider)
            if (metric.name, mapping.of if mapping else "canary") in (recorded or ()):
                continue
            if mapping is None:
                bad(
                    "spec.metrics",
                    f"metric {metric.name!r} of template {tname!r} maps to no signal: add "
                    f"{{metric: {metric.name}, signal: ...}} (or a query substring) to spec.metrics",
                )
                continue
            for rev in dict.fromkeys(deployed):
                behaviour = spec.revisions.get(rev)
                if behaviour is None:
                    continue
                variants = [("signals", behaviour.signals)] + [
                    (f"attempts[{i}].signals", a.signals)
                    for i, a in enumerate(behaviour.attempts)
                    if a.signals is not None
                ]
                for where, signals in variants:
                    if mapping.signal not in signals:
                        bad(
                            f"spec.revisions.{rev}.{where}",
                            f"revision {rev!r} has no signal {mapping.signal!r} (measured by metric "
                            f"{metric.name!r} of template {tname!r})",
                        )


def _check_verifiers(spec: ScenarioSpec, plans: Iterable[Plan], bad: Bad) -> None:
    """Every verifier naming a metric names an external metric of a template the plans use."""
    external = {
        m.name
        for plan in plans
        for tname in used_templates(plan)
        if tname in plan.templates
        for m in plan.templates[tname].metrics
        if "external" in m.provider
    }
    for i, verifier in enumerate(spec.external_verifiers):
        if verifier.metric is not None and verifier.metric not in external:
            known = f" (external metrics: {', '.join(sorted(external))})" if external else ""
            bad(
                f"spec.externalVerifiers[{i}].metric",
                f"{verifier.metric!r} is not an external verification metric of the rollout{known}",
            )


def compile_spec_changes(
    scenario: Scenario, specset: SpecSet, plan: Plan
) -> tuple[dict[int, Plan], list[Problem]]:
    """The plan of every ``specChange`` action: its rollout (default: the simulated one) and replicas
    (default: the scenario's, else the new spec's)."""
    plans: dict[int, Plan] = {}
    problems: list[Problem] = []
    for i, action in enumerate(scenario.spec.actions):
        if action.action != "specChange":
            continue
        rollout = action.rollout if action.rollout is not None else plan.name
        replicas = action.replicas if action.replicas is not None else scenario.spec.replicas
        try:
            plans[i] = compile_plan(specset, rollout=rollout, replicas=replicas)
        except SpecError as exc:
            problems += [
                Problem(
                    file=scenario.file,
                    document=scenario._document,
                    kind="Scenario",
                    name=scenario.metadata.name,
                    field=f"spec.actions[{i}].rollout",
                    reason=(f"{p.name!r}: " if p.name else "") + p.reason,
                )
                for p in exc.problems
            ]
    return plans, problems


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

    if scenario is not None:
        scenario._file = file
        problems.extend(scenario.load_recordings(path.parent, doc.index))
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
    spec_plans: dict[int, Plan] = {}
    if documents:
        try:
            specset = SpecSet.from_documents(documents, ignore_kinds={"Scenario"})
            if scenario is not None:
                plan = compile_plan(specset, rollout=scenario.spec.rollout, replicas=scenario.spec.replicas)
                scenario._file, scenario._document = file, doc.index
                spec_plans, changes = compile_spec_changes(scenario, specset, plan)
                problems.extend(changes)
        except SpecError as exc:
            problems.extend(exc.problems)
    if scenario is not None and plan is not None:
        cross = check(scenario, plan, file, doc.index, spec_plans.values())
        if scenario._repair is not None:  # paths in a repaired copy: map them back to the file's
            seen = {p.field for p in problems}
            mapped = [dataclasses.replace(p, field=scenario._repair.original_path(p.field)) for p in cross]
            cross = [p for p in mapped if p.field not in seen]
        problems.extend(cross)
    if problems or scenario is None or plan is None:
        raise SpecError(_dedupe(problems))
    scenario._plan = plan
    scenario._spec_plans = spec_plans
    scenario._file = file
    scenario._document = doc.index
    if scenario.spec.canary is not None:
        why = check_start(scenario.prepare())
        if why is not None:
            raise SpecError([_file_problem(file, doc.index, "spec.canary.step", why)])
    return scenario
