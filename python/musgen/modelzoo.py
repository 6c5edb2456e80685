"""The models shipped inside the package, by name: each is a model directory under
``musgen/models/<name>/`` with its ``MODEL_CARD.md``, and ``resolve_model`` turns a name (or a
path) into the folder every loader reads.

A path that exists always wins over a name, so a user's folder called like a shipped model is
never shadowed. The name ``"default"`` always means the default model (``DEFAULT_MODEL``),
whatever its folder is called: shipping another default is a change of that one constant and
of the folder.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelFormatError
from .modeldir import CONFIG_NAME, expected_tensors, load_config

__all__ = ["DEFAULT_MODEL", "DEFAULT_ALIAS", "CARD_NAME", "ShippedModel", "models_root",
           "default_model_dir", "shipped_models", "shipped_names", "resolve_model",
           "model_card", "is_name"]

#: The folder (under ``musgen/models``) of the model ``generate()`` uses when none is given.
DEFAULT_MODEL = "default"
#: The name that always resolves to ``DEFAULT_MODEL``'s folder.
DEFAULT_ALIAS = "default"
CARD_NAME = "MODEL_CARD.md"


@dataclass(frozen=True)
class ShippedModel:
    """A model shipped in the package: what ``musgen info`` lists."""

    name: str              # the folder name under musgen/models
    path: Path
    default: bool
    kind: str              # config model.kind (lstm_lm, paper)
    codec_version: int | None
    vocab_size: int | None
    parameters: int        # float32 weights the config's architecture holds
    size_bytes: int        # every file of the folder, on disk
    summary: str           # the card's title (first heading), or '' without a card

    def to_dict(self) -> dict:
        return {"name": self.name, "path": str(self.path), "default": self.default,
                "kind": self.kind, "codec_version": self.codec_version,
                "vocab_size": self.vocab_size, "parameters": self.parameters,
                "size_bytes": self.size_bytes, "summary": self.summary}


def models_root() -> Path:
    """The folder holding the shipped model folders."""
    return Path(__file__).resolve().parent / "models"


def default_model_dir() -> Path:
    """Where the default model ships inside the package."""
    return models_root() / DEFAULT_MODEL


def _card_summary(path: Path) -> str:
    """The card's first heading without its ``#`` (else its first non-empty line)."""
    try:
        lines = (path / CARD_NAME).read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    text = [ln.strip() for ln in lines if ln.strip()]
    heading = next((ln for ln in text if ln.startswith("#")), text[0] if text else "")
    return heading.lstrip("#").strip()


def _describe(path: Path) -> ShippedModel | None:
    """The entry of a shipped folder, or None when it holds no readable model config."""
    try:
        config = load_config(path)
        shapes = expected_tensors(config["model"], str(path / CONFIG_NAME))
    except ModelFormatError:
        return None
    codec = config.get("codec") if isinstance(config.get("codec"), dict) else {}
    model = config["model"]
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return ShippedModel(
        name=path.name, path=path, default=path.name == DEFAULT_MODEL,
        kind=str(model.get("kind")), codec_version=codec.get("format_version"),
        vocab_size=model.get("vocab_size", codec.get("vocab_size")),
        parameters=int(sum(math.prod(s) for s in shapes.values())), size_bytes=size,
        summary=_card_summary(path))


def shipped_models() -> list:
    """Every shipped model (``ShippedModel``), the default first, then by name."""
    root = models_root()
    found = [m for p in (sorted(root.iterdir()) if root.is_dir() else [])
             if p.is_dir() and (m := _describe(p)) is not None]
    return sorted(found, key=lambda m: (not m.default, m.name))


def shipped_names() -> list:
    """The names ``resolve_model`` accepts besides paths (``default`` included)."""
    names = [m.name for m in shipped_models()]
    if DEFAULT_ALIAS not in names and (default_model_dir() / CONFIG_NAME).is_file():
        names.insert(0, DEFAULT_ALIAS)
    return names


def is_name(text: str) -> bool:
    """A bare name (no folder part) that may name a shipped model."""
    return bool(text) and "/" not in text and os.sep not in text and text not in (".", "..")


def resolve_model(model) -> Path:
    """A model directory for ``model``: an existing path as given, else a shipped model's name
    (``"default"`` is the default model whatever its folder). A path with a folder part that
    does not exist is returned as it is, for the loader to report.

    Raises
    ------
    ModelFormatError
        ``model`` is a bare name that is neither an existing path nor a shipped model; the
        message lists the shipped names.
    TypeError
        ``model`` is not a str or path.
    """
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model: expected a model directory or a shipped model's name, got "
                        f"{type(model).__name__}")
    path = Path(model)
    if path.exists():
        return path
    text = os.fspath(model)
    if not is_name(text):
        return path
    folder = default_model_dir() if text == DEFAULT_ALIAS else models_root() / text
    if (folder / CONFIG_NAME).is_file():
        return folder
    names = shipped_names()
    raise ModelFormatError(f"model {text!r}: not a model directory here, nor a shipped model "
                           f"(shipped: {', '.join(names) or 'none installed'})")


def model_card(model) -> str:
    """The ``MODEL_CARD.md`` text of a model (a shipped name or a folder)."""
    path = resolve_model(model)
    try:
        return (path / CARD_NAME).read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelFormatError(f"{path / CARD_NAME}: cannot read the model card "
                               f"({exc.strerror or exc})") from None
