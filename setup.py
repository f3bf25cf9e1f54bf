"""The optional compiled build (issue 8, item 7): ``EBBTIDE_MYPYC=1`` compiles the engine's hot modules
with mypyc; without it (the default, and every editable install) the package is pure Python.

    EBBTIDE_MYPYC=1 pip wheel --no-build-isolation --no-deps -w dist .   # needs mypy in the environment

Everything else about the package is declared in pyproject.toml."""

import os

from setuptools import setup

#: the modules compiled: the engine's hot path. ``core/inputs.py`` stays interpreted: it checks what an
#: embedder passes to ``step`` and must raise its own errors, not a compiled signature's.
COMPILED = ("engine", "hotpath", "verification", "traffic")

if os.environ.get("EBBTIDE_MYPYC") == "1":
    from mypyc.build import mypycify

    # typing_root/ebbtide/core is core/ under its package name (mypy_path and explicit_package_bases in
    # pyproject.toml), so that the extensions are named ebbtide.core.<module>
    paths = [f"typing_root/ebbtide/core/{name}.py" for name in COMPILED]
    setup(ext_modules=mypycify(paths, opt_level="3", group_name="ebbtide_core"))
else:
    setup()
