"""musgen: train LSTM music generators on MIDI collections and generate new music, fast.

Public entry points (imported lazily so ``import musgen`` stays cheap and TensorFlow-free):
``musgen.midi`` (read/read_many/write), ``musgen.codec``, ``musgen.prepare``, ``musgen.train``,
``musgen.evaluate``, ``musgen.engine``, ``musgen.generate``, ``musgen.render`` (audio and piano
rolls) and ``musgen.web`` (the page served by ``musgen serve``).

The subpackages are the stages of the data flow: ``midi`` -> ``codec`` -> ``data`` ->
``training`` -> (``modeldir``) -> ``engine`` -> ``render`` -> ``generation`` -> ``eval`` ->
``web``; ``cli`` drives them.
"""

from __future__ import annotations

from importlib import import_module

from ._version import __version__
from .errors import (
    BackendUnavailableError,
    CodecError,
    CodecWarning,
    GenerationWarning,
    MidiError,
    MidiWarning,
    ModelFormatError,
    MusgenError,
    SynthesizerUnavailableError,
)

__all__ = [
    "__version__",
    "BackendUnavailableError",
    "CodecError",
    "CodecWarning",
    "GenerationWarning",
    "MidiError",
    "MidiWarning",
    "ModelFormatError",
    "MusgenError",
    "Score",
    "SynthesizerUnavailableError",
    "generate",
    "prepare",
    "train",
    "evaluate",
]

# name -> (module, attribute); attribute None means the module itself. Even Score is lazy:
# `import musgen` stays free of NumPy (about 40 ms), so a CLI or a tool that only asks for the
# version or an error class starts at once.
_LAZY = {
    "Score": ("musgen.score", "Score"),
    "score": ("musgen.score", None),
    "midi": ("musgen.midi", None),
    "codec": ("musgen.codec", None),
    "engine": ("musgen.engine", None),
    "generate": ("musgen.generation", "generate"),
    "data": ("musgen.data", None),
    "training": ("musgen.training", None),
    "eval": ("musgen.eval", None),
    "render": ("musgen.render", None),
    "generation": ("musgen.generation", None),
    "prepare": ("musgen.data", "prepare"),
    "train": ("musgen.training", "train"),
    "evaluate": ("musgen.eval", "evaluate"),
    "web": ("musgen.web", None),
}


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'musgen' has no attribute {name!r}") from None
    mod = import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
