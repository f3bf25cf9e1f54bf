"""The optional compiled build (issue 8, item 7; setup.py, ``EBBTIDE_MYPYC=1``).

CI runs the whole suite twice: against the editable install (pure Python, the default for development) and
against a wheel built with mypyc, with ``EBBTIDE_EXPECT_COMPILED=1``. This test makes sure each run tested
the build it claims to: without the variable every engine module must be the Python source."""

from __future__ import annotations

import importlib
import os

import pytest

#: the modules setup.py compiles (core/inputs.py stays interpreted: it judges what embedders pass in)
COMPILED = ("engine", "hotpath", "verification", "traffic")
INTERPRETED = ("inputs", "state", "events", "plan", "spec")


def _is_compiled(name: str) -> bool:
    path = importlib.import_module(f"ebbtide.core.{name}").__file__
    assert path is not None
    return not path.endswith(".py")


@pytest.mark.parametrize("name", COMPILED)
def test_a_hot_module_is_compiled_exactly_when_the_run_expects_it(name: str) -> None:
    expected = os.environ.get("EBBTIDE_EXPECT_COMPILED") == "1"
    assert _is_compiled(name) == expected, f"ebbtide.core.{name}: expected compiled={expected}"


@pytest.mark.parametrize("name", INTERPRETED)
def test_the_input_checks_and_the_records_stay_python(name: str) -> None:
    assert not _is_compiled(name)
