"""``ebbtide crd``: the CustomResourceDefinitions of the ebbtide.dev group, as YAML.

To stdout as one multi-document stream (``ebbtide crd | kubectl apply -f -``), or with ``--out-dir`` one file
per definition (how ``deploy/crds/`` is written; a test keeps it in sync with the models).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ebbtide.adapters.kubernetes import crds

from .common import BadInput, guard, write_atomic


@guard
def crd_cmd(
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Write one <plural>.ebbtide.dev.yaml per definition here."),
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only this kind (repeatable), e.g. EbbtideDeployment.")
    ] = None,
) -> None:
    """Print the CustomResourceDefinitions (ebbtide.dev) generated from the spec models, as YAML."""
    known = {k.kind: k for k in crds.KINDS}
    unknown = sorted(set(kind or ()) - set(known))
    if unknown:
        raise BadInput(f"--kind {', '.join(unknown)}: unknown kind (known: {', '.join(known)})")
    chosen = [known[k] for k in kind] if kind else list(crds.KINDS)
    if out_dir is None:
        sys.stdout.write("---\n".join(crds.to_yaml(crds.crd(k)) for k in chosen))
        return
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"--out-dir {out_dir}: not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    for k in chosen:
        write_atomic(out_dir / crds.file_name(k), crds.to_yaml(crds.crd(k)))
