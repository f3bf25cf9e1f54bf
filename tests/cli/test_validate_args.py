"""`ebbtide validate` over an Argo manifest whose AnalysisTemplate takes its count and limits from args."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ebbtide.cli.main import app

MANIFEST = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate}
spec:
  args: [{name: service-name}, {name: runs, value: "3"}, {name: failure-limit}]
  metrics:
    - name: success-rate
      interval: 1m
      count: "{{args.runs}}"
      failureLimit: "{{args.failure-limit}}"
      successCondition: result[0] >= 0.95
      provider:
        prometheus:
          address: http://prometheus:9090
          query: sum(rate(requests{service="{{args.service-name}}"}[5m]))
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: orders}
spec:
  replicas: 5
  strategy:
    canary:
      steps:
        - setWeight: 20
        - analysis:
            templates: [{templateName: success-rate}]
            args: [{name: service-name, value: orders}, {name: failure-limit, value: "LIMIT"}]
"""


def validate(tmp_path: Path, limit: str) -> tuple[int, str, str, Path]:
    f = tmp_path / "rollout.yaml"
    f.write_text(MANIFEST.replace("LIMIT", limit))
    result = CliRunner().invoke(app, ["validate", str(f)], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr, f


def test_args_in_count_and_failure_limit_validate(tmp_path: Path) -> None:
    code, out, err, f = validate(tmp_path, "1")
    assert code == 0, err
    assert f"OK    {f}" in out and "RolloutSpec/orders (Argo Rollout)" in out


def test_a_bad_arg_value_is_one_located_problem_and_exit_code_2(tmp_path: Path) -> None:
    code, _, err, f = validate(tmp_path, "three")
    assert code == 2
    assert "1 problem" in err and "Traceback" not in err
    assert (
        f"{f}: document 1 (AnalysisTemplate/success-rate): spec.metrics[0].failureLimit: "
        '"{{args.failure-limit}}" is "three" after substituting args, not a non-negative integer '
        "(arg 'failure-limit' given by Rollout 'orders')"
    ) in " ".join(err.split())
