"""Hypothesis profiles: dev (default, quick), ci (.ci/run), nightly (long), mutation (bench/mutation.py).

Reproducibility: Hypothesis mixes literal constants from the *imported* local modules into what it draws,
so a run of ``pytest tests/core`` and one of ``pytest tests`` would draw different examples. Every module of
the package and of the test suite is imported here, before any test runs, so that every invocation sees
the same constants and, with ``derandomize``, draws the same examples.
"""

import importlib
import os
import pkgutil
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings

settings.register_profile("dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "nightly", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# the CI examples without shrinking: a slip is reported as soon as one example fails
settings.register_profile(
    "mutation", parent=settings.get_profile("ci"), phases=[Phase.explicit, Phase.generate]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _import_everything() -> None:
    import ebbtide

    for info in pkgutil.walk_packages(ebbtide.__path__, "ebbtide."):
        importlib.import_module(info.name)
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] in ("__init__", "conftest"):
            continue
        importlib.import_module(".".join(parts))


_import_everything()
