"""``generate``: sample new pieces from a model directory and decode them to Scores.

This is the public face of the engine for token models (kind ``lstm_lm``): it supplies the codec
pieces the generic engine needs (grammar table, the per-token tables of the generation rules),
so every generated sequence decodes; it turns lengths like "32 beats" into budgets, musical
requests (key, pitch range, voices, density, instruments, tempo) into the rules' masks and
biases, closes each piece at its ending (the notes sounding at the last onset held to the end
point, every note released there), and reports what happened (the seed, pieces that ended
differently from what was asked) in :class:`Generation`.

A primer given as a Score or MIDI file is continued, not replaced by its quantized copy: the
returned piece is the primer itself (its tracks, names, programs, tempo map, meters, key
signatures and every note as it was) with the continuation's notes added in the primer's own
parts (``continue_primer``).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .errors import CodecError, GenerationWarning, ModelFormatError
from .modelzoo import DEFAULT_ALIAS, default_model_dir
from .score import DEFAULT_TEMPO, Score

__all__ = ["generate", "generate_with_report", "Generation", "PieceReport", "parse_length",
           "length_budget", "decode_pieces", "default_model_dir", "token_tables",
           "DEFAULT_LENGTH", "DEFAULT_MAX_PRIMER_TOKENS", "ENDINGS", "RenderedPiece",
           "continue_primer"]

#: The default length of a generated piece.
DEFAULT_LENGTH = "512 tokens"
#: The longest primer used as is; a longer one is continued from its last tokens (see
#: ``max_primer_tokens``). An LSTM's state after a few thousand tokens no longer depends on
#: what came before them, and warm-up costs time in proportion to the primer.
DEFAULT_MAX_PRIMER_TOKENS = 4096
#: ``ending=`` values: "auto" is "bar" for codecs with bars, else "beat".
ENDINGS = ("auto", "beat", "bar", "model", "none")

_UNITS = {"token": "tokens", "tokens": "tokens", "note": "notes", "notes": "notes",
          "beat": "beats", "beats": "beats"}


def parse_length(length) -> tuple[int, str]:
    """``512`` or ``"512 tokens"`` / ``"64 notes"`` / ``"32 beats"`` -> (amount, unit).

    * tokens: generated tokens (after the primer);
    * notes: generated notes (Pitch tokens, drums included);
    * beats: generated time, the sum of the TimeShift tokens' grid steps / steps per beat.

    A piece is at least that long (EOS is masked until the budget is met, unless
    ``allow_early_end``), then it ends as ``ending=`` says (at the next beat or bar line by
    default).
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


def token_tables(config):
    """The per-token tables of the generation rules for a codec config: the codec's own
    (``musgen.codec.token_tables``: clock steps, notes, pitches, durations, bars, parts,
    programs, tempi), checked and typed for the engines (``engine.rules.TokenTables``)."""
    from . import codec as codec_mod
    from .engine.rules import TokenTables

    return TokenTables.of(codec_mod.token_tables(config))


@dataclass
class PieceReport:
    """How one piece ended.

    Attributes
    ----------
    index : int
        The piece's place in the call (its stream).
    ended : str
        "as asked" (its ending: the next beat / bar line after the budget, or the model's EOS
        in the grace window of ``ending="model"``, or the budget met with ``ending="none"``),
        "early" (the model ended it before the budget: ``allow_early_end``), or "cut" (the
        hard token cap stopped it before its ending).
    tokens, notes : int
        Generated tokens and notes (the primer not counted).
    beats : float
        Generated time in beats (TimeShift and Bar advances).
    end_beat : float
        Where the piece ends, in beats from its start (the primer included).
    """

    index: int
    ended: str
    tokens: int
    notes: int
    beats: float
    end_beat: float


@dataclass
class Generation:
    """What ``generate_with_report`` made and how.

    Attributes
    ----------
    scores : list of Score
    pieces : list of PieceReport
    seed : int or list of int
        The seed used (drawn when none was given): the same seed and settings make the same
        pieces on every backend.
    settings : dict
        The settings that decide the pieces (with the seed, everything needed to make them
        again).
    model : str
        The model's name (its folder name, "default" for the shipped model).
    asked : str
        The length asked for, e.g. "64 beats".
    seed_drawn : bool
        No seed was given: ``seed`` was drawn for this call.
    primer_note : str or None
        What the primer cap left out of a long primer (also a GenerationWarning).
    """

    scores: list
    pieces: list
    seed: object
    settings: dict
    model: str
    asked: str
    seed_drawn: bool = False
    primer_note: str | None = field(default=None)

    def shortfalls(self) -> list:
        """The pieces that ended differently from what was asked (early or cut)."""
        return [p for p in self.pieces if p.ended != "as asked"]

    def text(self, index: int) -> str:
        """One line for piece ``index``'s MIDI text event: the model, the seed and stream, and
        the settings (what makes the piece again)."""
        from ._version import __version__

        seed = self.seed[index] if isinstance(self.seed, list) else self.seed
        parts = [f"musgen {__version__} generate", f"model={self.model}", f"seed={seed}",
                 f"stream={index}", f"length={self.asked}"]
        parts += [f"{k}={v}" for k, v in self.settings.items()]
        return " ".join(parts)


def _choose_ending(ending, tables) -> str:
    if ending not in ENDINGS:
        raise ValueError(f"ending: {ending!r}, expected one of {', '.join(ENDINGS)}")
    if ending == "auto":
        return "bar" if tables.has_bars else "beat"
    if ending == "bar" and not tables.has_bars:
        raise ValueError("ending: 'bar' needs a model whose codec has bars (version 2); this "
                         "one ends at beats ('beat', or 'auto')")
    return ending


#: The longest grace window of ``ending="model"``, in beats.
MAX_GRACE_BEATS = 256


def _grace_steps(grace, tables) -> int:
    if isinstance(grace, bool) or not isinstance(grace, (int, float, np.integer, np.floating)) \
            or not 0 <= grace <= MAX_GRACE_BEATS:
        raise ValueError(f"grace: {grace!r}, expected beats from 0 to {MAX_GRACE_BEATS}")
    return int(round(float(grace) * tables.steps_per_beat))


def _optional_int(value, name: str, lo: int, hi: int):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name}: {value!r}, expected an integer in {lo}..{hi} (None: off)")
    return int(value)


def _optional_float(value, name: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: {value!r}, expected a number > 0 (None: off)")
    return float(value)


def _program_of(item) -> int:
    """A GM program number (0..127) or 128 for drums, from an int or a name (the codec's
    General MIDI names and short names)."""
    from .codec.names import parse_program

    try:
        return int(parse_program(int(item) if isinstance(item, np.integer) else item))
    except CodecError as exc:
        raise ValueError(str(exc)) from None


def _static_arrays(codec, tables, *, key, scale_strictness, pitch_range, style, density, bpm,
                   instruments, allowed_instruments):
    """(allowed, bias) of the requests that are static masks and biases, checked against the
    codec; and the Program tokens an exact instrument list starts the piece with."""
    from .engine.constraints import StaticArrays, parse_key, parse_pitch_range

    static = StaticArrays(tables, list(codec.token_names))
    if key is not None:
        scale = parse_key(key)
        static.key(scale, scale_strictness)
        if static.block("Key_").size:
            static.only("Key_", _key_token(static, scale), "key")
    if pitch_range is not None:
        static.pitch_range(*parse_pitch_range(pitch_range))
    if style is not None:
        name = f"Style_{style}"
        if not static.block("Style_").size:
            raise ValueError("style: this model's codec has no style tokens (codec version 2)")
        if name not in static.names:
            labels = [n[len("Style_"):] for n in static.names if n.startswith("Style_")]
            raise ValueError(f"style: {style!r} is not one of this model's styles: "
                             f"{', '.join(labels)}")
        static.only("Style_", static.names.index(name), "style")
    if density is not None and static.block("Density_").size:
        static.only("Density_", _density_token(codec, static, density), "density")
    if bpm is not None:
        tempo = static.block("Tempo_")
        if not tempo.size:
            raise ValueError("bpm: this model's codec has no tempo tokens (codec version 2)")
        pick = getattr(codec, "tempo_bin", None)  # the codec's own bins, by their bounds
        if pick is not None:
            chosen = int(tempo[0]) + int(pick(int(round(60e6 / bpm))))
        else:  # the nearest bin centre on a log scale
            bins = tables.tempo_bpm[tempo].astype(np.float64)
            chosen = int(tempo[int(np.argmin(np.abs(np.log(bins / bpm))))])
        static.only("Tempo_", chosen, "bpm")
    prefix = []
    if instruments is not None or allowed_instruments is not None:
        programs = static.block("Program_")
        if not programs.size:
            raise ValueError("instruments: this model's codec has no instrument tokens (codec "
                             "version 2)")
        by_program = {int(tables.program[i]): int(i) for i in programs}
        chosen = instruments if instruments is not None else allowed_instruments
        ids = []
        for item in chosen:
            p = _program_of(item)
            if p not in by_program:
                raise ValueError(f"instrument: program {p} has no token in this codec")
            ids.append(by_program[p])
        if not ids:
            raise ValueError("instruments: give at least one instrument")
        if instruments is not None:
            prefix = ids
            static.only("Program_", [], "instruments")
        else:
            static.only("Program_", ids, "allowed_instruments")
    return static.arrays(), prefix


#: The generate() rules a model directory may set defaults for (config.json "generation"),
#: with their checks: max_rest in beats >= 0, the voice counts 1..32.
GENERATION_DEFAULTS = ("max_rest", "max_voices", "min_voices")


def _is_beats(value) -> bool:
    """A finite number of beats >= 0 (not a bool)."""
    return (not isinstance(value, bool)
            and isinstance(value, (int, float, np.integer, np.floating))
            and bool(np.isfinite(value)) and value >= 0)


def rest_steps(max_rest: float | None, steps_per_beat: int) -> int:
    """``max_rest`` in beats (None: off) as the engine rule's ``max_rest_steps`` (-1: off)."""
    return -1 if max_rest is None else int(round(max_rest * steps_per_beat))


def generation_defaults(config: dict, where=None) -> dict:
    """The defaults a model ships for generate()'s rules (``config.json`` "generation":
    ``max_rest`` in beats, ``max_voices``, ``min_voices``), checked; {} when it has none.

    ``musgen train`` writes ``max_rest`` (the rest its corpus keeps to); a model recipe may add
    the voice counts its music keeps (the default model: four voices). A damaged entry is a
    ModelFormatError naming it and ``where`` (the model folder)."""
    section = config.get("generation")
    if section is None:
        return {}
    place = f"{where}/config.json" if where is not None else "config.json"
    if not isinstance(section, dict):
        raise ModelFormatError(f"{place}: 'generation' must be an object of generate() "
                               f"defaults, found {type(section).__name__}")
    out = {}
    for name, value in section.items():
        if name not in GENERATION_DEFAULTS:
            raise ModelFormatError(f"{place}: generation.{name}: not a setting a model may set "
                                   f"(expected {', '.join(GENERATION_DEFAULTS)})")
        if name == "max_rest":
            ok = _is_beats(value)
        else:
            try:
                ok = _optional_int(value, name, 1, 32) is not None
            except ValueError:
                ok = False
        if not ok:
            raise ModelFormatError(f"{place}: generation.{name}: {value!r}, expected "
                                   + ("beats >= 0" if name == "max_rest" else "1..32"))
        out[name] = float(value) if name == "max_rest" else int(value)
    if "min_voices" in out and "max_voices" in out and out["min_voices"] > out["max_voices"]:
        raise ModelFormatError(f"{place}: generation.min_voices {out['min_voices']} is more "
                               f"than max_voices {out['max_voices']}")
    return out


def _is_auto(value) -> bool:
    return isinstance(value, str) and value.strip().lower() == "auto"


def _voices(value, name: str, defaults: dict) -> int | None:
    """``max_voices`` / ``min_voices``: the model's default for "auto", None off, else 1..32."""
    if _is_auto(value):
        return defaults.get(name)
    return _optional_int(value, name, 1, 32)


def _max_rest_beats(value, defaults: dict) -> float | None:
    """``max_rest`` in beats, or None (off)."""
    if _is_auto(value):
        return defaults.get("max_rest")
    if value is None or (isinstance(value, str) and value.strip().lower() in ("off", "none")):
        return None
    if not _is_beats(value):
        raise ValueError(f"max_rest: {value!r}, expected beats >= 0, 'auto' or None (off)")
    return float(value)


def _normalized_primer(primer, codec, config: dict) -> tuple:
    """A key-normalized model (``train --key-normalize``) continues a primer moved to C major or
    A minor, as it was trained: (the primer to use, the semitones to move the pieces back).
    Other models, or a primer that would leave MIDI's range, get the primer as it is."""
    from .keyplan import key_normalized

    if primer is None or codec.version != 2 or not key_normalized(config):
        return primer, 0
    if not isinstance(primer, Score):
        tokens, shift = codec.normalize_key(_primer_tokens(primer, codec))
        return tokens, -shift
    from . import codec as codec_mod
    from .keyplan import transpose_notes

    shift = codec.key_normalizing_shift(codec_mod.encode(primer, codec))
    pitched = primer.notes["pitch"][primer.notes["channel"] != 9].astype(np.int64)
    if not shift or (pitched.size and (pitched.min() + shift < 0 or pitched.max() + shift > 127)):
        return primer, 0
    return transpose_notes(copy.copy(primer), shift), -shift


def _shifted_range(pitch_range, semitones: int):
    """A pitch range request moved by ``semitones`` into the key the engine generates in
    (``keyplan``), clipped to MIDI's 0..127; None stays None."""
    if pitch_range is None or not semitones:
        return pitch_range
    from .engine.constraints import parse_pitch_range

    low, high = parse_pitch_range(pitch_range)
    return (min(max(low + semitones, 0), 127), min(max(high + semitones, 0), 127))


def _key_token(static, scale) -> int:
    """The header Key token of a major or minor key (a codec with key conditions)."""
    from .engine.constraints import parse_key

    mode = {"major": "major", "minor": "minor", "harmonic minor": "minor",
            "melodic minor": "minor"}.get(scale.mode)
    for i in static.block("Key_"):
        try:
            k = parse_key(static.names[i][len("Key_"):])
        except ValueError:
            continue
        if k.tonic == scale.tonic and k.mode == mode:
            return int(i)
    raise ValueError(f"key: {scale.name!r} has no Key token in this codec (its key conditions "
                     "are major and minor keys)")


def _density_token(codec, static, density) -> int:
    """The header Density token whose bin holds ``density`` notes per beat: the bins' lower
    edges (notes per beat x 1000) a codec gives as ``density_bounds_milli``, compared in
    integers as its encoder compares a piece's density."""
    bounds = getattr(codec, "density_bounds_milli", None)
    if bounds is None:
        raise ValueError("density: this model's codec does not say which Density token holds "
                         f"{density} notes per beat")
    target = int(round(float(density) * 1000))
    return int(static.block("Density_")[0]) + sum(1 for e in np.asarray(bounds).tolist()
                                                  if target >= e)


def _cap_primer(tokens: np.ndarray, limit, tables, grammar):
    """A primer longer than ``limit`` tokens continued from its end: BOS (and the header of a
    codec with bars) + the tokens from the earliest cut point that fits, where the rules'
    state of every kept note (part, place in the bar) is what it was. Returns (tokens,
    dropped tokens, beats dropped)."""
    from .engine.rules import RuleState, Rules, record

    if limit is None or tokens.size <= limit:
        return tokens, 0, 0.0
    rules = Rules(tables, ending="none")
    state = RuleState(tables)
    marks = []  # per token: the state before it (part, bar position, clock)
    for v in tokens.tolist():
        marks.append((state.cur_part, state.bar_pos, state.clock, state.bar_len))
        record(state, tables, rules, 0, 0, v, False)
    bars = np.flatnonzero(tables.is_bar[tokens])
    head = int(bars[0]) if tables.has_bars and bars.size else 1
    if tables.has_bars:
        cuts = bars[1:]
    else:
        time = tables.clock_steps[tokens] > 0
        note = tables.is_note[tokens].astype(bool)
        cuts = np.flatnonzero(note[1:] & time[:-1]) + 1
    for cut in cuts[cuts >= tokens.size - (limit - head)].tolist():
        kept = np.concatenate([tokens[:head], tokens[cut:]]).astype(np.int32)
        if _same_context(kept, head, tokens, cut, marks, tables, rules, grammar):
            beats = marks[cut][2] / tables.steps_per_beat
            return kept, int(cut - head), float(beats)
    raise ValueError(f"primer: {tokens.size} tokens, more than max_primer_tokens={limit}, and "
                     "no cut point within its last tokens keeps its music intact; raise "
                     "max_primer_tokens or use a shorter primer")


def _same_context(kept, head, tokens, cut, marks, tables, rules, grammar) -> bool:
    """Does the shortened primer decode its notes as the original did (same part, same bar
    position, same bar length) and leave the grammar and the rules where the original does?"""
    from .engine.rules import RuleState, record

    end_state = _walk(grammar, kept)
    if end_state is None or end_state != _walk(grammar, tokens):
        return False
    state = RuleState(tables)
    for i, v in enumerate(kept.tolist()):
        if i >= head and tables.is_note[v]:
            part, pos, _, bar_len = marks[cut + i - head]
            if state.cur_part != part or (tables.has_bars and (state.bar_pos, state.bar_len)
                                          != (pos, bar_len)):
                return False
        record(state, tables, rules, 0, 0, v, False)
    return True


def _walk(grammar, tokens):
    """The grammar state after ``tokens``, or None where the grammar refuses one."""
    state = int(grammar.start_state)
    for v in np.asarray(tokens).tolist():
        state = int(grammar.table[state, v])
        if state < 0:
            return None
    return state


def length_budget(amount: int, unit: str, tables, grace_steps: int = 0):
    """(engine length, engine unit, hard token cap) of a length (:func:`parse_length`). The caps
    are generous for music (a note takes 3-4 tokens) and leave room for the ending; they only
    stop a model that never reaches its ending, and memory follows the tokens actually made."""
    closing = 256 * (grace_steps // tables.steps_per_beat + 16) + 64
    if unit == "beats":
        return amount * tables.steps_per_beat, "steps", 256 * amount + 256 + closing
    if unit == "notes":
        return amount, "notes", 32 * amount + 64 + closing
    return amount, "tokens", amount + 64 + closing


def _draw_seed(seed):
    """The seed to use: the one given, or a fresh one (a 32-bit int, short to type back)."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint32)[0])
    return seed


def _end_clock(tokens, tables) -> int:
    """The clock (grid steps) after ``tokens``: TimeShift steps and Bar advances."""
    from .engine.rules import RuleState, Rules, record

    rules = Rules(tables, ending="none")
    state = RuleState(tables)
    for v in np.asarray(tokens).tolist():
        record(state, tables, rules, 0, 0, v, False)
    return state.clock


def _closed_tokens(tokens: np.ndarray, tables, grammar):
    """A stream that reached its closing point ends with the time advance that got there: drop
    it (and any before it), so the tokens end where the grammar may end, and add EOS."""
    adv = (tables.clock_steps[tokens] > 0) | (tables.is_bar[tokens] > 0)
    end = tokens.size
    while end > 1 and adv[end - 1]:
        end -= 1
    body = tokens[:end]
    if grammar.can_end[grammar.walk(body)]:
        body = np.concatenate([body, [tables.eos_id]])
    return body.astype(np.int32)


def _close_at(score: Score, end_tick: int) -> Score:
    """The piece ends at ``end_tick``: notes sounding at the last onset are held to it, and no
    note sounds past it."""
    notes = score.notes
    if notes.size == 0:
        return score
    last = int(notes["start"].max())
    notes = notes.copy()
    sounding = notes["end"] > last
    notes["end"][sounding] = max(end_tick, last)
    notes["end"] = np.minimum(notes["end"], max(end_tick, last))
    score.notes = notes
    return score


def _ticks(steps: int, codec, ticks_per_beat: int = 480) -> int:
    """Grid steps -> ticks as decode converts them (round half up)."""
    if codec.timing == "beats":
        num, den = ticks_per_beat, codec.steps_per_beat
    else:
        num, den = 1000 * codec.step_ms * ticks_per_beat, codec.tempo
    return (2 * steps * num + den) // (2 * den)


def generate(model=None, *, n: int = 1, length=DEFAULT_LENGTH, temperature=1.0, top_k=None,
             top_p=None, seed=None, primer=None, backend: str | None = None,
             threads: int | None = None, progress=None, precision: str | None = None,
             allow_early_end: bool = False, ending: str = "auto", grace: float = 4.0,
             key=None, scale_strictness: float | None = None, pitch_range=None,
             max_voices="auto", min_voices="auto", max_rest="auto",
             density: float | None = None, style=None,
             bpm: float | None = None, instruments=None, allowed_instruments=None,
             max_primer_tokens: int | None = DEFAULT_MAX_PRIMER_TOKENS, render=False) -> list:
    """Generate ``n`` pieces.

    Parameters
    ----------
    model : path, str, Engine or None
        A model directory (kind ``lstm_lm``), the name of a model shipped in the package
        (``musgen.modelzoo.shipped_models()``; an existing path of that name wins), a loaded
        Engine, or None for the default model shipped in the package.
    n : int
        Number of independent pieces (streams of one batch).
    length : int or str
        Budget of the generated part: an int (tokens) or "512 tokens", "64 notes", "32 beats"
        (see :func:`parse_length`). Each piece is at least that long.
    temperature : float or sequence of n
        Softmax temperature; 0 is greedy (argmax).
    top_k : int, sequence of n, or None
        Keep only the k most likely tokens (None or 0: off).
    top_p : float, sequence of n, or None
        Nucleus sampling: the most likely tokens whose mass reaches ``top_p`` (None or 1: off).
    seed : int, sequence of n ints, or None
        The Philox key; the same seed and settings give the same pieces on every backend.
        None draws a fresh seed (``generate_with_report`` tells which).
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
    allow_early_end : bool
        Let the model end a piece before its length (EOS is masked until the budget is met
        otherwise: the min_length rule).
    ending : {"auto", "beat", "bar", "model", "none"}
        After the budget: "beat" closes the piece at the next beat, "bar" at the next bar line
        (codecs with bars; "auto" picks it there, else "beat"): no time step past that point,
        the notes sounding at the last onset are held to it and every note is released there.
        "model" first gives the model ``grace`` beats to end the piece itself (EOS), then
        closes it the same way. "none": stop at the first point after the budget where the
        grammar may end (no closing; the behaviour before endings existed).
    grace : float
        Beats of the grace window of ``ending="model"``.
    key : str or None
        A key or scale, e.g. "D minor", "Bb", "F# dorian", "A harmonic minor"; with a codec
        that has key conditions its Key token is set too.
    scale_strictness : float in [0, 1] or None
        How strictly ``key`` holds: 1 (the default) masks out-of-scale pitches; below 1 they
        are only made less likely (a logit bias of 2 ln(1 - s): odds times (1 - s)^2).
    pitch_range : (low, high), "48-84", "C3-C6" or None
        Inclusive MIDI pitch range of pitched notes (drums are not affected).
    max_rest : float, "auto" or None
        The longest rest (beats with no note sounding) after the first note: no time step
        leaves a longer one, the closing point included. None: off. "auto" (the default): the
        model's default (see below); ``musgen train`` records the rest its corpus keeps to,
        the 95th percentile over the pieces of the longest rest in each (0 for the JSB
        Chorales, whose pieces almost never rest).
    max_voices : int, "auto" or None
        Most notes sounding at once (1..32); None: off; "auto": the model's default.
    min_voices : int, "auto" or None
        Fewest notes sounding from the first note on (1..32): no time step passes the point
        where fewer would sound, so the model adds notes first (with ``max_voices`` of the same
        value, a texture of exactly that many voices). None: off; "auto": the model's default.

    A model directory may carry defaults for ``max_rest``, ``max_voices`` and ``min_voices``
    (``config.json`` "generation"; :func:`generation_defaults`): "auto" takes them, a value
    given overrides them, None turns the rule off.
    density : float or None
        Target notes per beat: a logit bias on time steps pushes the running count toward it
        (and, with a codec that has density conditions, its Density token is set).
    style : str or None
        A style label of the model (codec version 2).
    bpm : float or None
        Tempo in beats per minute: the Tempo tokens are fixed to its bin (codec version 2).
    instruments : sequence of GM programs / names / "drums", or None
        The exact parts of the piece, in order (codec version 2): the piece starts with their
        Program tokens and the model adds no other part.
    allowed_instruments : sequence or None
        Instruments the model may choose its parts from (codec version 2).
    max_primer_tokens : int or None
        The longest primer used whole (default 4096 tokens); a longer one is continued from its
        last tokens, cut where a bar (or an onset) starts, with a GenerationWarning. None: no
        limit.
    render : bool or mapping
        Also synthesize each piece (FluidSynth and a General MIDI SoundFont): True with the
        defaults, or a mapping of :func:`musgen.render.render` options (``soundfont``,
        ``sample_rate``, ``tail``, ``normalize``).

    Returns
    -------
    list of n Score, or of n RenderedPiece (score, audio) with ``render``
        Every piece decodes: sampling is masked by the codec's grammar. Pieces cut by the
        token cap before their ending raise a GenerationWarning.
    """
    render_options = _render_options(render)
    result = generate_with_report(
        model, n=n, length=length, temperature=temperature, top_k=top_k, top_p=top_p,
        seed=seed, primer=primer, backend=backend, threads=threads, progress=progress,
        precision=precision, allow_early_end=allow_early_end, ending=ending, grace=grace,
        key=key, scale_strictness=scale_strictness, pitch_range=pitch_range,
        max_voices=max_voices, min_voices=min_voices, max_rest=max_rest, density=density,
        style=style, bpm=bpm, instruments=instruments,
        allowed_instruments=allowed_instruments, max_primer_tokens=max_primer_tokens)
    cut = [p.index for p in result.pieces if p.ended == "cut"]
    if cut:
        warnings.warn(f"generate: {len(cut)} of {len(result.pieces)} piece(s) were cut by the "
                      f"token cap before their ending (pieces {cut[:10]})", GenerationWarning,
                      stacklevel=2)
    if render_options is None:
        return result.scores
    from .render import render as render_score

    return [RenderedPiece(score, render_score(score, **render_options))
            for score in result.scores]


def generate_with_report(model=None, **kwargs) -> Generation:
    """:func:`generate` (same arguments), returning the pieces with the seed used, the settings
    and how each piece ended (:class:`Generation`)."""
    from . import codec as codec_mod
    from .engine.constraints import SCALE_STRICTNESS, Scale
    from .engine.rules import Rules
    from .keyplan import key_plan, transpose_notes

    opts = _options(**kwargs)
    engine = _load_model(model, opts["backend"], opts["precision"])
    if engine.kind != "lstm_lm":
        raise ValueError(f"generate: the model is of kind {engine.kind!r}; generate() samples "
                         "token models (kind 'lstm_lm')")
    codec = engine.codec
    if codec.vocab_size != engine.vocab_size:
        raise ModelFormatError(f"{engine.path}: the codec has {codec.vocab_size} tokens but the "
                               f"model's vocabulary is {engine.vocab_size}")
    amount, unit = parse_length(opts["length"])
    tables = token_tables(codec)
    grammar = codec_mod.grammar(codec)
    ending = _choose_ending(opts["ending"], tables)
    grace_steps = _grace_steps(opts["grace"], tables)
    strictness = SCALE_STRICTNESS if opts["scale_strictness"] is None \
        else opts["scale_strictness"]
    if opts["scale_strictness"] is not None and opts["key"] is None:
        raise ValueError("scale_strictness: give a key too (e.g. key='D minor')")
    defaults = generation_defaults(engine.config, engine.path)
    max_voices = _voices(opts["max_voices"], "max_voices", defaults)
    min_voices = _voices(opts["min_voices"], "min_voices", defaults)
    if max_voices and min_voices and min_voices > max_voices:
        raise ValueError(f"min_voices: {min_voices} is more than max_voices={max_voices}")
    max_rest = _max_rest_beats(opts["max_rest"], defaults)
    density = _optional_float(opts["density"], "density")
    bpm = _optional_float(opts["bpm"], "bpm")
    if opts["instruments"] is not None and opts["allowed_instruments"] is not None:
        raise ValueError("instruments and allowed_instruments: give one (an exact list, or the "
                         "set the model chooses from)")
    plan = key_plan(engine.config, opts["key"], primer=opts["primer"] is not None)
    # A key-normalized model continues its primer moved to C major / A minor: the pieces move
    # back by `back`, so the asked key and range move into that frame as well.
    primer, back = _normalized_primer(_load_primer(opts["primer"]), codec, engine.config)
    frame = plan.frame if plan.frame is None or not back else \
        Scale((plan.frame.tonic - back) % 12, plan.frame.mode)
    (allowed, bias), prefix = _static_arrays(
        codec, tables, key=frame, scale_strictness=strictness,
        pitch_range=_shifted_range(opts["pitch_range"], -(plan.shift + back)),
        style=opts["style"], density=density, bpm=bpm, instruments=opts["instruments"],
        allowed_instruments=opts["allowed_instruments"])
    prime, primer_note, skipped = _prepared_primer(primer, codec, tables, grammar, prefix,
                                                   opts["max_primer_tokens"])
    rules = Rules(tables, allow_early_end=bool(opts["allow_early_end"]), ending=ending,
                  grace_steps=grace_steps, allowed=allowed, bias=bias,
                  max_voices=max_voices or 0, min_voices=min_voices or 0,
                  density=density or 0.0,
                  max_rest_steps=rest_steps(max_rest, tables.steps_per_beat))
    budget, engine_unit, cap = length_budget(amount, unit, tables, grace_steps)
    seed = _draw_seed(opts["seed"])
    streams = engine.generate_tokens(
        opts["n"], primer=prime, length=budget, unit=engine_unit,
        temperature=opts["temperature"], top_k=opts["top_k"], top_p=opts["top_p"], seed=seed,
        grammar=grammar, eos_id=codec.eos_id, max_tokens=cap, threads=opts["threads"],
        progress=opts["progress"], rules=rules)
    # A Score primer is continued in its own tracks and time base (all of it, also when only
    # its last tokens were fed to the model).
    scores, pieces = decode_pieces(streams, prime, codec, backend=opts["backend"],
                                   primer_score=primer if isinstance(primer, Score) else None,
                                   primer_skipped=skipped)
    scores = [transpose_notes(score, plan.shift + back) for score in scores]
    settings = _settings_text(opts, ending, strictness)
    for name, value in (("max_voices", max_voices), ("min_voices", min_voices),
                        ("max_rest", max_rest)):
        if value is not None and _is_auto(opts[name]):
            settings[name] = f'"{value:g} (the model\'s)"'
        elif value is not None:
            settings[name] = value
    if plan.describe():
        settings["key_plan"] = f'"{plan.describe()}"'
    return Generation(scores=scores, pieces=pieces,
                      seed=[int(s) for s in seed] if np.ndim(seed) else int(seed),
                      settings=settings, model=_model_name(engine),
                      asked=f"{amount} {unit}", seed_drawn=opts["seed"] is None,
                      primer_note=primer_note)


_DEFAULTS = dict(n=1, length=DEFAULT_LENGTH, temperature=1.0, top_k=None, top_p=None, seed=None,
                 primer=None, backend=None, threads=None, progress=None, precision=None,
                 allow_early_end=False, ending="auto", grace=4.0, key=None,
                 scale_strictness=None, pitch_range=None, max_voices="auto",
                 min_voices="auto", max_rest="auto", density=None,
                 style=None, bpm=None, instruments=None, allowed_instruments=None,
                 max_primer_tokens=DEFAULT_MAX_PRIMER_TOKENS)


def _options(**kwargs) -> dict:
    unknown = sorted(set(kwargs) - set(_DEFAULTS))
    if unknown:
        raise TypeError(f"generate: unexpected keyword argument(s) {', '.join(unknown)}")
    opts = {**_DEFAULTS, **kwargs}
    limit = opts["max_primer_tokens"]
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 2):
        raise ValueError(f"max_primer_tokens: {limit!r}, expected an integer >= 2 (None: no "
                         "limit)")
    return opts


def _prepared_primer(primer, codec, tables, grammar, prefix, limit):
    """BOS + the primer's tokens (or BOS + the Program tokens of an exact instrument list),
    capped to ``limit`` tokens; a note on what the cap dropped, or None; and the grid steps
    the dropped tokens spanned."""
    if prefix:
        if primer is not None:
            raise ValueError("instruments: an exact instrument list starts a new piece; a primer "
                             "brings its own instruments (use one or the other)")
        return np.array([codec.bos_id] + list(prefix), np.int32), None, 0
    prime = _primer_tokens(primer, codec)
    kept, dropped, beats = _cap_primer(prime, limit, tables, grammar)
    if not dropped:
        return prime, None, 0
    note = (f"primer: {prime.size} tokens, more than max_primer_tokens={limit}: continuing from "
            f"its last {kept.size} tokens (from beat {beats:g}; {dropped} tokens left out)")
    warnings.warn(note, GenerationWarning, stacklevel=4)
    return kept, note, int(round(beats * tables.steps_per_beat))


def decode_pieces(streams, prime, codec, *, backend=None, primer_score=None,
                  primer_skipped: int = 0) -> tuple:
    """Decode the streams of ``Engine.generate_tokens`` (a ``TokenStreams``, generated after
    the primer tokens ``prime``) as :func:`generate` does: a stream that reached its closing
    point ends there, the notes sounding at its last onset held to it. With ``primer_score``
    (the Score whose encoding ``prime`` is, or the end of, ``primer_skipped`` grid steps
    after its start), each piece is that primer with its continuation added
    (:func:`continue_primer`). Returns (list of Score, list of PieceReport)."""
    from . import codec as codec_mod
    from .engine.rules import CLOSED, CUT, EOS_EARLY

    tables = token_tables(codec)
    grammar = codec_mod.grammar(codec)

    scores, pieces = [], []
    spb = tables.steps_per_beat
    decode_backend = backend if backend != "cuda" else None
    for i, gen in enumerate(streams):
        reason = int(streams.reasons[i])
        tokens = np.concatenate([prime, gen]).astype(np.int32)
        end_steps = _end_clock(tokens, tables)
        if reason == CLOSED:
            body = _closed_tokens(tokens, tables, grammar)
        else:
            body = tokens
            if body[-1] != codec.eos_id and grammar.can_end[grammar.walk(body)]:
                body = np.concatenate([body, [codec.eos_id]]).astype(np.int32)
        if primer_score is not None:
            score = continue_primer(primer_score, prime, body, codec, backend=decode_backend,
                                    end_step=end_steps if reason == CLOSED else None,
                                    skipped_steps=primer_skipped)
        else:
            score = codec_mod.decode(body, codec, backend=decode_backend)
            if reason == CLOSED:
                score = _close_at(score, _ticks(end_steps, codec, score.ticks_per_beat))
        scores.append(score)
        generated_steps = end_steps - _end_clock(prime, tables)
        pieces.append(PieceReport(
            index=i, ended="early" if reason == EOS_EARLY else "cut" if reason == CUT
            else "as asked", tokens=int(gen.size), notes=int(tables.is_note[gen].sum()),
            beats=generated_steps / spb, end_beat=end_steps / spb))
    return scores, pieces


def _settings_text(opts, ending, strictness) -> dict:
    """The settings that decide the pieces, as short strings (for reports and MIDI text)."""
    out = {}
    for name in ("temperature", "top_k", "top_p", "precision"):
        if opts[name] is not None and not (name == "precision" and opts[name] == "float32"):
            value = opts[name]
            out[name] = value if np.ndim(value) == 0 else list(np.asarray(value).tolist())
    out["ending"] = ending
    if ending == "model":
        out["grace"] = opts["grace"]
    if opts["allow_early_end"]:
        out["allow_early_end"] = True
    for name in ("key", "pitch_range", "density", "style", "bpm", "instruments",
                 "allowed_instruments"):
        if opts[name] is not None:
            value = opts[name]
            out[name] = value if isinstance(value, str) or np.ndim(value) == 0 \
                else list(value)
    if opts["key"] is not None:
        out["scale_strictness"] = strictness
    if opts["primer"] is not None:
        out["primer"] = os.fspath(opts["primer"]) if isinstance(opts["primer"],
                                                                 (str, os.PathLike)) else "given"
    return {k: (f'"{v}"' if isinstance(v, str) and " " in v else v) for k, v in out.items()}


def _model_name(engine) -> str:
    if engine.path is None:
        return "engine"
    if engine.path.resolve() == default_model_dir():
        return DEFAULT_ALIAS
    return engine.path.name


# ------------------------------------------------------------------------- primer continuation
def continue_primer(primer: Score, primer_tokens, tokens, config, *,
                    backend: str | None = None, end_step: int | None = None,
                    skipped_steps: int = 0) -> Score:
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

    ``end_step`` (grid steps from the start of ``tokens``) closes the piece there: the
    continuation's notes sounding at its last onset are held to it and none sounds past it.
    ``skipped_steps``: ``primer_tokens`` are BOS (and header) + the primer's encoding from that
    many grid steps on (a primer capped by ``max_primer_tokens``); the continuation comes that
    much later in the primer.
    """
    be = backend if backend != "cuda" else None
    full = _decode_in_steps(tokens, config, be)
    head = _decode_in_steps(primer_tokens, config, be)
    notes = _continuation_notes(full, head)
    if end_step is not None and notes.size:
        last = int(notes["start"].max())
        close = max(int(end_step), last)
        notes["end"][notes["end"] > last] = close
        notes["end"] = np.minimum(notes["end"], close)
    removed = _removed_steps(primer, config) + int(skipped_steps)
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
