"""`ebbtide validate` over manifests as users keep them: the form each document was read in, the kinds skipped
(-v), and the files to validate together when a template lives in another file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ebbtide.cli.main import app
from ebbtide.core.argo_ignored import WARNED

MANIFESTS = Path(__file__).resolve().parents[2] / "examples" / "manifests"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_validate_says_which_form_it_read() -> None:
    code, out, _ = run(
        "validate", str(MANIFESTS / "oceancd-one-file.yaml"), str(MANIFESTS / "argo-mixed-kinds.yaml")
    )
    assert code == 0
    assert "RolloutSpec/payments (Ocean CD flat) SpotDeployment/payments (workload)" in out
    assert "VerificationTemplate/catalog-checks (Argo AnalysisTemplate)" in out
    assert "RolloutSpec/catalog (Argo Rollout)" in out
    assert "skipped" not in out  # quiet without -v


def test_validate_verbose_lists_skipped_kinds_once() -> None:
    code, out, _ = run("validate", "-v", str(MANIFESTS / "argo-mixed-kinds.yaml"))
    assert code == 0
    (line,) = [x for x in out.splitlines() if "skipped" in x]
    assert line.split(": ", 1)[1].split(", ") == [
        "ConfigMap/catalog-config",
        "Secret/catalog-token",
        "Service/catalog-stable",
        "Service/catalog-canary",
        "Ingress/catalog",
        "VirtualService/catalog",
        "DestinationRule/catalog",
    ]


def test_a_file_of_foreign_kinds_only_is_ok() -> None:
    kustomization = MANIFESTS / "argo-workloadref" / "kustomization.yaml"
    code, out, _ = run("validate", "-v", str(kustomization))
    assert (
        code == 0 and f"OK    {kustomization}" in out and "skipped (not ebbtide kinds): Kustomization" in out
    )


def test_a_template_in_another_file_names_the_set_to_validate() -> None:
    rollout, templates = (
        MANIFESTS / "argo-workloadref" / "rollout.yaml",
        MANIFESTS / "argo-workloadref" / "templates.yaml",
    )
    code, out, err = run("validate", str(rollout), str(templates))
    assert code == 2 and f"OK    {templates}" in out
    assert "1 problem" in err and "unknown AnalysisTemplate 'orders-error-ratio'" in err
    assert f"ebbtide validate --set {rollout} {templates}" in err
    code, out, _ = run("validate", "--set", str(rollout), str(templates))
    assert code == 0 and "Deployment/orders (workload)" in out


def test_an_experiment_step_is_one_problem(tmp_path: Path) -> None:
    f = tmp_path / "rollout.yaml"
    f.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\n"
        "spec:\n  strategy:\n    canary:\n      steps:\n        - setWeight: 10\n"
        "        - experiment: {templates: [{name: c, specRef: canary}],"
        " analyses: [{name: a, templateName: t}]}\n"
    )
    code, _, err = run("validate", str(f))
    assert code == 2 and "1 problem" in err
    assert "spec.strategy.canary.steps[1].experiment: experiment steps are not supported yet" in err


def test_a_failing_set_does_not_call_its_other_files_empty(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: ebbtide.dev/v1alpha1\nkind: Strategy\nmetadata: {name: s}\nspec: {canary: {x: 1}}\n"
    )
    templates = MANIFESTS / "argo-workloadref" / "templates.yaml"
    code, _, err = run("validate", "--set", str(bad), str(templates))
    assert code == 2 and "1 problem" in err and "nothing to check" not in err
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    code, _, err = run("validate", str(empty), str(templates))
    assert code == 2 and f"{empty}: the file holds no YAML document" in err


def test_a_rollout_alone_names_the_file_beside_it_that_defines_its_templates(tmp_path: Path) -> None:
    for name in ("rollout.yaml", "templates.yaml"):
        (tmp_path / name).write_text((MANIFESTS / "argo-workloadref" / name).read_text())
    (tmp_path / "notes.json").write_text("[1, 2")  # not a manifest: never mind
    code, _, err = run("validate", str(tmp_path / "rollout.yaml"))
    assert code == 2 and "1 problem" in err
    assert f"ebbtide validate --set {tmp_path / 'rollout.yaml'} {tmp_path / 'templates.yaml'}" in err


SPECS = MANIFESTS.parent / "specs"


def _with_ignored_fields(tmp_path: Path) -> Path:
    """examples/specs/argo-rollout.yaml with two fields ebbtide accepts and ignores with a warning."""
    text = (SPECS / "argo-rollout.yaml").read_text()
    assert "\n  replicas: " in text and "    canary:\n" in text
    text = text.replace("\n  replicas: ", "\n  minReadySeconds: 30\n  replicas: ", 1)
    text = text.replace("    canary:\n", "    canary:\n      pingPong: {pingService: a, pongService: b}\n", 1)
    f = tmp_path / "rollout.yaml"
    f.write_text(text)
    return f


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: ") and "Rollout/" in line]


def test_validate_warns_of_ignored_argo_fields(tmp_path: Path) -> None:
    f = _with_ignored_fields(tmp_path)
    code, out, err = run("validate", str(f))
    assert code == 0 and f"OK    {f}" in out
    where = f"warning: {f}: Rollout/rollouts-demo"
    assert _warnings(err) == [
        f"{where}: spec.minReadySeconds: ebbtide counts a pod available as soon as it is ready",
        f"{where}: spec.strategy.canary.pingPong: ebbtide routes to the canary and stable services as named "
        "and never swaps them",
    ]
    assert "ignored with a warning" not in out
    code, out, _ = run("validate", "-v", str(f))
    assert code == 0
    where = "ignored with a warning: Rollout/rollouts-demo"
    assert [x.strip() for x in out.splitlines() if "ignored with a warning" in x] == [
        f"{where}: spec.minReadySeconds: ebbtide counts a pod available as soon as it is ready",
        f"{where}: spec.strategy.canary.pingPong: ebbtide routes to the canary and stable services as named "
        "and never swaps them",
    ]


def test_plan_and_simulate_warn_too(tmp_path: Path) -> None:
    f = _with_ignored_fields(tmp_path)
    code, _, err = run("plan", str(f))
    assert code == 0 and len(_warnings(err)) == 2
    scenario = (MANIFESTS.parent / "scenarios" / "argo-rollout.yaml").read_text()
    s = tmp_path / "scenario.yaml"
    s.write_text(scenario.replace("../specs/argo-rollout.yaml", "rollout.yaml"))
    code, _, err = run("simulate", str(s), "--runs", "1")
    assert code == 0 and len(_warnings(err)) == 2
    code, _, err = run("validate", str(s))
    assert code == 0 and len(_warnings(err)) == 2
    code, _, err = run("plan", str(s))
    assert code == 0 and len(_warnings(err)) == 2
    code, _, err = run("validate", str(s), str(f))  # the scenario and the spec file it names: once each
    assert code == 0 and len(_warnings(err)) == 2


def test_files_without_ignored_fields_warn_of_nothing() -> None:
    code, _, err = run("validate", str(SPECS / "argo-rollout.yaml"), str(SPECS / "blue-green.yaml"))
    assert code == 0 and _warnings(err) == []


def test_validate_json_lists_files_warnings_and_problems(tmp_path: Path) -> None:
    f = _with_ignored_fields(tmp_path)
    code, out, _ = run("validate", "--format", "json", str(f))
    assert code == 0
    (entry,) = json.loads(out)["files"]
    assert entry["ok"] is True and "RolloutSpec/rollouts-demo (Argo Rollout)" in entry["read"]
    assert [(w["kind"], w["name"], w["field"]) for w in entry["warnings"]] == [
        ("Rollout", "rollouts-demo", "spec.minReadySeconds"),
        ("Rollout", "rollouts-demo", "spec.strategy.canary.pingPong"),
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: ebbtide.dev/v1alpha1\nkind: Strategy\nmetadata: {name: s}\nspec: {canary: {x: 1}}\n"
    )
    code, out, _ = run("validate", "--format", "json", str(f), str(bad))
    report = json.loads(out)
    assert code == 2 and [e["ok"] for e in report["files"]] == [True, False]
    assert [(p["file"], p["field"]) for p in report["problems"]] == [(str(bad), "spec.canary.x")]


def test_backtest_warns_of_ignored_argo_fields(tmp_path: Path) -> None:
    text = (SPECS / "argo-rollout.yaml").read_text()
    assert "\nspec:\n  args:\n" in text
    f = tmp_path / "argo.yaml"
    retention = "\nspec:\n  measurementRetention: [{metricName: success-rate, limit: 5}]\n  args:\n"
    f.write_text(text.replace("\nspec:\n  args:\n", retention, 1))
    csv = MANIFESTS.parent / "backtest" / "checkout-metrics.csv"
    code, out, err = run("backtest", str(f), str(csv), "--template", "success-rate")
    assert code == 0 and "verdict:" in out, err
    lines = [x for x in err.splitlines() if x.startswith("warning: ")]
    assert lines == [
        f"warning: {f}: AnalysisTemplate/success-rate: spec.measurementRetention: "
        + next(
            w.reason for w in WARNED if w.kind == "AnalysisTemplate" and w.path == "spec.measurementRetention"
        )
    ], err
