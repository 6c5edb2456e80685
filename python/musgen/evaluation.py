"""``musgen.evaluation``: the earlier import path of :mod:`musgen.eval` (kept for existing code)."""

from ._moved import forward
from .eval import *  # noqa: F401,F403
from .eval import __all__  # noqa: F401

__getattr__ = forward("musgen.evaluation", "musgen.eval", ("nll", "paper", "ngram"))
