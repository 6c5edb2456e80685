"""``musgen.dataset``: the earlier import path of :mod:`musgen.data` (kept for existing code)."""

from ._moved import forward
from .data import *  # noqa: F401,F403
from .data import __all__  # noqa: F401

__getattr__ = forward("musgen.dataset", "musgen.data",
                      ("format", "files", "writer", "dataset", "prepare"))
