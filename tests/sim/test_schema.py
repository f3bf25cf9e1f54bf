"""docs/scenario.schema.json is the JSON Schema generated from the Scenario models, kept in sync."""

from __future__ import annotations

import json
from pathlib import Path

from ebbtide.sim.scenario import Scenario

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "scenario.schema.json"
REGENERATE = (
    'python -c "import json; from ebbtide.sim.scenario import Scenario; '
    'print(json.dumps(Scenario.model_json_schema(), indent=2, sort_keys=True))" > docs/scenario.schema.json'
)


def test_published_schema_matches_the_models() -> None:
    published = json.loads(SCHEMA.read_text())
    assert published == Scenario.model_json_schema(), f"regenerate it: {REGENERATE}"


def test_schema_describes_the_scenario_fields() -> None:
    schema = Scenario.model_json_schema()
    text = json.dumps(schema)
    for field in ("revisions", "actions", "metrics", "traffic", "duration"):
        assert field in text
