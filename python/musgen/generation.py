"""``generate``: sample new pieces from a model directory and decode them to Scores.

This is the public face of the engine for token models (kind ``lstm_lm``): it supplies the codec
pieces the generic engine needs (grammar table, EOS, clock steps per token, which tokens are
notes), so every generated sequence decodes, and it turns lengths like "32 beats" into budgets.

A primer given as a Score or MIDI file is continued, not replaced by its quantized copy: the
returned piece is the primer itself (its tracks, names, programs, tempo map, meters, key
signatures and every note as it was) with the continuation's notes added in the primer's own
parts (``continue_primer``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import ModelFormatError
from .score import DEFAULT_TEMPO, Score

__all__ = ["generate", "parse_length", "default_model_dir", "DEFAULT_LENGTH", "RenderedPiece",
           "continue_primer"]

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


def _load_primer(primer):
    """A primer given as a MIDI path, read into a Score (other primers as they are)."""
    if isinstance(primer, (str, os.PathLike)):
        from . import midi

        return midi.read(primer)
    return primer


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
    primer = _load_primer(primer)
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
        if isinstance(primer, Score):
            scores.append(continue_primer(primer, prime, tokens, codec, backend=backend))
            continue
        scores.append(codec_mod.decode(tokens, codec, backend=backend if backend != "cuda"
                                       else None))
    if render_options is None:
        return scores
    from .render import render as render_score

    return [RenderedPiece(score, render_score(score, **render_options)) for score in scores]


# ------------------------------------------------------------------------- primer continuation
def continue_primer(primer: Score, primer_tokens, tokens, config, *,
                    backend: str | None = None) -> Score:
    """The primer with the continuation that ``tokens`` hold after ``primer_tokens`` (the
    primer's encoding without EOS) added to it.

    Kept from the primer, as they are: its ticks per beat, tracks and names, programs, tempo
    map, time and key signatures, and every note. The continuation's notes go to the primer's
    parts (version 2: part i of the tokens is the primer's part i, a (track, channel); version
    1: the primer's most used melodic track and channel, and its most used drum track), at the
    primer's ticks: the grid steps after the primer map back through its time base, with the
    silence that encoding the primer shortened given back. Version-2 tempo and meter changes of
    the continuation join the primer's maps. A primer note still sounding when the
    continuation strikes its key again ends there, as decode does within a piece.
    """
    be = backend if backend != "cuda" else None
    full = _decode_in_steps(tokens, config, be)
    head = _decode_in_steps(primer_tokens, config, be)
    notes = _continuation_notes(full, head)
    removed = _removed_steps(primer, config)
    to_tick = _step_to_tick(primer, config)
    notes["start"] = to_tick(notes["start"] + removed)
    notes["end"] = to_tick(notes["end"] + removed)
    _place_in_parts(notes, primer, config)
    kept = _end_restruck(primer.notes.copy(), notes)
    out = np.concatenate([kept, notes])
    out = out[np.lexsort((out["end"], out["pitch"], out["channel"], out["track"],
                          out["start"]))]
    tempos, sigs = primer.tempos, primer.time_signatures
    if config.version == 2:  # the continuation's tempo and meter changes
        last = int(head.notes["start"].max()) if head.n_notes else -1
        t_new = full.tempos[full.tempos["tick"] > last].copy()
        s_new = full.time_signatures[full.time_signatures["tick"] > last].copy()
        t_new["tick"] = to_tick(t_new["tick"] + removed)
        s_new["tick"] = to_tick(s_new["tick"] + removed)
        tempos = np.concatenate([tempos, t_new])
        sigs = np.concatenate([sigs, s_new])
    n_tracks = max(len(primer.track_names), int(out["track"].max()) + 1 if out.size else 0)
    names = list(primer.track_names) + [""] * (n_tracks - len(primer.track_names))
    return dataclasses.replace(primer, notes=out, tempos=tempos, time_signatures=sigs,
                               track_names=names)


def _decode_in_steps(tokens, config, backend) -> Score:
    """Decoded with one tick per grid step (ticks are steps, exactly)."""
    from . import codec as codec_mod

    tokens = np.asarray(tokens)
    if config.timing == "beats":
        return codec_mod.decode(tokens, config, backend=backend,
                                ticks_per_beat=int(config.steps_per_beat))
    # seconds: tick = step x step_ms x 1000 x ticks_per_beat / tempo = step
    return codec_mod.decode(tokens, config, backend=backend, ticks_per_beat=1,
                            tempo=1000 * int(config.step_ms))


def _continuation_notes(full: Score, head: Score) -> np.ndarray:
    """The notes of ``full`` that the primer's tokens alone do not hold (by track, channel,
    pitch and start: the continuation may have shortened a primer note)."""
    key = {(int(n["track"]), int(n["channel"]), int(n["pitch"]), int(n["start"]))
           for n in head.notes}
    mask = np.array([(int(n["track"]), int(n["channel"]), int(n["pitch"]), int(n["start"]))
                     not in key for n in full.notes], dtype=bool)
    return full.notes[mask].copy() if full.n_notes else full.notes.copy()


def _removed_steps(primer: Score, config) -> int:
    """Grid steps of silence that encoding the primer took out (the continuation comes that
    much later in the primer's own time)."""
    from . import codec as codec_mod

    reports: list = []
    codec_mod.encode_many([primer], config, reports=reports)
    return int(round(reports[0].get("beats_removed", 0) * config.beat_steps))


def _step_to_tick(primer: Score, config):
    """A function from grid steps to the primer's ticks (its beats; its tempo map in seconds
    timing; its frames with SMPTE division), rounded half up like decode."""
    if config.timing == "beats" and primer.smpte is None:
        num, den = int(primer.ticks_per_beat), int(config.steps_per_beat)
        return lambda s: (2 * np.asarray(s, np.int64) * num + den) // (2 * den)
    step_seconds = (0.5 / config.steps_per_beat if config.timing == "beats"
                    else config.step_ms / 1000.0)  # a beat grid without beats: 120 BPM
    if primer.smpte is not None:
        per_second = float(primer.smpte[0]) * float(primer.smpte[1])
        return lambda s: np.floor(np.asarray(s, np.float64) * step_seconds * per_second
                                  + 0.5).astype(np.int64)
    # seconds timing: through the primer's tempo map, inverted (its last tempo goes on)
    tpb = float(primer.ticks_per_beat)
    ticks = np.concatenate([[0], primer.tempos["tick"].astype(np.int64)])
    tempo = np.concatenate([[DEFAULT_TEMPO], primer.tempos["tempo"].astype(np.float64)])
    last = np.ones(ticks.shape[0], bool)
    last[:-1] = ticks[1:] != ticks[:-1]  # several events on one tick: the last one wins
    ticks, tempo = ticks[last], tempo[last]
    starts = primer.ticks_to_seconds(ticks)

    def to_tick(s):
        sec = np.asarray(s, np.float64) * step_seconds
        i = np.searchsorted(starts, sec, side="right") - 1
        return np.floor(ticks[i] + (sec - starts[i]) * 1e6 * tpb / tempo[i] + 0.5).astype(
            np.int64)

    return to_tick


def _place_in_parts(notes: np.ndarray, primer: Score, config) -> None:
    """Move decoded continuation notes (track = part, or track 0 in version 1) onto the
    primer's tracks and channels, in place."""
    from .codec import _python_v2
    from .codec.config import DRUM_CHANNEL

    drum = notes["channel"] == DRUM_CHANNEL
    if config.version == 2:
        sources = _python_v2.part_sources(primer.notes, primer.programs, config) or [(0, 0)]
        part = np.minimum(notes["track"].astype(np.int64), len(sources) - 1)
        tc = np.array(sources, np.int64)[part] if notes.size else np.zeros((0, 2), np.int64)
        notes["track"] = tc[:, 0]
        notes["channel"] = np.where(drum, DRUM_CHANNEL, tc[:, 1])
        return
    pn = primer.notes
    for is_drum, sel in ((False, ~drum), (True, drum)):
        mine = pn[(pn["channel"] == DRUM_CHANNEL) == is_drum]
        if mine.size:
            pairs, counts = np.unique(mine["track"].astype(np.int64) * 16 + mine["channel"],
                                      return_counts=True)
            track, channel = divmod(int(pairs[np.argmax(counts)]), 16)
        else:
            track = len(primer.track_names) if is_drum else 0
            channel = DRUM_CHANNEL if is_drum else 0
        notes["track"][sel] = track
        notes["channel"][sel] = channel


def _end_restruck(primer_notes: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Primer notes still sounding when the continuation strikes their key (track, channel,
    pitch) again end there."""
    for n in new[np.argsort(new["start"], kind="stable")]:
        hit = ((primer_notes["track"] == n["track"]) & (primer_notes["channel"] == n["channel"])
               & (primer_notes["pitch"] == n["pitch"]) & (primer_notes["start"] < n["start"])
               & (primer_notes["end"] > n["start"]))
        primer_notes["end"][hit] = n["start"]
    return primer_notes
