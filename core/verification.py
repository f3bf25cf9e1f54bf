"""Verification verdicts: Argo AnalysisRun rules, as pure functions over counters.

Rules (which Ocean CD inherits from Argo Rollouts):

- each measurement is evaluated against its conditions (Argo's rules): ``failureCondition`` true: failed;
  else ``successCondition`` true: successful; with only ``successCondition``, false means failed; with only
  ``failureCondition``, false means successful; with both and neither true: inconclusive; with neither,
  any value is successful. A measurement with no data (``None``) is inconclusive; a provider error, or a
  condition that cannot be evaluated on the value, is an error;
- a limit trips when its count is *strictly greater* than it: Failed when ``failed > failureLimit``,
  Inconclusive when ``inconclusive > inconclusiveLimit``, Error when
  ``consecutiveErrors > consecutiveErrorLimit``;
- a metric with neither ``count`` nor ``interval`` takes one measurement; with ``interval`` only it
  measures until its phase ends (``count: 0`` means "not set", as Argo's effective count); errors do
  not count towards ``count`` (a metric never succeeds on errors alone) and are retried after
  ``interval`` (or 10 s);
- the run's verdict is the worst metric (Successful < Running < Inconclusive < Error < Failed); an
  Inconclusive, Error or Failed metric ends the run at once (its siblings stop, as Argo's terminating
  run); dry-run metrics (the metric's own ``dryRun`` or the run's dry-run list) are measured to
  completion like the others but their results never change the verdict. The verdict never depends on
  the order of the metrics.
"""

from __future__ import annotations

from ebbtide.core.events import MeasuredValue, Measurement
from ebbtide.core.expr import Condition, EvaluationError, compile_condition
from ebbtide.core.plan import MetricPlan, Plan, TemplatePlan
from ebbtide.core.state import MetricStatus, VerdictPhase, VerificationRun, builder, replacer

#: the order a verdict takes the worst of
SEVERITY: dict[VerdictPhase, int] = {
    "Successful": 0,
    "Pending": 1,
    "Running": 1,
    "Inconclusive": 2,
    "Error": 3,
    "Failed": 4,
}
TERMINAL: frozenset[VerdictPhase] = frozenset({"Successful", "Inconclusive", "Error", "Failed"})
#: the verdicts that end a run at once, whatever its other metrics are doing
_BAD: frozenset[VerdictPhase] = frozenset({"Inconclusive", "Error", "Failed"})
#: Argo's DefaultErrorRetryInterval: an errored measurement of a metric without interval is retried after it
ERROR_RETRY_INTERVAL = 10.0
#: a measurement that has not come back after this long counts as an error and is asked again
MEASUREMENT_TIMEOUT = 60.0
#: the value an external verification's ``fallback: fail`` records when no answer came in time (its
#: conditions fail every value but "passed"; ``fallback: continue`` records "passed")
NO_ANSWER = "no answer in time (fallback: fail)"


def in_flight_timeout(metric: MetricPlan) -> float:
    """How long a measurement of ``metric`` may stay unanswered: its own ``timeout`` (an external
    verification's), else :data:`MEASUREMENT_TIMEOUT` or its interval if longer."""
    return _rules(metric).timeout


def expired(template: TemplatePlan | None, run_id: str, metric: str) -> Measurement:
    """The result a measurement gets when its timeout passed unanswered: an error, or the metric's
    fallback (``on_timeout`` failed / successful) as the answer it stands for."""
    on_timeout = "error"
    for mp in template.metrics if template is not None else ():
        if mp.name == metric:
            on_timeout = mp.on_timeout
    if on_timeout == "error":
        return Measurement(verification=run_id, metric=metric, error="measurement timed out")
    value = NO_ANSWER if on_timeout == "failed" else "passed"
    return Measurement(verification=run_id, metric=metric, value=value)


#: a metric's status after a result: every field but its name, positionally (the hot path's copy)
_counted = replacer(
    MetricStatus,
    "phase",
    "count",
    "successful",
    "failed",
    "inconclusive",
    "error",
    "consecutive_error",
    "last",
    "next_at",
    "in_flight",
)


def effective_count(metric: MetricPlan) -> int | None:
    """How many measurements a metric takes; None: until its phase ends.

    ``count`` None or 0 means "not set" (Argo's effective count): one measurement without an interval,
    measurements until the phase ends with one.
    """
    if metric.count:
        return metric.count
    if metric.interval is None:
        return 1
    return None


def _short(value: MeasuredValue) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def classify(metric: MetricPlan, value: MeasuredValue) -> tuple[str, str]:
    """Evaluate one measured value: ("successful" | "failed" | "inconclusive" | "error", text)."""
    return _rules(metric).classify(value)


def metric_phase(metric: MetricPlan, st: MetricStatus) -> VerdictPhase:
    return _phase(metric, st.count, st.failed, st.inconclusive, st.consecutive_error)


def _phase(
    metric: MetricPlan, count: int, failed: int, inconclusive: int, consecutive_error: int
) -> VerdictPhase:
    if failed > metric.failure_limit:
        return "Failed"
    if consecutive_error > metric.consecutive_error_limit:
        return "Error"
    if inconclusive > metric.inconclusive_limit:
        return "Inconclusive"
    want = effective_count(metric)
    if want is not None and count >= want:
        return "Successful"
    return "Running"


def record(
    metric: MetricPlan, st: MetricStatus, value: MeasuredValue, error: str | None, now: float
) -> MetricStatus:
    """Fold one measurement result into a metric's counters and schedule the next one."""
    rules = _RULES.get(id(metric))
    if rules is None or rules.metric is not metric:  # (_rules, inline: every result comes this way)
        rules = _rules(metric)
    count, successful, failed = st.count, st.successful, st.failed
    inconclusive, errors, consecutive = st.inconclusive, st.error, st.consecutive_error
    if error is not None:
        errors += 1
        consecutive += 1
        last = f"error: {error}"[:60]
    else:
        outcome, last = rules.classify(value)
        if outcome == "error":
            errors += 1
            consecutive += 1
        else:
            consecutive = 0
            count += 1
            if outcome == "successful":
                successful += 1
            elif outcome == "failed":
                failed += 1
            else:
                inconclusive += 1
    phase = rules.phase(count, failed, inconclusive, consecutive)
    next_at: float | None = None
    if phase == "Running":
        if error is not None or consecutive > st.consecutive_error:
            next_at = now + rules.retry_interval
        else:
            next_at = now + rules.interval
    new: MetricStatus = _counted(
        st, phase, count, successful, failed, inconclusive, errors, consecutive, last, next_at, False
    )
    return new


class _Rules:
    """A metric's rules as :func:`record` reads them on every result: its conditions compiled and its
    limits as plain slots. A MetricPlan is a pydantic model: each attribute read costs a generic lookup,
    and a result read a dozen of them (docs/performance.md, "Short paths"). Built once per MetricPlan
    object (:func:`_rules`); the outcome is the one the plan's fields give, read directly."""

    __slots__ = (
        "consecutive_error_limit",
        "failure",
        "failure_limit",
        "failure_source",
        "inconclusive_limit",
        "interval",
        "metric",
        "retry_interval",
        "success",
        "success_source",
        "timeout",
        "want",
    )

    def __init__(self, metric: MetricPlan) -> None:
        self.metric = metric
        self.failure_limit = metric.failure_limit
        self.consecutive_error_limit = metric.consecutive_error_limit
        self.inconclusive_limit = metric.inconclusive_limit
        self.want = effective_count(metric)
        self.interval = metric.interval or 0.0
        self.retry_interval = metric.interval if metric.interval is not None else ERROR_RETRY_INTERVAL
        self.timeout = (
            metric.timeout if metric.timeout is not None else max(MEASUREMENT_TIMEOUT, self.interval)
        )
        self.success_source = metric.success_condition
        self.failure_source = metric.failure_condition
        # a condition that does not compile is an error on every value: classify() meets it each time
        self.success: Condition | None = None
        self.failure: Condition | None = None
        try:
            if metric.success_condition is not None:
                self.success = compile_condition(metric.success_condition)
            if metric.failure_condition is not None:
                self.failure = compile_condition(metric.failure_condition)
        except EvaluationError:
            self.success = self.failure = None

    def classify(self, value: MeasuredValue) -> tuple[str, str]:
        """:func:`classify` of the metric."""
        # an empty vector is data (`len(result) == 0` may be exactly what the user tests); None is none
        if value is None:
            return "inconclusive", "no data"
        success: bool | None = None
        failure: bool | None = None
        try:  # both conditions are evaluated: either one that cannot be evaluated makes an error (as Argo)
            if self.success_source is not None:
                success = (self.success or compile_condition(self.success_source)).evaluate(value)
            if self.failure_source is not None:
                failure = (self.failure or compile_condition(self.failure_source)).evaluate(value)
        except EvaluationError as exc:
            return "error", f"cannot evaluate condition on {_short(value)}: {exc}"
        text = _short(value)
        if failure:
            return "failed", text  # the failure condition wins when true
        if success or success is None:
            return "successful", text  # success true; or no success condition (failure false, or none)
        if failure is None:
            return "failed", text  # only a success condition, and it is false
        return "inconclusive", text  # both conditions given and neither is true

    def phase(self, count: int, failed: int, inconclusive: int, consecutive_error: int) -> VerdictPhase:
        """:func:`_phase` of the metric."""
        if failed > self.failure_limit:
            return "Failed"
        if consecutive_error > self.consecutive_error_limit:
            return "Error"
        if inconclusive > self.inconclusive_limit:
            return "Inconclusive"
        want = self.want
        if want is not None and count >= want:
            return "Successful"
        return "Running"


#: MetricPlan object id -> its rules (the entry holds the plan, so its id is not reused while it is here)
_RULES: dict[int, _Rules] = {}
_MAX_RULES = 4096


def _rules(metric: MetricPlan) -> _Rules:
    rules = _RULES.get(id(metric))
    if rules is None or rules.metric is not metric:
        if len(_RULES) >= _MAX_RULES:
            _RULES.clear()  # plans come and go with spec changes: keep the ones in use, rebuilt on demand
        rules = _RULES[id(metric)] = _Rules(metric)
    return rules


#: a run and its metrics' statuses as they start, built positionally (see :func:`ebbtide.core.state.builder`)
_new_status = builder(MetricStatus, "name", "phase", "next_at")
_new_run = builder(VerificationRun, "id", "template", "background", "started_at", "metrics", "dry_run")


def start_run(
    run_id: str,
    template: TemplatePlan,
    now: float,
    background: bool = False,
    dry_run: tuple[str, ...] = (),
) -> VerificationRun:
    """A new run of a template; ``dry_run`` names metrics this run measures in dry-run mode (Argo's
    step-level ``analysis.dryRun``) besides those whose own ``dryRun`` is set."""
    # lists, not generators (a list comprehension runs without resuming a generator per item); no dry-run
    # names (the common case) builds no tuple at all: the same values either way
    metrics = tuple([_new_status(m.name, "Running", now + m.initial_delay) for m in template.metrics])
    names = tuple([m.name for m in template.metrics if m.name in dry_run]) if dry_run else ()
    run: VerificationRun = _new_run(run_id, template.name, background, now, metrics, names)
    return run


def run_verdict(template: TemplatePlan, run: VerificationRun) -> tuple[VerdictPhase, str | None]:
    """The verdict of a run from its metrics: worst non-dry-run metric, and a message when it is bad.

    Metrics that measure until their phase ends (interval, no count) do not hold a phase verification
    back once they have a successful measurement (a dry-run one: any measurement); they can still fail
    it while it runs.
    """
    return verdict(template, run.metrics, run.background, run.dry_run)


def verdict(
    template: TemplatePlan,
    metrics: tuple[MetricStatus, ...],
    background: bool,
    dry_run: tuple[str, ...] = (),
) -> tuple[VerdictPhase, str | None]:
    """:func:`run_verdict` of a run that would have these metrics (no run needs to be built to ask).

    A metric that ended Inconclusive, Error or Failed ends the run at once: the worst of them is the
    verdict, whatever its siblings are doing (Argo's terminating AnalysisRun). Among equally bad metrics
    the message names the first by name, so that the order of metrics in the template never matters.
    Dry-run metrics are waited for like the others (Argo: they run to completion, so that they are
    measured), but their results never count and never end the run.
    """
    worst: tuple[int, str] | None = None  # (-severity, name): the smallest is the deciding metric
    decider: tuple[MetricPlan, MetricStatus] | None = None
    pending = False
    plans = template.metrics
    if len(plans) != len(metrics):  # (zip's strict check, without its keyword: ~1,500 instructions)
        raise ValueError(f"{len(metrics)} metric statuses for the {len(plans)} metrics of {template.name!r}")
    for i, mp in enumerate(plans):
        st = metrics[i]
        dry = mp.dry_run or mp.name in dry_run
        phase = st.phase
        if phase in _BAD:
            key = (-SEVERITY[phase], mp.name)
            if not dry and (worst is None or key < worst):
                worst, decider = key, (mp, st)
        elif phase != "Successful":
            if effective_count(mp) is None and not background and (st.count if dry else st.successful) > 0:
                continue
            pending = True
    if decider is not None:
        return decider[1].phase, _message(*decider)
    if pending:
        return "Running", None
    return "Successful", None


def _message(mp: MetricPlan, st: MetricStatus) -> str:
    if st.phase == "Failed":
        return (
            f"metric {mp.name!r} failed: {st.failed} failed measurement(s) > failureLimit "
            f"{mp.failure_limit} (last: {st.last})"
        )
    if st.phase == "Error":
        return (
            f"metric {mp.name!r} errored: {st.consecutive_error} consecutive error(s) > "
            f"consecutiveErrorLimit {mp.consecutive_error_limit} (last: {st.last})"
        )
    return (
        f"metric {mp.name!r} inconclusive: {st.inconclusive} inconclusive measurement(s) > "
        f"inconclusiveLimit {mp.inconclusive_limit}"
    )


def plan_warnings(plan: Plan) -> list[str]:
    """What a plan does that an Argo Rollouts or Ocean CD user may not expect; not errors.

    A metric with an interval and no count in a *step* verification: Argo and Ocean CD keep measuring
    it and the step passes only when something else ends it (a person promoting, a sibling failing);
    ebbtide passes the step once it has measured successfully and the other metrics are done (see
    docs/semantics.md, deliberate differences).
    """
    out: list[str] = []
    for i, step in enumerate(plan.steps):
        if step.kind != "verification":
            continue
        for name in step.templates:
            template = plan.templates.get(name)
            for mp in template.metrics if template is not None else ():
                if effective_count(mp) is not None or mp.dry_run or mp.name in step.dry_run:
                    continue
                out.append(
                    f"step {i}: metric {mp.name!r} of VerificationTemplate {name!r} has an interval and no "
                    "count: ebbtide passes the step once it measured successfully and the other metrics "
                    "are done, where Argo Rollouts and Ocean CD keep measuring it until something else "
                    "ends the step; set count to say how many measurements the step takes"
                )
    return out
