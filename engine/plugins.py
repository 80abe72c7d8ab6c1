"""Plugin engines: modules that register their own segmenters when imported.

The studio, `evaluate`, `annotate` and every Ray worker load them the same way: from
`--engine-module M` flags and the FLOWLABEL_ENGINE_MODULES variable (comma-separated).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Iterable

ENGINE_MODULES_ENV = "FLOWLABEL_ENGINE_MODULES"


class EngineModuleError(Exception):
    """A plugin module could not be imported; the message says which and what to pass instead."""


def requested_modules(flags: Iterable[str] = ()) -> list[str]:
    """Plugin modules from the environment, then the flags, each once, in order."""
    env = [m.strip() for m in os.environ.get(ENGINE_MODULES_ENV, "").split(",") if m.strip()]
    return list(dict.fromkeys(env + list(flags)))


def import_engine_modules(names: Iterable[str]) -> list:
    """Import each plugin module (dotted name, or path to a .py file); importing registers its
    engines. A module already imported is not imported again. Raises EngineModuleError."""
    if os.getcwd() not in sys.path:  # `python /path/launch.py` from a folder holding the plugin
        sys.path.append(os.getcwd())
    loaded = []
    for name in names:
        try:
            loaded.append(_import_file(name) if name.endswith(".py") else importlib.import_module(name))
        except Exception as e:
            raise EngineModuleError(
                f"could not import engine module {name!r}: {type(e).__name__}: {e}. Pass an importable module "
                "name (on PYTHONPATH or in the current folder) or the path of a .py file") from e
    return loaded


def _import_file(name: str):
    path = Path(name).expanduser().resolve()
    key = f"flowlabel_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, path)
    if spec is None or not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[key]
        raise
    return module
