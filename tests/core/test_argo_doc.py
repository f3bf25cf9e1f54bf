"""docs/spec-reference.md's Argo section cannot drift from the converter: every Argo field it names is one
the converter uses, accepts or refuses; the fields ignored with a warning are exactly :data:`WARNED`, in the
table and in the list; the fields ignored silently are exactly :data:`SILENT`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ebbtide.core.argo import KNOWN_FIELDS
from ebbtide.core.argo_ignored import SILENT, WARNED

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec-reference.md"
TEXT = DOC.read_text()
SECTION = TEXT[TEXT.index("## Argo Rollouts YAML") : TEXT.index("## Examples")]

#: words in backquotes in the section that are not Argo field names: kinds, ebbtide's own field names and
#: values, providers
NOT_ARGO_FIELDS = {
    "argoproj.io", "v1alpha1", "Rollout", "RolloutSpec", "Strategy", "AnalysisTemplate",
    "ClusterAnalysisTemplate", "VerificationTemplate", "failurePolicy", "action", "rollback", "mode",
    "immediate", "appmesh", "verification", "templateNames", "backgroundVerification", "traffic",
    "strategy.args", "kayenta", "wavefront", "influxdb", "skywalking", "graphite", "plugin", "name",
    "apiVersion", "kind", "spec", "metadata", "status", "true", "false", "warning", "FILE", "Kind",
    "field.path", "ebbtide", "validate", "plan", "simulate", "v",
}  # fmt: skip


def _bullet(lead: str) -> str:
    start = SECTION.index(lead)
    end = SECTION.index("\n  - ", start)
    return SECTION[start:end]


def _words(text: str) -> set[str]:
    """Every identifier in backquotes (a dotted path gives each of its parts)."""
    out: set[str] = set()
    for quoted in re.findall(r"`([^`]*)`", text):
        if re.search(r"[a-z]+ [a-z]+ [a-z]+", quoted):  # a message quoted, not a field
            continue
        out |= set(re.findall(r"[A-Za-z][A-Za-z0-9]*", quoted))
    return out


def _last(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def test_every_argo_field_the_section_names_is_known_to_the_converter() -> None:
    known = KNOWN_FIELDS | {p for e in WARNED for p in e.path.replace("[*]", "").split(".")}
    known |= {p for _, path in SILENT for p in path.split(".")}
    unknown = _words(SECTION) - known - {w for x in NOT_ARGO_FIELDS for w in re.findall(r"[A-Za-z0-9]+", x)}
    assert unknown == set()


def test_every_field_the_converter_knows_is_in_the_section() -> None:
    assert KNOWN_FIELDS - _words(SECTION) == set()


def test_the_warning_table_is_warned() -> None:
    rows = re.findall(r"^\| (Rollout|AnalysisTemplate) \| `([^`]+)` \| (.+) \| (.+) \|$", SECTION, re.M)
    expected = [
        (e.kind, e.path, e.reason, "\N{EN DASH}" if e.same_when is None else f"`{json.dumps(e.same_when)}`")
        for e in WARNED
    ]
    assert rows == expected


def test_the_lists_say_which_fields_warn() -> None:
    warned = _words(_bullet("accepted and ignored **with a warning**"))
    silent = _words(_bullet("accepted and ignored **silently**"))
    blue_green = _words(_bullet("`strategy.blueGreen` →"))
    warned_names = {_last(e.path) for e in WARNED if ".blueGreen." not in e.path}
    assert warned_names <= warned
    assert {_last(e.path) for e in WARNED if ".blueGreen." in e.path} - {"measurementRetention"} <= blue_green
    assert {_last(path) for _, path in SILENT} <= silent
    assert not silent & {_last(e.path) for e in WARNED}
