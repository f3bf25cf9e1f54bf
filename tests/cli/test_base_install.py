"""The base install (``pip install ebbtide``: no kubernetes client, no HTTP libraries) runs the CLI: importing
it loads none of the optional dependencies (README's first Quick start command depends on it)."""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = (
    "kubernetes",
    "httpx",
    "jsonpath_ng",
    "tenacity",
    "prometheus_client",
    "dask",
    "matplotlib",
    "fastapi",
    "uvicorn",
    "httpx_auth",
    "limits",
    "playwright",
)


def test_the_cli_imports_no_optional_dependency() -> None:
    code = (
        f"import sys; import ebbtide.cli.main; print(','.join(m for m in {OPTIONAL!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "", f"the CLI imports optional dependencies at start: {loaded.stdout}"
