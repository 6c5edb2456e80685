"""``musgen.evaluation``: the earlier import path of :mod:`musgen.eval` (kept for existing code)."""

from importlib import import_module

from .eval import *  # noqa: F401,F403
from .eval import __all__  # noqa: F401

_MODULES = ("nll", "paper", "ngram")


def __getattr__(name: str):
    """Names that lived in the old module (helpers included) resolve to their new home."""
    for module in _MODULES:
        mod = import_module(f"musgen.eval.{module}")
        if hasattr(mod, name):
            return getattr(mod, name)
    raise AttributeError(f"module 'musgen.evaluation' has no attribute {name!r}")
