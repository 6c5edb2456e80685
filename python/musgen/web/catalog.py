"""The models a page may use: the ones shipped in the package and those in ``--models DIR``.

The page names a model by the catalog's name for it; only the server maps names to folders, so
no path from a client ever reaches the file system.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelFormatError
from ..modelzoo import DEFAULT_MODEL, models_root
from ..modeldir import load_config
from .controls import model_features
from .errors import RequestError

__all__ = ["ModelEntry", "ModelCatalog"]


@dataclass(frozen=True)
class ModelEntry:
    """One model the page offers: its name on the page, its folder, and what it is."""

    name: str
    path: Path
    description: str
    shipped: bool
    features: tuple = ()   # what beyond notes its codec can be asked for (controls' needs)
    styles: tuple = ()     # its style labels (codec version 2)


def _describe(config: dict) -> str:
    model = config.get("model", {})
    training = config.get("training") or {}
    dataset = (training.get("dataset") or {}).get("name") or "unknown data"
    units = "x".join(str(u) for u in model.get("lstm_units", [])) or "?"
    codec = (config.get("codec") or {}).get("format_version", "?")
    return f"LSTM {units}, trained on {dataset} (codec v{codec})"


def _entry(name: str, path: Path, shipped: bool) -> ModelEntry | None:
    """The entry for a token model folder, or None when the folder is no such model."""
    try:
        config = load_config(path)
    except ModelFormatError:
        return None
    if config["model"].get("kind") != "lstm_lm":  # generate() samples token models only
        return None
    codec = config.get("codec") or {}
    return ModelEntry(name, path.resolve(), _describe(config), shipped,
                      features=tuple(model_features(codec)),
                      styles=tuple(str(s) for s in codec.get("styles") or ()))


def _shipped() -> list:
    root = models_root()
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        entry = _entry(path.name, path, True)
        if entry is not None:
            found.append(entry)
    return found


def _user_models(models_dir: Path, taken: set) -> list:
    """Model folders in ``models_dir`` (or ``models_dir`` itself when it is one)."""
    candidates = [models_dir] if (models_dir / "config.json").is_file() else \
        sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    found = []
    for path in candidates:
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", path.name) or "model"
        if name in taken:  # a user model named like a shipped one keeps both reachable
            name = f"{name}-{len(taken)}"
        entry = _entry(name, path, False)
        if entry is not None:
            found.append(entry)
            taken.add(name)
    return found


class ModelCatalog:
    """Named models and their loaded engines (loaded on first use, then kept)."""

    def __init__(self, models_dir: str | os.PathLike | None = None, *, backend=None):
        self.entries: dict = {e.name: e for e in _shipped()}
        if models_dir is not None:
            root = Path(models_dir)
            if not root.is_dir():
                raise ModelFormatError(f"--models {root}: no such folder")
            for entry in _user_models(root, set(self.entries)):
                self.entries[entry.name] = entry
        self.backend = backend
        self._engines: dict = {}
        self._lock = threading.Lock()

    def names(self) -> list:
        return list(self.entries)

    def default_name(self) -> str | None:
        """The shipped default model (``generate()``'s), else the first model listed."""
        if DEFAULT_MODEL in self.entries and self.entries[DEFAULT_MODEL].shipped:
            return DEFAULT_MODEL
        return next(iter(self.entries), None)

    def get(self, name: str) -> ModelEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise RequestError(400, f"model: unknown model {name!r}; choose one of "
                                    f"{', '.join(self.entries) or '(none installed)'}") from None

    def engine(self, name: str):
        """The loaded engine of model ``name`` (engines are read-only: threads share them)."""
        from .. import engine as engine_mod

        entry = self.get(name)
        with self._lock:
            if name not in self._engines:
                self._engines[name] = engine_mod.load(entry.path, backend=self.backend)
            return self._engines[name]
