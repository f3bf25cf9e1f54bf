"""The ``ebbtide`` command: simulate, compare, explain, backtest, validate, plan, diagram.

Data goes to stdout (or ``--out``), progress and messages to stderr. Every bad input (a spec or scenario
problem, a missing file, a bad option) prints a clear message naming the file, document, field and reason and
exits with code 2. The work is done by :mod:`ebbtide.sim` and :mod:`ebbtide.core`; this module is thin.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ebbtide.adapters.specfiles import load_spec_files, read_documents
from ebbtide.core.machine import mermaid
from ebbtide.core.manifests import defined_names, describe, set_hints
from ebbtide.core.plan import MAX_REPLICAS, Plan
from ebbtide.core.spec import Document, Problem, SpecError, SpecSet, SpecWarning, compile_plan
from ebbtide.core.verification import plan_warnings
from ebbtide.sim import backtest as bt
from ebbtide.sim.outcome import SCHEMA_VERSION, Aggregator, Outcome, RunResult, Summary, dumps
from ebbtide.sim.report import (
    RUN_HEADERS,
    explain_lines,
    html_report,
    plan_timeline,
    plot_outcomes,
    plot_run,
    run_row,
    seconds,
    summary_rows,
)
from ebbtide.sim.runner import load_scenario, replay_run, simulate
from ebbtide.sim.scenario import MAX_RUNS, Scenario

from .common import (
    EXIT_BAD_INPUT,
    BadInput,
    SimFormat,
    TableOrJson,
    TextOrJson,
    cap_workers,
    check_outputs,
    check_plotting,
    check_suffix,
    err_console,
    guard,
    out_console,
    output,
    parse_pairs,
    print_warnings,
    warn_run_time,
    write_atomic,
)
from .controller import controller_cmd
from .crd import crd_cmd
from .demo import demo_cmd
from .executors import ExecutorName, ExecutorOption, SchedulerOption, check_executor, executor_for
from .record import EndOption, LastOption, fetch, record_cmd, time_range
from .record import query_step as query_step_of
from .rollout import rollout_app
from .verify import verify_cmd

app = typer.Typer(
    name="ebbtide",
    help="Progressive delivery for Kubernetes: simulate, backtest and check rollouts and their rollbacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        try:
            version = importlib.metadata.version("ebbtide")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown (not installed)"
        sys.stdout.write(f"ebbtide {version}\n")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Progressive delivery for Kubernetes: simulate, backtest and check rollouts and their rollbacks."""


#: show one row per run when there are at most this many runs (``--per-run``: always)
RUN_TABLE_LIMIT = 20
#: off a terminal, report progress (a line on stderr every tenth of the runs) past this many runs
PROGRESS_THRESHOLD = 50

ExistingFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


class RunProgress:
    """Progress of many runs on stderr: a rich bar on a terminal; elsewhere (CI logs, pipes) past
    :data:`PROGRESS_THRESHOLD` runs, a plain line every tenth of the runs; otherwise nothing."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.bar: Progress | None = None
        self.lines = not sys.stderr.isatty() and total > PROGRESS_THRESHOLD
        self.every = max(1, total // 10)
        if sys.stderr.isatty():
            self.bar = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console(),
                transient=True,
            )

    def __enter__(self) -> RunProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def task(self, label: str, total: int) -> Callable[[], None]:
        """A task of ``total`` runs; returns the function to call after each run."""
        if self.bar is not None:
            bar = self.bar
            task_id = bar.add_task(label, total=total)
            return lambda: bar.advance(task_id)
        if not self.lines:
            return lambda: None
        done = 0

        def advance() -> None:
            nonlocal done
            done += 1
            self.done += 1
            if done == total or self.done % self.every == 0:
                sys.stderr.write(f"{label}: {done}/{total} runs\n")
                sys.stderr.flush()

        return advance


def _load_scenario(path: Path) -> Scenario:
    """A scenario, loaded; the warnings of its specs printed on stderr."""
    scenario = load_scenario(path)
    print_warnings(_scenario_warnings(path, scenario))
    return scenario


def _warning_key(w: SpecWarning) -> tuple[Path, int, str]:
    """The same warning, whichever path (given, or relative to a scenario) named its file."""
    return Path(w.file).resolve(), w.document, w.field


def _scenario_warnings(path: Path, scenario: Scenario) -> tuple[SpecWarning, ...]:
    """The warnings of the specs a loaded scenario holds or names (its Argo fields accepted and ignored)."""
    files = [path, *(Path(r) if Path(r).is_absolute() else path.parent / r for r in scenario.spec.specs)]
    try:
        docs = [d for d in read_documents(files) if d.kind != "Scenario"]
        return SpecSet.from_documents(docs).warnings
    except SpecError:  # not reached for a scenario that loaded
        return ()


# ----------------------------------------------------------------------------------------------------------
# simulate
# ----------------------------------------------------------------------------------------------------------
def _runs_table(results: list[RunResult]) -> Table:
    table = Table()
    for h in RUN_HEADERS:
        if h == "rollback reason":
            table.add_column(h, overflow="fold", min_width=40)
        else:
            table.add_column(h, justify="right" if h in ("run", "bad requests") else "left")
    for r in results:
        table.add_row(*run_row(r))
    return table


def _summary_table(summary: Summary) -> Table:
    table = Table()
    table.add_column("measure")
    table.add_column("value", overflow="fold")
    for k, v in summary_rows(summary):
        table.add_row(k, v)
    return table


def _run_dict(r: RunResult, timeline: bool) -> dict[str, Any]:
    d = r.to_dict()
    if not timeline:
        d["timeline"] = []
    return d


@app.command("simulate")
@guard
def simulate_cmd(
    scenario_file: ExistingFile,
    runs: Annotated[
        int | None,
        typer.Option("--runs", "-n", min=1, max=MAX_RUNS, help="number of runs (default: the scenario's)"),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", "-s", help="seed (default: the scenario's)")] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            help="processes running the runs: this one and W-1 workers (at most one per CPU)",
        ),
    ] = 1,
    executor: ExecutorOption = ExecutorName.processes,
    dask_scheduler: SchedulerOption = None,
    fmt: Annotated[SimFormat, typer.Option("--format", "-f", help="table, json or jsonl")] = SimFormat.table,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="write the data here instead of stdout")
    ] = None,
    timeline: Annotated[
        bool, typer.Option("--timeline", help="include each run's timeline in json/jsonl")
    ] = False,
    measurements: Annotated[
        bool,
        typer.Option(
            "--measurements",
            help="timelines with every measurement and verification verdict (implies --timeline)",
        ),
    ] = False,
    per_run: Annotated[
        bool,
        typer.Option(
            "--per-run",
            help=f"a row per run in the table and HTML report (default: <= {RUN_TABLE_LIMIT} runs)",
        ),
    ] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="write a PNG: one run's timeline, or distributions")
    ] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="write a self-contained HTML report")
    ] = None,
) -> None:
    """Run a scenario (one or many seeded runs) and report outcomes per run and in aggregate."""
    check_suffix(plot, (".png",), "--plot")
    check_suffix(html_file, (".html", ".htm"), "--html")
    check_outputs(("--out", out), ("--plot", plot), ("--html", html_file))
    check_plotting(plot, html_file)
    check_executor(executor, dask_scheduler)
    workers = cap_workers(workers)
    scenario = _load_scenario(scenario_file)
    n = runs if runs is not None else scenario.spec.runs
    s = seed if seed is not None else scenario.spec.seed
    timeline = timeline or measurements
    warn_run_time(n, workers, lambda: replay_run(scenario, s, 0))
    pictures = plot is not None or html_file is not None
    keep = timeline or (pictures and n == 1)
    rows = per_run or n <= RUN_TABLE_LIMIT
    name = scenario.metadata.name
    agg = Aggregator()
    few: list[RunResult] = []
    every: list[dict[str, Any]] = []
    outcomes: list[Outcome] = []

    def results() -> Iterator[RunResult]:
        with RunProgress(n) as progress, executor_for(executor, workers, dask_scheduler) as where:
            advance = progress.task(f"simulating {name}", n)
            for r in simulate(
                scenario,
                runs=n,
                seed=s,
                workers=workers,
                keep_timelines=keep,
                measurements=measurements,
                executor=where,
            ):
                agg.add(r)
                if pictures:
                    outcomes.append(r.outcome)
                if rows or (n == 1 and keep):
                    few.append(r)
                advance()
                yield r

    with output(out) as stream:
        if fmt is SimFormat.jsonl:
            for r in results():
                stream.write(dumps(_run_dict(r, timeline)) + "\n")
                stream.flush()
            summary = agg.summary()
            stream.write(dumps({"summary": summary.to_dict()}) + "\n")
        elif fmt is SimFormat.json:
            for r in results():
                every.append(_run_dict(r, timeline))
            summary = agg.summary()
            doc = {
                "schema": SCHEMA_VERSION,
                "scenario": name,
                "file": str(scenario_file),
                "seed": s,
                "runs": every,
                "summary": summary.to_dict(),
            }
            stream.write(dumps(doc, indent=2) + "\n")
        else:
            for _ in results():
                pass
            summary = agg.summary()
            console = out_console(stream)
            console.print(f"scenario {name} ({scenario_file}): {n} run(s), seed {s}", markup=False)
            if few:
                console.print("runs", markup=False)
                console.print(_runs_table(few))
            console.print("aggregate", markup=False)
            console.print(_summary_table(summary))
    if pictures:
        _pictures(scenario, s, summary, few if rows else [], outcomes, plot, html_file)


def _pictures(
    scenario: Scenario,
    seed: int,
    summary: Summary,
    few: list[RunResult],
    outcomes: list[Outcome],
    plot: Path | None,
    html_file: Path | None,
) -> None:
    name = scenario.metadata.name
    one = few[0] if len(outcomes) == 1 and few and few[0].timeline else None
    if one is None:
        one = replay_run(scenario, seed, 0)  # run 0 alone, with its timeline, for the picture of one run
    run_png = plot_run(one, title=f"{name}: run {one.index} ({one.outcome.result})")
    dist_png = plot_outcomes(outcomes, title=f"{name}: {len(outcomes)} runs") if len(outcomes) > 1 else None
    if plot is not None:
        write_atomic(plot, dist_png if dist_png is not None else run_png)
        err_console().print(f"wrote {plot}", markup=False)
    if html_file is not None:
        images = [(f"run {one.index}: weights, states and replicas", run_png)]
        if dist_png is not None:
            images.insert(0, ("distributions over the runs", dist_png))
        page = html_report(
            f"ebbtide simulation: {name}",
            summary,
            runs=few,
            images=images,
            trace=explain_lines(one),
        )
        write_atomic(html_file, page)
        err_console().print(f"wrote {html_file}", markup=False)


# ----------------------------------------------------------------------------------------------------------
# compare
# ----------------------------------------------------------------------------------------------------------
@app.command("compare")
@guard
def compare_cmd(
    scenario_files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    runs: Annotated[
        int | None,
        typer.Option(
            "--runs", "-n", min=1, max=MAX_RUNS, help="runs per scenario (default: the first scenario's)"
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", "-s", help="the seed of every scenario (default: the first's)")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="at most one per CPU")] = 1,
    executor: ExecutorOption = ExecutorName.processes,
    dask_scheduler: SchedulerOption = None,
    fmt: Annotated[TableOrJson, typer.Option("--format", "-f")] = TableOrJson.table,
    out: Annotated[Path | None, typer.Option("--out", "-o")] = None,
) -> None:
    """The same seeds through several scenarios, side by side (one column per scenario)."""
    if len(scenario_files) < 2:
        raise BadInput("compare needs at least two scenario files")
    check_outputs(("--out", out))
    check_executor(executor, dask_scheduler)
    workers = cap_workers(workers)
    scenarios: list[Scenario] = []
    problems: list[Problem] = []
    for f in scenario_files:
        try:
            scenarios.append(_load_scenario(f))
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    n = runs if runs is not None else scenarios[0].spec.runs
    s = seed if seed is not None else scenarios[0].spec.seed
    warn_run_time(n, workers, lambda: [replay_run(sc, s, 0) for sc in scenarios])
    labels = _labels(scenarios, scenario_files)
    summaries: list[Summary] = []
    with (
        RunProgress(n * len(scenarios)) as progress,
        executor_for(executor, workers, dask_scheduler) as where,
    ):
        for label, sc in zip(labels, scenarios, strict=True):
            agg = Aggregator()
            advance = progress.task(label, n)
            for r in simulate(sc, runs=n, seed=s, workers=workers, executor=where):
                agg.add(r)
                advance()
            summaries.append(agg.summary())
    with output(out) as stream:
        if fmt is TableOrJson.json:
            doc = {
                "schema": SCHEMA_VERSION,
                "runs": n,
                "seed": s,
                "scenarios": [
                    {"label": label, "file": str(f), "summary": summ.to_dict()}
                    for label, f, summ in zip(labels, scenario_files, summaries, strict=True)
                ],
            }
            stream.write(dumps(doc, indent=2) + "\n")
            return
        out_console(stream).print(f"{n} runs each, seed {s}", markup=False)
        table = Table()
        table.add_column("measure")
        for label in labels:
            table.add_column(label, overflow="fold")
        for key, values in _compare_rows(summaries):
            table.add_row(key, *values)
        out_console(stream).print(table)


def _labels(scenarios: list[Scenario], files: list[Path]) -> list[str]:
    names = [sc.metadata.name for sc in scenarios]
    return [name if names.count(name) == 1 else f"{name} ({f})" for name, f in zip(names, files, strict=True)]


def _compare_rows(summaries: list[Summary]) -> list[tuple[str, list[str]]]:
    rows: list[tuple[str, list[str]]] = []
    outcomes = [k for k in summaries[0].results if any(s.results.get(k) for s in summaries)]
    for k in outcomes:
        rows.append((f"outcome: {k}", [str(s.results.get(k, 0)) for s in summaries]))
    for label, attr in (
        ("time to detect", "time_to_detect"),
        ("time to roll back", "time_to_rollback"),
        ("time to live", "time_to_live"),
    ):
        for q in ("p50", "p95"):
            rows.append((f"{label} {q}", [seconds(getattr(s, attr)[q]) for s in summaries]))
    rows.append(("mean bad requests", [f"{s.mean_bad_requests:.1f}" for s in summaries]))
    rows.append(
        ("false rollbacks", [f"{s.false_rollbacks} ({s.false_rollback_rate:.1%})" for s in summaries])
    )
    rows.append(
        (
            "top rollback reason",
            [
                (next(iter(s.rollback_reasons)) + f" ({next(iter(s.rollback_reasons.values()))})")
                if s.rollback_reasons
                else "-"
                for s in summaries
            ],
        )
    )
    return rows


# ----------------------------------------------------------------------------------------------------------
# explain
# ----------------------------------------------------------------------------------------------------------
@app.command("explain")
@guard
def explain_cmd(
    scenario_file: ExistingFile,
    run: Annotated[int, typer.Option("--run", "-r", min=0, help="the run index to replay")],
    seed: Annotated[
        int | None, typer.Option("--seed", "-s", help="the batch seed (default: the scenario's)")
    ] = None,
    measurements: Annotated[
        bool, typer.Option("--measurements", help="also every measurement and verification verdict")
    ] = False,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f")] = TextOrJson.text,
) -> None:
    """Replay one run alone and print a step-by-step trace of it."""
    scenario = _load_scenario(scenario_file)
    s = seed if seed is not None else scenario.spec.seed
    result = replay_run(scenario, s, run, measurements=measurements)
    if fmt is TextOrJson.json:
        sys.stdout.write(dumps(result.to_dict(), indent=2) + "\n")
        return
    sys.stdout.write("\n".join(explain_lines(result)) + "\n")


# ----------------------------------------------------------------------------------------------------------
# backtest
# ----------------------------------------------------------------------------------------------------------
@app.command("backtest")
@guard
def backtest_cmd(
    template_file: ExistingFile,
    metrics_file: Annotated[
        Path | None,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV or Prometheus JSON (or --prometheus)"
        ),
    ] = None,
    prometheus: Annotated[
        str | None,
        typer.Option("--prometheus", help="query this Prometheus server for the template's own queries"),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option("--template", "-t", help="the VerificationTemplate (when the file has several)"),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            help="METRIC or METRIC=SERIES: metrics to backtest and their series (repeatable)",
        ),
    ] = None,
    arg: Annotated[
        list[str] | None, typer.Option("--arg", "-a", help="template arg NAME=VALUE (repeatable)")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="when the verification starts: +OFFSET (e.g. +20m), Unix time or ISO 8601 "
            "(--prometheus: the start of the range queried)",
        ),
    ] = None,
    end: EndOption = None,
    last: LastOption = None,
    query_step: Annotated[
        str | None,
        typer.Option(
            "--query-step", help="--prometheus: seconds between samples (default: the smallest interval)"
        ),
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", help="the phase ends this long after the start (e.g. 10m)")
    ] = None,
    background: Annotated[
        bool | None,
        typer.Option(
            "--background/--phase",
            help="run as a background or a phase verification (default: how the file's strategies use it)",
        ),
    ] = None,
    staleness: Annotated[
        str, typer.Option("--staleness", help="a sample older than this is no data (0: never)")
    ] = "5m",
    rolling: Annotated[
        bool, typer.Option("--rolling", help="slide the verification along the whole series")
    ] = False,
    step: Annotated[
        str | None,
        typer.Option("--step", help="--rolling: start a window this often (default: the smallest interval)"),
    ] = None,
    fmt: Annotated[TableOrJson, typer.Option("--format", "-f")] = TableOrJson.table,
    out: Annotated[Path | None, typer.Option("--out", "-o")] = None,
) -> None:
    """Replay recorded metric series (CSV, Prometheus JSON, or a live Prometheus) through a
    VerificationTemplate."""
    from ebbtide.core.duration import parse_duration

    def duration(option: str, text: str | None) -> float | None:
        if text is None:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise BadInput(f"{option} {text!r}: {exc}") from None

    check_outputs(("--out", out))
    args = parse_pairs(arg or [], "--arg")
    loaded = bt.load_template(template_file, template, args)
    print_warnings(loaded.warnings)
    if prometheus is not None:
        if metrics_file is not None:
            raise BadInput("give a METRICS_FILE or --prometheus URL, not both")
        first, last_t = time_range(start, end, last)
        step_q = query_step_of(query_step, loaded.plan, "--query-step")
        data = bt.series_from_ranges(fetch(prometheus, loaded.plan, first, last_t, step_q))
        source = prometheus
    elif metrics_file is None:
        raise BadInput(
            "give the recorded metrics: a METRICS_FILE (CSV or Prometheus JSON) or --prometheus URL"
        )
    else:
        if end is not None or last is not None or query_step is not None:
            raise BadInput("--end, --last and --query-step go with --prometheus")
        data = bt.load_series(metrics_file)
        source = str(metrics_file)
    mapping = bt.map_series(loaded.plan, data, metric or [], source)
    origin = min(s.times[0] for s in mapping.values())
    data_end = max(s.times[-1] for s in mapping.values())
    t0: float | None = None
    if prometheus is not None:
        origin = t0 = first
    else:
        try:
            t0 = bt.parse_start(start, origin) if start is not None else None
        except ValueError as exc:
            raise BadInput(f"--start {start!r}: {exc}") from None
    if t0 is not None and t0 > data_end:
        raise BadInput(
            f"--start {start!r} is after the last sample of the data ({bt.format_time(data_end, origin)})"
        )
    win = duration("--window", window)
    stale = duration("--staleness", staleness) or None
    is_bg = loaded.background if background is None else background
    header = (
        f"template {loaded.plan.name} ({template_file}) as a "
        f"{'background' if is_bg else 'phase'} verification; "
        + "; ".join(
            f"{m} <- {'Prometheus' if prometheus else 'series ' + s.name} ({len(s.times)} samples)"
            for m, s in mapping.items()
        )
    )
    with output(out) as stream:
        if rolling:
            step_s = duration("--step", step)
            if step_s is not None and step_s <= 0:
                raise BadInput("--step must be positive")
            report = bt.rolling(
                loaded.plan, mapping, step=step_s, window=win, start=t0, background=is_bg, staleness=stale
            )
            if fmt is TableOrJson.json:
                stream.write(json.dumps({"origin": origin, **report.to_dict()}, indent=2) + "\n")
                return
            _rolling_table(stream, header, report, origin)
            return
        result = bt.backtest(loaded.plan, mapping, t0, window=win, background=is_bg, staleness=stale)
        if fmt is TableOrJson.json:
            stream.write(json.dumps({"origin": origin, **result.to_dict()}, indent=2) + "\n")
            return
        _backtest_table(stream, header, result, origin)


def _backtest_table(stream: IO[str], header: str, result: bt.BacktestResult, origin: float) -> None:
    console = out_console(stream)
    console.print(header, markup=False)
    table = Table()
    for h in ("time", "metric", "#", "value", "sample at", "outcome", "metric phase"):
        table.add_column(h)
    for m in result.measurements:
        table.add_row(
            bt.format_time(m.t, origin),
            m.metric + (" (dry run)" if m.dry_run else ""),
            str(m.index),
            bt.format_value(m.value),
            "-" if m.sample_t is None else bt.format_time(m.sample_t, origin).split(" ")[0],
            m.outcome,
            m.phase,
        )
    console.print(table)
    for d in result.dry_run:
        console.print(
            f"dry run: metric {d['metric']!r} would have been {d['phase']} at "
            f"{bt.format_time(d['t'], origin)} ({d['limit']}); it does not change the verdict",
            markup=False,
        )
    console.print(f"verdict: {result.outcome.upper()} - {bt.describe(result)}", markup=False)
    if result.message:
        console.print(f"reason: {result.message}", markup=False)


def _rolling_table(stream: IO[str], header: str, report: bt.RollingReport, origin: float) -> None:
    console = out_console(stream)
    console.print(header, markup=False)
    console.print(
        f"rolling: a verification starting every {seconds(report.step)}"
        + (f", window {seconds(report.window)}" if report.window else ""),
        markup=False,
    )
    table = Table()
    for h in ("start", "outcome", "verdict at", "after", "metric", "#", "value", "limit"):
        table.add_column(h)
    for r in report.results:
        table.add_row(
            bt.format_time(r.start, origin),
            r.outcome,
            "-" if r.at is None else bt.format_time(r.at, origin).split(" ")[0],
            "-" if r.at is None else seconds(r.at - r.start),
            r.metric or "-",
            "-" if r.index is None else str(r.index),
            "-" if r.at is None else bt.format_value(r.value),
            r.limit or (r.stopped or "-"),
        )
    console.print(table)
    counts = ", ".join(f"{k} {v}" for k, v in report.counts().items() if v)
    console.print(f"{len(report.results)} windows: {counts}", markup=False)
    bad = [r for r in report.results if r.outcome in ("failed", "errored", "inconclusive")]
    if bad:
        console.print(
            f"first bad window starts at {bt.format_time(bad[0].start, origin)}: {bt.describe(bad[0])}",
            markup=False,
        )


# ----------------------------------------------------------------------------------------------------------
# validate, plan, diagram
# ----------------------------------------------------------------------------------------------------------
def _warn(where: str, plan: Plan) -> None:
    """Print what the plan does that Argo / Ocean CD users may not expect (not an error: exit code 0)."""
    for text in plan_warnings(plan):
        err_console().print(f"warning: {where}: {text}", markup=False, highlight=False, soft_wrap=True)


def _is_scenario(path: Path) -> bool:
    try:
        docs = read_documents([path])
    except SpecError:
        return False
    return any(d.kind == "Scenario" for d in docs)


@app.command("validate")
@guard
def validate_cmd(
    files: Annotated[list[Path], typer.Argument(help="spec and scenario files")],
    as_set: Annotated[
        bool,
        typer.Option("--set", help="validate the spec files as one set (references across files)"),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="also list skipped documents (kinds ebbtide does not own)"),
    ] = False,
    fmt: Annotated[
        TextOrJson, typer.Option("--format", "-f", help="text, or json: every file, problem and warning")
    ] = TextOrJson.text,
) -> None:
    """Load spec files and Scenario files; print OK per file, or every problem (exit code 2)."""
    problems: list[Problem] = []
    skipped: dict[str, list[str]] = {}
    warned: dict[str, list[SpecWarning]] = {}
    loaded: set[str] = set()  # files of the groups that loaded
    scenarios = [f for f in files if f.is_file() and _is_scenario(f)]
    specs = [f for f in files if f not in scenarios]
    found: dict[str, str] = {}
    printed: set[tuple[Path, int, str]] = set()  # a spec file given beside a scenario naming it: warn once
    groups = [specs] if as_set else [[f] for f in specs]
    for group in groups:
        if not group:
            continue
        try:
            specset = load_spec_files(group, ignore_kinds={"Scenario"})
            loaded.update(str(f) for f in group)
            found.update(describe(specset))
            for s in specset.skipped:
                skipped.setdefault(s.file, []).append(str(s))
            print_warnings(specset.warnings)
            printed.update(_warning_key(w) for w in specset.warnings)
            for w in specset.warnings:
                warned.setdefault(w.file, []).append(w)
            for name, doc in ((n, specset.origins[("RolloutSpec", n)]) for n in specset.rollout_specs):
                _warn(f"{doc.file}: RolloutSpec/{name}", compile_plan(specset, name))
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:  # a Strategy or template that another file (given, or beside a bad one) defines: name it
        problems = set_hints(problems, {str(f): defined_names(_documents(f)) for f in _near(specs, problems)})
    for f in scenarios:
        try:
            sc = load_scenario(f)
            found[str(f)] = (
                f"Scenario/{sc.metadata.name} (rollout {sc.plan.name}, {len(sc.plan.steps)} steps)"
            )
            _warn(str(f), sc.plan)
            scenario_warnings = [w for w in _scenario_warnings(f, sc) if _warning_key(w) not in printed]
            print_warnings(scenario_warnings)
            warned.setdefault(str(f), []).extend(scenario_warnings)
        except SpecError as exc:
            problems.extend(exc.problems)
    for f in specs:
        if str(f) in loaded and str(f) not in found and str(f) not in skipped:  # read, and nothing in it
            reason = "the file holds no YAML document: nothing to check"
            problems.append(Problem(str(f), 0, None, None, "", reason))
    bad_files = {p.file for p in problems}
    if fmt is TextOrJson.json:
        report = _validate_json(files, bad_files, found, skipped, warned, problems)
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        if problems:
            raise typer.Exit(EXIT_BAD_INPUT)
        return
    for f in files:
        if str(f) not in bad_files:
            sys.stdout.write(f"OK    {f}" + (f": {found[str(f)]}" if str(f) in found else "") + "\n")
            if verbose and str(f) in skipped:
                sys.stdout.write(f"      skipped (not ebbtide kinds): {', '.join(skipped[str(f)])}\n")
            for w in warned.get(str(f), []) if verbose else []:
                sys.stdout.write(f"      ignored with a warning: {w.kind}/{w.name}: {w.field}: {w.reason}\n")
    if problems:
        raise SpecError(problems)


def _validate_json(
    files: list[Path],
    bad_files: set[str],
    found: dict[str, str],
    skipped: dict[str, list[str]],
    warned: dict[str, list[SpecWarning]],
    problems: list[Problem],
) -> dict[str, Any]:
    """``validate --format json``: per file whether it loaded, what it holds, what was skipped, its
    warnings; then every problem."""
    out = []
    for f in map(str, files):
        ok = f not in bad_files
        out.append(
            {
                "file": f,
                "ok": ok,
                "read": found.get(f) if ok else None,
                "skipped": skipped.get(f, []) if ok else [],
                "warnings": [dataclasses.asdict(w) for w in warned.get(f, [])],
            }
        )
    return {"files": out, "problems": [dataclasses.asdict(p) for p in problems]}


def _near(given: list[Path], problems: list[Problem]) -> list[Path]:
    """The spec files given, then the YAML and JSON files beside the files that have problems."""
    out = list(given)
    for folder in sorted({Path(p.file).parent for p in problems}):
        for pattern in ("*.yaml", "*.yml", "*.json"):
            out += [f for f in sorted(folder.glob(pattern)) if f not in out]
    return out


def _documents(path: Path) -> list[Document]:
    """The documents of a spec file (none for a scenario file or a file that cannot be read)."""
    try:
        docs = read_documents([path])
    except SpecError:
        return []
    return [] if any(d.kind == "Scenario" for d in docs) else docs


@app.command("plan")
@guard
def plan_cmd(
    spec_files: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, readable=True, help="spec files (or one scenario)"),
    ],
    rollout: Annotated[
        str | None, typer.Option("--rollout", help="the RolloutSpec (when there are several)")
    ] = None,
    replicas: Annotated[
        int | None,
        typer.Option("--replicas", min=0, max=MAX_REPLICAS, help="replica count (default: the spec's)"),
    ] = None,
    fmt: Annotated[TableOrJson, typer.Option("--format", "-f")] = TableOrJson.table,
) -> None:
    """Print the phase timeline the compiled plan implies."""
    plan: Plan
    if len(spec_files) == 1 and _is_scenario(spec_files[0]):
        plan = _load_scenario(spec_files[0]).plan
        if (rollout is not None and rollout != plan.name) or replicas is not None:
            raise BadInput("--rollout and --replicas apply to spec files: the scenario fixes them")
    else:
        specset = load_spec_files(spec_files, ignore_kinds={"Scenario"})
        print_warnings(specset.warnings)
        if not specset.rollout_specs:
            where = ", ".join(str(f) for f in spec_files)
            raise SpecError([Problem(where, 0, None, None, "", "no RolloutSpec (or Argo Rollout) to plan")])
        try:
            plan = compile_plan(specset, rollout=rollout, replicas=replicas)
        except SpecError as exc:
            where = ", ".join(str(f) for f in spec_files)
            raise SpecError(
                [
                    Problem(where, 0, None, None, "--rollout", (f"{p.name!r}: " if p.name else "") + p.reason)
                    if p.file == "<specs>"
                    else p
                    for p in exc.problems
                ]
            ) from None
    _warn(", ".join(str(f) for f in spec_files), plan)
    rows = plan_timeline(plan)
    if fmt is TableOrJson.json:
        doc = {
            "rollout": plan.name,
            "strategy": plan.strategy,
            "replicas": plan.replicas,
            "failure_action": plan.failure_action,
            "rollback_mode": plan.rollback_mode,
            "progress_deadline": plan.progress_deadline,
            "traffic_router": plan.traffic_router,
            "max_surge": plan.max_surge,
            "max_unavailable": plan.max_unavailable,
            "background_verification": list(plan.background_templates),
            "background_starting_step": plan.background_starting_step,
            "steps": [r.to_dict() for r in rows],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    console = out_console()
    console.print(
        f"rollout {plan.name}: {plan.strategy}, {plan.replicas} replicas, on failure {plan.failure_action}"
        + (f" ({plan.rollback_mode})" if plan.failure_action == "rollback" else "")
        + f", progress deadline {seconds(plan.progress_deadline)}, maxSurge {plan.max_surge}, "
        f"maxUnavailable {plan.max_unavailable}, " + _traffic_words(plan),
        markup=False,
    )
    if plan.background_templates:
        start = plan.background_starting_step
        since = f" (from step {start})" if start > 0 else ""
        console.print(f"background verification: {', '.join(plan.background_templates)}{since}", markup=False)
    table = Table()
    new = "new revision" if plan.strategy == "blueGreen" else "canary"  # blue-green: no canary
    heads = ["step", "name", "action", f"{new} weight", f"{new} replicas", "holds", "min time to live"]
    heads.append("notes")
    for h in heads:
        table.add_column(
            h,
            overflow="fold",
            justify="right" if h in ("step", f"{new} weight", f"{new} replicas") else "left",
        )
    for r in rows:
        table.add_row(
            str(r.index),
            r.name or "",
            r.action,
            f"{r.canary_weight}%",
            str(r.canary_replicas),
            "until promoted" if r.window is None else (seconds(r.window) if r.window else ""),
            "-" if r.cumulative is None else seconds(r.cumulative),
            r.note,
        )
    console.print(table)
    last = rows[-1].cumulative if rows else 0.0
    console.print(
        "minimum time to live (instant readiness, passing verification): "
        + ("none: an indefinite pause waits for promote" if last is None else seconds(last)),
        markup=False,
    )


def _traffic_words(plan: Plan) -> str:
    if plan.strategy == "blueGreen":
        return "active service switches all traffic at once"
    return "traffic router (weights)" if plan.traffic_router else "basic canary (weights are pod ratios)"


@app.command("diagram")
def diagram_cmd() -> None:
    """Print the rollout state machine as a mermaid state diagram."""
    sys.stdout.write(mermaid())


app.command("crd")(crd_cmd)
app.command("verify")(verify_cmd)
app.command("record")(record_cmd)
app.command("controller")(controller_cmd)
app.command("demo")(demo_cmd)
app.add_typer(rollout_app)


def main() -> None:
    """The console script: ``ebbtide = "ebbtide.cli.main:main"``."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
