"""``generate``: sample new pieces from a model directory and decode them to Scores.

This is the public face of the engine for token models (kind ``lstm_lm``): it supplies the codec
pieces the generic engine needs (grammar table, EOS, clock steps per token, which tokens are
notes), so every generated sequence decodes, and it turns lengths like "32 beats" into budgets.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import ModelFormatError
from .score import Score

__all__ = ["generate", "parse_length", "default_model_dir", "DEFAULT_LENGTH", "RenderedPiece"]

#: The default length of a generated piece.
DEFAULT_LENGTH = "512 tokens"

_UNITS = {"token": "tokens", "tokens": "tokens", "note": "notes", "notes": "notes",
          "beat": "beats", "beats": "beats"}


def default_model_dir() -> Path:
    """Where the default model ships inside the package."""
    return Path(__file__).resolve().parent / "models" / "default"


def parse_length(length) -> tuple[int, str]:
    """``512`` or ``"512 tokens"`` / ``"64 notes"`` / ``"32 beats"`` -> (amount, unit).

    * tokens: generated tokens (after the primer);
    * notes: generated notes (Pitch tokens, drums included);
    * beats: generated time, the sum of the TimeShift tokens' grid steps / steps per beat.

    Generation stops once the budget is met and the last note is complete (it may run a few
    tokens over, never under unless the model samples EOS first).
    """
    if isinstance(length, (int, np.integer)) and not isinstance(length, bool):
        amount, unit = int(length), "tokens"
    elif isinstance(length, str):
        m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", length)
        if not m or (m.group(2) and m.group(2).lower() not in _UNITS):
            raise ValueError(f"length: {length!r}, expected an integer followed by tokens, "
                             "notes or beats (e.g. '64 notes')")
        amount, unit = int(m.group(1)), _UNITS.get(m.group(2).lower(), "tokens")
    else:
        raise ValueError(f"length: {length!r}, expected an int or a string like '32 beats'")
    if amount < 0:
        raise ValueError(f"length: {amount} must be >= 0")
    return amount, unit


class RenderedPiece(NamedTuple):
    """A generated piece with its sound: ``generate(..., render=True)`` returns these.
    Unpacks as ``score, audio``."""

    score: Score
    audio: object  # musgen.render.Audio


def _render_options(render) -> dict | None:
    """None for no rendering, else the ``musgen.render.render`` options; checks up front that a
    synthesizer and SoundFont are there, so a missing one fails before the generation work."""
    from collections.abc import Mapping

    if render is False or render is None:
        return None
    if render is True:
        options = {}
    elif isinstance(render, Mapping):
        options = dict(render)
    else:
        raise TypeError(f"render: expected a bool or a mapping of render options, got "
                        f"{type(render).__name__}")
    from .errors import SynthesizerUnavailableError
    from .render import find_soundfont, fluidsynth_status

    ok, why = fluidsynth_status()
    if not ok:
        raise SynthesizerUnavailableError(why)
    find_soundfont(options.get("soundfont"))
    return options


def _load_model(model, backend, precision=None):
    from .engine import Engine, load

    if isinstance(model, Engine):
        if precision is not None and precision != model.precision:
            raise ValueError(f"precision: {precision!r}, but the Engine given was loaded with "
                             f"{model.precision!r}; load it with engine.load(..., "
                             f"precision={precision!r})")
        return model
    if model is None:
        path = default_model_dir()
        if not (path / "config.json").is_file():
            raise ModelFormatError(
                f"no default model is installed (expected {path}); pass a model directory "
                "made by `musgen train`, e.g. generate('my-model')")
        model = path
    return load(model, backend=backend, precision=precision or "float32")


def _primer_tokens(primer, codec) -> np.ndarray:
    """BOS + the primer's tokens, without a final EOS (generation continues after them)."""
    from . import codec as codec_mod

    if primer is None:
        return np.array([codec.bos_id], np.int32)
    if isinstance(primer, (str, os.PathLike)):
        from . import midi

        primer = midi.read(primer)
    if isinstance(primer, Score):
        tokens = codec_mod.encode(primer, codec)
    else:
        tokens = np.asarray(primer)
        if tokens.ndim != 1 or (tokens.size and tokens.dtype.kind not in "iu"):
            raise ValueError("primer: expected token ids (1-D ints), a Score or a MIDI path")
        tokens = tokens.astype(np.int32)
    if tokens.size == 0 or tokens[0] != codec.bos_id:
        tokens = np.concatenate([[codec.bos_id], tokens]).astype(np.int32)
    if tokens[-1] == codec.eos_id:
        tokens = tokens[:-1]
    return tokens


def generate(model=None, *, n: int = 1, length=DEFAULT_LENGTH, temperature=1.0, top_k=None,
             top_p=None, seed=None, primer=None, backend: str | None = None,
             threads: int | None = None, progress=None, precision: str | None = None,
             render=False) -> list:
    """Generate ``n`` pieces.

    Parameters
    ----------
    model : path, Engine or None
        A model directory (kind ``lstm_lm``), a loaded Engine, or None for the default model
        shipped in the package.
    n : int
        Number of independent pieces (streams of one batch).
    length : int or str
        Budget of the generated part: an int (tokens) or "512 tokens", "64 notes", "32 beats"
        (see :func:`parse_length`).
    temperature : float or sequence of n
        Softmax temperature; 0 is greedy (argmax).
    top_k : int, sequence of n, or None
        Keep only the k most likely tokens (None or 0: off).
    top_p : float, sequence of n, or None
        Nucleus sampling: the most likely tokens whose mass reaches ``top_p`` (None or 1: off).
    seed : int, sequence of n ints, or None
        The Philox key; the same seed and settings give the same pieces on every backend.
        None draws a fresh seed.
    primer : token ids, Score, MIDI path, or None
        Music to continue: its encoded notes warm the model's state, and the returned piece
        holds the primer followed by the continuation. None starts from scratch (BOS).
    backend : {"cpp", "python", "cuda"} or None
        The engine backend (None: ``MUSGEN_BACKEND``, default auto).
    threads : int or None
        CPU threads (None: all cores): many streams are split between them; with fewer
        streams than threads, the threads share each step (same results either way).
    progress : callable(int) or None
        Called with the number of tokens generated since the last call.
    precision : {"float32", "float16"} or None
        Weight storage of the CPU engine (see :func:`musgen.engine.load`); None: float32, or
        the given Engine's own. "float16" is an opt-in speed-up that changes the logits by about
        1e-3, so the same seed may give different pieces than float32.
    render : bool or mapping
        Also synthesize each piece (FluidSynth and a General MIDI SoundFont): True with the
        defaults, or a mapping of :func:`musgen.render.render` options (``soundfont``,
        ``sample_rate``, ``tail``, ``normalize``).

    Returns
    -------
    list of n Score, or of n RenderedPiece (score, audio) with ``render``
        Every piece decodes: sampling is masked by the codec's grammar.
    """
    from . import codec as codec_mod

    render_options = _render_options(render)
    engine = _load_model(model, backend, precision)
    if engine.kind != "lstm_lm":
        raise ValueError(f"generate: the model is of kind {engine.kind!r}; generate() samples "
                         "token models (kind 'lstm_lm')")
    codec = engine.codec
    if codec.vocab_size != engine.vocab_size:
        raise ModelFormatError(f"{engine.path}: the codec has {codec.vocab_size} tokens but the "
                               f"model's vocabulary is {engine.vocab_size}")
    amount, unit = parse_length(length)
    grammar = codec_mod.grammar(codec)
    types = np.asarray(codec.token_types)
    note_types = [codec_mod.TYPE_PITCH, getattr(codec_mod, "TYPE_DRUM_PITCH", codec_mod.TYPE_PITCH)]
    is_note = np.isin(types, note_types).astype(np.uint8)
    clock = np.asarray(codec.token_steps, dtype=np.int32)
    # Hard caps so a model that never reaches its budget still stops: generous for music
    # (a note takes 3-4 tokens; long gaps and long notes take a few more).
    if unit == "beats":
        budget, engine_unit = amount * int(codec.steps_per_beat), "steps"
        cap = 256 * amount + 256
    elif unit == "notes":
        budget, engine_unit = amount, "notes"
        cap = 32 * amount + 64
    else:
        budget, engine_unit = amount, "tokens"
        cap = amount + 64
    prime = _primer_tokens(primer, codec)
    streams = engine.generate_tokens(
        n, primer=prime, length=budget, unit=engine_unit, temperature=temperature, top_k=top_k,
        top_p=top_p, seed=seed, grammar=grammar, eos_id=codec.eos_id, clock_steps=clock,
        is_note=is_note, max_tokens=cap, threads=threads, progress=progress)
    scores = []
    for gen in streams:
        tokens = np.concatenate([prime, gen]).astype(np.int32)
        if tokens[-1] != codec.eos_id and grammar.can_end[grammar.walk(tokens)]:
            tokens = np.concatenate([tokens, [codec.eos_id]]).astype(np.int32)
        scores.append(codec_mod.decode(tokens, codec, backend=backend if backend != "cuda"
                                       else None))
    if render_options is None:
        return scores
    from .render import render as render_score

    return [RenderedPiece(score, render_score(score, **render_options)) for score in scores]
