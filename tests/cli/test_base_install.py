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


def test_the_demo_needs_only_the_api_extra() -> None:
    """``pip install 'ebbtide[api]'`` runs ``ebbtide demo``: the API app and the memory backend load no
    kubernetes client (the spec routes only need the custom resources' names), and the demo finds its
    examples as package data of ``ebbtide.examples``."""
    code = (
        "import sys; from ebbtide.adapters.api.app import create_app; "
        "from ebbtide.adapters.api.memory import MemoryBackend; from ebbtide.cli.demo import EXAMPLES; "
        "assert (EXAMPLES / 'scenarios' / 'basic-canary.yaml').is_file(), EXAMPLES; "
        "print('kubernetes' in sys.modules)"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
