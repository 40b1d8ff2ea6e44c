"""Load the scripts of ``tools/`` (not a package) as modules, once per name.

``load_tool('benchmark')`` executes ``tools/benchmark.py`` the first time and returns the same
module afterwards, registered in ``sys.modules`` as ``hhr_tool_benchmark`` so that dataclasses,
pickling and a second test file see one module rather than two copies.
"""
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[1] / 'tools'


def load_module(name: str, path: Path) -> ModuleType:
    """Execute the file ``path`` as the module ``name`` (registered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before executing: dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=None)
def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module, executed once per test session."""
    return load_module(f'hhr_tool_{name}', TOOLS / f'{name}.py')
