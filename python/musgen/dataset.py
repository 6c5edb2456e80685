"""``musgen.dataset``: the earlier import path of :mod:`musgen.data` (kept for existing code)."""

from importlib import import_module

from .data import *  # noqa: F401,F403
from .data import __all__  # noqa: F401

_MODULES = ("format", "files", "writer", "dataset", "prepare")


def __getattr__(name: str):
    """Names that lived in the old module (helpers included) resolve to their new home."""
    for module in _MODULES:
        mod = import_module(f"musgen.data.{module}")
        if hasattr(mod, name):
            return getattr(mod, name)
    raise AttributeError(f"module 'musgen.dataset' has no attribute {name!r}")
