"""Earlier import paths of modules that moved into the stage subpackages."""

from __future__ import annotations

from importlib import import_module


def forward(old: str, new: str, modules: tuple[str, ...]):
    """A module ``__getattr__`` for ``old`` that finds any name of the old module (helpers
    included) in the submodules ``modules`` of its new home ``new``."""

    def __getattr__(name: str):
        for module in modules:
            mod = import_module(f"{new}.{module}")
            if hasattr(mod, name):
                return getattr(mod, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    return __getattr__
