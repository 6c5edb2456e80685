"""The token codec: Score <-> int32 token streams, its configuration, vocabulary and grammar.

One token stream per piece: ``BOS``, then for every note in onset order ``TimeShift*`` (only
when the onset moves), ``Pitch`` (or ``DrumPitch``), ``Velocity``, ``Duration+``, and ``EOS``.
The C++ core (``musgen._core``) and the pure-Python fallback (``musgen._pycodec``) give
identical tokens, notes and error messages; ``backend=`` picks one per call.

Representation choices (why):

* Grid: ``steps_per_beat=12`` by default. 12 is the smallest grid that holds 16ths (3 steps),
  8th triplets (4) and 16th triplets (2) exactly; 24 would add 32nds at the cost of twice as many
  TimeShift/Duration tokens for the same span. Any value 1..960 may be configured.
* Rounding: a tick becomes a step by round-half-up in integer arithmetic,
  ``step = (2 * tick * steps_per_beat + tpb) // (2 * tpb)``, so both backends agree exactly.
  Tempo changes are ignored in ``timing="beats"`` (the grid is in beats). With
  ``timing="seconds"`` the grid is ``step_ms`` milliseconds and ticks are converted through the
  tempo map exactly, in integers (microseconds x ticks_per_beat), for performance recordings.
* Gaps and durations longer than ``max_time_shift`` / ``max_duration`` steps are written as
  several tokens, greedy largest first (``100 -> 48, 48, 4``): the grammar only admits that
  canonical spelling, so every (gap, duration) has exactly one token sequence.
* A note's duration is ``round(end) - round(start)`` on the grid, at least 1 step (zero-length
  and very short notes become one step long).
* Pitch range: all of 0..127 by default. The 40 extra tokens beyond the piano's 21..108 cost
  nothing measurable, and chip tunes and synth basses use them; notes outside the configured
  range are dropped.
* Velocity: ``velocity_bins`` (a power of two, 32 by default) equal bins; decoding gives the bin
  centre (bin 17 of 32 -> 70). Velocity 0 counts as 1.
* Tracks and channels are merged into one stream; decoded notes are on track 0, channel 0.
* Drums (channel 9) are dropped by default. With ``keep_drums=True`` they become ``DrumPitch``
  tokens (own block, ``drum_pitch_range`` 27..87 = General MIDI 2 percussion) followed by the
  same Velocity/Duration tokens; decoded drums are on channel 9.
* Order within one onset: pitched notes by ascending pitch, then drums by ascending pitch. Two
  notes with the same (onset step, pitch) are merged into one: the longer one is kept (on a tie,
  the louder one), as MIDI cannot sound the same key twice at once anyway.
* Tempo is not tokenized: ``decode`` writes one tempo, the ``tempo=`` argument or the config's
  ``tempo`` (microseconds per beat, 120 BPM by default). ``quantize`` keeps the piece's first
  tempo, so a round trip is ``decode(encode(s), tempo=first tempo) == quantize(s)``.
* An encoding longer than ``MAX_TOKENS`` (2**25) tokens is refused with CodecError: only a
  damaged file (a tick far beyond the music) gets there, and it must not allocate without bound.
* Decoding a prefix that stops before EOS (generation hit its length limit) works: a trailing
  note without a Duration token is dropped; a note whose last Duration token is the longest one
  keeps the duration read so far.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from . import _backend
from ._pycodec import MAX_TOKENS
from .errors import CodecError
from .score import DEFAULT_TEMPO, NOTE_DTYPE, TEMPO_DTYPE, Score

__all__ = [
    "CodecConfig",
    "Grammar",
    "TYPE_SPECIAL",
    "TYPE_TIME",
    "TYPE_PITCH",
    "TYPE_VELOCITY",
    "TYPE_DURATION",
    "TYPE_DRUM_PITCH",
    "default_config",
    "grammar",
    "grammar_mask",
    "encode",
    "encode_many",
    "decode",
    "quantize",
    "paper_features",
    "paper_decode",
    "MAX_TOKENS",
]

#: Token types (``CodecConfig.token_types``). Drum pitches have their own type so that
#: transposition and pitch statistics leave them alone.
TYPE_SPECIAL = 0
TYPE_TIME = 1
TYPE_PITCH = 2
TYPE_VELOCITY = 3
TYPE_DURATION = 4
TYPE_DRUM_PITCH = 5

FORMAT = "musgen.codec"
FORMAT_VERSION = 1
DRUM_CHANNEL = 9
TIMINGS = ("beats", "seconds")
# Largest tick x rate product accepted, so that 2 * U + divisor stays inside int64 in both backends.
_MAX_UNITS = 1 << 61


@dataclass(frozen=True)
class CodecConfig:
    """Everything that defines the token vocabulary and the time grid (saved with every model).

    Attributes
    ----------
    timing : {"beats", "seconds"}
        Beat-relative grid (tempo ignored) or a grid of ``step_ms`` milliseconds.
    steps_per_beat : int
        Grid steps per quarter note (``timing="beats"``).
    step_ms : int
        Grid step in milliseconds (``timing="seconds"``).
    max_time_shift, max_duration : int
        Largest TimeShift / Duration token, in steps; longer spans use several tokens.
    pitch_range : (int, int)
        Inclusive MIDI pitch range of Pitch tokens.
    velocity_bins : int
        Number of Velocity tokens (a power of two, 1..64).
    keep_drums : bool
        Keep channel-9 notes as DrumPitch tokens (else they are dropped).
    drum_pitch_range : (int, int)
        Inclusive pitch range of DrumPitch tokens.
    tempo : int
        Microseconds per beat written into decoded scores.
    """

    timing: str = "beats"
    steps_per_beat: int = 12
    step_ms: int = 10
    max_time_shift: int = 48
    max_duration: int = 48
    pitch_range: tuple = (0, 127)
    velocity_bins: int = 32
    keep_drums: bool = False
    drum_pitch_range: tuple = (27, 87)
    tempo: int = DEFAULT_TEMPO

    def __post_init__(self) -> None:
        object.__setattr__(self, "pitch_range", _pair(self.pitch_range, "pitch_range"))
        object.__setattr__(self, "drum_pitch_range",
                           _pair(self.drum_pitch_range, "drum_pitch_range"))
        if self.timing not in TIMINGS:
            raise CodecError(f"CodecConfig.timing: expected one of {TIMINGS}, got {self.timing!r}")
        _check_int("steps_per_beat", self.steps_per_beat, 1, 960)
        _check_int("step_ms", self.step_ms, 1, 10_000)
        _check_int("max_time_shift", self.max_time_shift, 1, 10_000)
        _check_int("max_duration", self.max_duration, 1, 10_000)
        _check_int("velocity_bins", self.velocity_bins, 1, 64)
        if self.velocity_bins & (self.velocity_bins - 1):
            raise CodecError(f"CodecConfig.velocity_bins: expected a power of two (1..64), "
                             f"got {self.velocity_bins}")
        if not isinstance(self.keep_drums, bool):
            raise CodecError(f"CodecConfig.keep_drums: expected a bool, got {self.keep_drums!r}")
        _check_int("tempo", self.tempo, 1, 0xFFFFFF)
        for name in ("pitch_range", "drum_pitch_range"):
            lo, hi = getattr(self, name)
            if not (0 <= lo <= hi <= 127):
                raise CodecError(f"CodecConfig.{name}: expected 0 <= low <= high <= 127, "
                                 f"got ({lo}, {hi})")

    # ------------------------------------------------------------------ vocabulary layout
    # Order: PAD, BOS, EOS, TimeShift_1.., Pitch_lo.., [DrumPitch_lo..], Velocity_0.., Duration_1..
    pad_id = 0
    bos_id = 1
    eos_id = 2

    @property
    def time_base(self) -> int:
        """Id of TimeShift_1 (TimeShift_k is ``time_base + k - 1``)."""
        return 3

    @property
    def pitch_base(self) -> int:
        """Id of Pitch_<pitch_range[0]>."""
        return self.time_base + self.max_time_shift

    @property
    def n_pitches(self) -> int:
        return self.pitch_range[1] - self.pitch_range[0] + 1

    @property
    def drum_base(self) -> int:
        """Id of DrumPitch_<drum_pitch_range[0]> (== velocity_base without drums)."""
        return self.pitch_base + self.n_pitches

    @property
    def n_drums(self) -> int:
        return self.drum_pitch_range[1] - self.drum_pitch_range[0] + 1 if self.keep_drums else 0

    @property
    def velocity_base(self) -> int:
        return self.drum_base + self.n_drums

    @property
    def duration_base(self) -> int:
        """Id of Duration_1."""
        return self.velocity_base + self.velocity_bins

    @property
    def vocab_size(self) -> int:
        return self.duration_base + self.max_duration

    @property
    def velocity_shift(self) -> int:
        """bin = velocity >> velocity_shift."""
        return 7 - (self.velocity_bins.bit_length() - 1)

    @cached_property
    def token_names(self) -> list:
        lo, hi = self.pitch_range
        dlo, dhi = self.drum_pitch_range
        names = ["PAD", "BOS", "EOS"]
        names += [f"TimeShift_{k}" for k in range(1, self.max_time_shift + 1)]
        names += [f"Pitch_{p}" for p in range(lo, hi + 1)]
        if self.keep_drums:
            names += [f"DrumPitch_{p}" for p in range(dlo, dhi + 1)]
        names += [f"Velocity_{b}" for b in range(self.velocity_bins)]
        names += [f"Duration_{k}" for k in range(1, self.max_duration + 1)]
        return names

    @cached_property
    def token_types(self) -> np.ndarray:
        """np.uint8 [vocab]: TYPE_* of every token id."""
        t = np.full(self.vocab_size, TYPE_SPECIAL, dtype=np.uint8)
        t[self.time_base:self.pitch_base] = TYPE_TIME
        t[self.pitch_base:self.drum_base] = TYPE_PITCH
        t[self.drum_base:self.velocity_base] = TYPE_DRUM_PITCH
        t[self.velocity_base:self.duration_base] = TYPE_VELOCITY
        t[self.duration_base:] = TYPE_DURATION
        t.setflags(write=False)
        return t

    @cached_property
    def token_steps(self) -> np.ndarray:
        """np.int32 [vocab]: grid steps a token advances the clock (TimeShift_k -> k, else 0)."""
        s = np.zeros(self.vocab_size, dtype=np.int32)
        s[self.time_base:self.pitch_base] = np.arange(1, self.max_time_shift + 1)
        s.setflags(write=False)
        return s

    @cached_property
    def token_durations(self) -> np.ndarray:
        """np.int32 [vocab]: grid steps a Duration token adds to its note (0 for other tokens)."""
        s = np.zeros(self.vocab_size, dtype=np.int32)
        s[self.duration_base:] = np.arange(1, self.max_duration + 1)
        s.setflags(write=False)
        return s

    def token_id(self, name: str) -> int:
        """Id of a token name such as ``"Pitch_60"``; CodecError if there is none."""
        try:
            return self._name_to_id[name]
        except KeyError:
            raise CodecError(f"no token named {name!r} in this vocabulary "
                             f"({self.vocab_size} tokens)") from None

    @cached_property
    def _name_to_id(self) -> dict:
        return {n: i for i, n in enumerate(self.token_names)}

    def describe(self, tokens) -> list:
        """Token names of a sequence (for messages and debugging)."""
        names = self.token_names
        return [names[int(t)] if 0 <= int(t) < len(names) else f"<{int(t)}?>" for t in tokens]

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict:
        """A JSON-serializable dict with every parameter and the vocabulary's token names."""
        d: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        d["vocab_size"] = self.vocab_size
        d["vocabulary"] = list(self.token_names)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Any) -> "CodecConfig":
        """Rebuild and validate a config saved by ``to_dict``.

        Raises CodecError when the dict is not a codec config, has unknown or mistyped keys, or
        its saved vocabulary differs from the one its parameters produce.
        """
        if not isinstance(d, dict):
            raise CodecError(f"codec config: expected a dict, got {type(d).__name__}")
        if d.get("format", FORMAT) != FORMAT:
            raise CodecError(f"codec config: format is {d.get('format')!r}, expected {FORMAT!r}")
        version = d.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise CodecError(f"codec config: format_version {version!r} is not supported "
                             f"(this musgen reads version {FORMAT_VERSION})")
        names = {f.name for f in fields(cls)}
        extra = sorted(set(d) - names - {"format", "format_version", "vocab_size", "vocabulary"})
        if extra:
            raise CodecError(f"codec config: unknown keys {extra}; expected a subset of "
                             f"{sorted(names)}")
        kwargs = {k: d[k] for k in names if k in d}
        for k in ("pitch_range", "drum_pitch_range"):
            if k in kwargs and isinstance(kwargs[k], list):
                kwargs[k] = tuple(kwargs[k])
        try:
            cfg = cls(**kwargs)
        except CodecError as exc:
            raise CodecError(f"codec config: {exc}") from None
        if "vocab_size" in d and d["vocab_size"] != cfg.vocab_size:
            raise CodecError(f"codec config: vocab_size is {d['vocab_size']!r} but the "
                             f"parameters give {cfg.vocab_size}")
        if "vocabulary" in d:
            saved = d["vocabulary"]
            if not isinstance(saved, list) or list(saved) != cfg.token_names:
                first = _first_difference(saved, cfg.token_names)
                raise CodecError(
                    "codec config: the saved vocabulary does not match the one its parameters "
                    f"produce ({first})")
        return cfg

    @classmethod
    def from_json(cls, text: str) -> "CodecConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CodecError(f"codec config: not valid JSON ({exc})") from None
        return cls.from_dict(d)

    # ------------------------------------------------------------------ augmentation
    def transpose(self, tokens, semitones: int) -> np.ndarray | None:
        """Shift every Pitch token by ``semitones`` (DrumPitch tokens stay).

        Returns a new int32 array, or None when a pitch would leave ``pitch_range``. The result
        obeys the grammar whenever the input does (order within a chord is kept).
        """
        tok = np.asarray(tokens)
        out = tok.astype(np.int32, copy=True)
        if semitones == 0:
            return out
        is_pitch = (tok >= self.pitch_base) & (tok < self.drum_base)
        moved = out[is_pitch] + np.int32(semitones)
        if moved.size and (moved.min() < self.pitch_base or moved.max() >= self.drum_base):
            return None
        out[is_pitch] = moved
        return out


def _pair(v, name):
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) for x in v):
        return (int(v[0]), int(v[1]))
    raise CodecError(f"CodecConfig.{name}: expected a (low, high) pair of ints, got {v!r}")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_int(name, v, lo, hi):
    if not _is_int(v) or not (lo <= v <= hi):
        raise CodecError(f"CodecConfig.{name}: expected an int in [{lo}, {hi}], got {v!r}")


def _first_difference(saved, expected) -> str:
    if not isinstance(saved, list):
        return f"expected a list of {len(expected)} names, got {type(saved).__name__}"
    for i, (a, b) in enumerate(zip(saved, expected)):
        if a != b:
            return f"token {i} is {a!r}, expected {b!r}"
    return f"{len(saved)} names saved, {len(expected)} expected"


def default_config(**overrides) -> CodecConfig:
    """The default config, with overrides. ``timing="seconds"`` also defaults both maxima to
    100 steps (one second at 10 ms) unless they are given."""
    if overrides.get("timing") == "seconds":
        overrides.setdefault("max_time_shift", 100)
        overrides.setdefault("max_duration", 100)
    return CodecConfig(**overrides)


# ---------------------------------------------------------------------------------- grammar
@dataclass(frozen=True, eq=False)
class Grammar:
    """The token grammar as a deterministic finite automaton.

    Attributes
    ----------
    table : np.int32 [n_states, vocab]
        Next state after a token, -1 where the token is forbidden.
    start_state : int
        The state before the first token (only BOS is allowed there).
    can_end : np.bool_ [n_states]
        EOS is allowed: the tokens so far decode to a complete score. After EOS (state
        ``S_END``) only PAD may follow, and can_end is False there.
    state_names : list of str
        One per state, for debugging ("onset 0", "after Pitch_60 Velocity", ...).

    Every sequence the automaton accepts, and every prefix of one, decodes without error; and
    a complete sequence is a fixed point: ``encode(decode(tokens)) == tokens``.
    """

    table: np.ndarray
    start_state: int
    can_end: np.ndarray
    config: CodecConfig
    state_names: list = field(default_factory=list)

    @property
    def n_states(self) -> int:
        return int(self.table.shape[0])

    def mask(self, state: int) -> np.ndarray:
        """bool [vocab]: the tokens allowed in ``state``."""
        return self.table[state] >= 0

    grammar_mask = mask

    def walk(self, tokens) -> int:
        """The state after ``tokens`` from ``start_state``; CodecError at the first violation."""
        state = self.start_state
        table = self.table
        vocab = table.shape[1]
        for pos, t in enumerate(np.asarray(tokens).tolist()):
            nxt = table[state, t] if 0 <= t < vocab else -1
            if nxt < 0:
                raise CodecError(_violation_message(self.config, table, state, pos, t))
            state = int(nxt)
        return state


# State numbering (same in the C++ decoder, which receives the table).
S_START, S_END, S_ONSET0, S_SHIFTED, S_SHIFTED_MAX = 0, 1, 2, 3, 4
_N_FIXED = 5  # then for every pitch code c: NOTE_PITCH, NOTE_VELOCITY, NOTE_DURATION_MAX, DONE


def grammar(config: CodecConfig | None = None) -> Grammar:
    """The grammar of ``config`` (cached per config)."""
    config = config or default_config()
    return _grammar_cached(config)


_GRAMMARS: dict = {}


def _grammar_cached(config: CodecConfig) -> Grammar:
    g = _GRAMMARS.get(config)
    if g is None:
        g = _build_grammar(config)
        if len(_GRAMMARS) > 32:
            _GRAMMARS.clear()
        _GRAMMARS[config] = g
    return g


def _build_grammar(c: CodecConfig) -> Grammar:
    """States: START, END (after EOS: only PAD), ONSET0 (after BOS: nothing sounded yet),
    SHIFTED (after a TimeShift shorter than the longest: a note must follow), SHIFTED_MAX (after
    the longest TimeShift: more time or a note), and for each pitch code c (pitched pitches,
    then drums) PITCH_c, VELOCITY_c, DURMAX_c (after the longest Duration: more duration or
    the note is done) and DONE_c (note done; a later note at this onset needs a higher code)."""
    n_codes = c.n_pitches + c.n_drums
    n_states = _N_FIXED + 4 * n_codes
    V = c.vocab_size
    T = np.full((n_states, V), -1, dtype=np.int32)
    tb, M = c.time_base, c.max_time_shift
    db, D = c.duration_base, c.max_duration
    codes = np.arange(n_codes)
    note_ids = c.pitch_base + codes  # pitch and drum blocks are contiguous, in code order
    PITCH = _N_FIXED + 4 * codes
    VEL, DURMAX, DONE = PITCH + 1, PITCH + 2, PITCH + 3

    def time_and_notes(rows, lowest_code):
        """Rows where a TimeShift or a note (code >= lowest_code) may come."""
        rows = np.atleast_1d(rows)
        for r, low in zip(rows.tolist(), np.broadcast_to(lowest_code, rows.shape).tolist()):
            T[r, tb:tb + M - 1] = S_SHIFTED
            T[r, tb + M - 1] = S_SHIFTED_MAX
            T[r, note_ids[low:]] = PITCH[low:]

    T[S_START, c.bos_id] = S_ONSET0
    T[S_END, c.pad_id] = S_END
    time_and_notes(S_ONSET0, 0)
    T[S_ONSET0, c.eos_id] = S_END
    T[S_SHIFTED, note_ids] = PITCH
    time_and_notes(S_SHIFTED_MAX, 0)
    T[PITCH[:, None], np.arange(c.velocity_base, c.duration_base)[None, :]] = VEL[:, None]
    for rows in (VEL, DURMAX):
        T[rows[:, None], np.arange(db, db + D - 1)[None, :]] = DONE[:, None]
        T[rows, db + D - 1] = DURMAX
    for rows in (DURMAX, DONE):
        time_and_notes(rows, np.minimum(codes + 1, n_codes))
        T[rows, c.eos_id] = S_END
    # A note code c+1 beyond the last code: time_and_notes(…, n_codes) allows no note, as wanted.
    can_end = np.zeros(n_states, dtype=bool)
    can_end[[S_ONSET0]] = True
    can_end[DURMAX] = True
    can_end[DONE] = True
    names = ["start", "end", "onset 0", "after TimeShift", "after longest TimeShift"]
    tn = c.token_names
    for k in range(n_codes):
        p = tn[note_ids[k]]
        names += [f"after {p}", f"after {p} Velocity", f"after {p} longest Duration",
                  f"after note {p}"]
    T.setflags(write=False)
    can_end.setflags(write=False)
    return Grammar(table=T, start_state=S_START, can_end=can_end, config=c, state_names=names)


def grammar_mask(g: Grammar, state: int) -> np.ndarray:
    """bool [vocab]: the tokens allowed in ``state`` of grammar ``g``."""
    return g.mask(state)


def _allowed_runs(config: CodecConfig, row: np.ndarray) -> str:
    """The allowed tokens of one table row as runs of names ("TimeShift_1..TimeShift_48, EOS")."""
    ids = np.flatnonzero(row >= 0)
    if ids.size == 0:
        return "nothing"
    types = config.token_types
    names = config.token_names
    parts = []
    start = prev = int(ids[0])
    for i in list(ids[1:].tolist()) + [None]:
        if i is not None and i == prev + 1 and types[i] == types[prev] and types[i] != TYPE_SPECIAL:
            prev = i
            continue
        parts.append(names[start] if start == prev else f"{names[start]}..{names[prev]}")
        if i is not None:
            start = prev = i
    return ", ".join(parts)


def _violation_message(config: CodecConfig, table, state, pos, token) -> str:
    """The one wording of a grammar violation (the C++ decoder builds the same string)."""
    V = table.shape[1]
    if not (0 <= token < V):
        return (f"decode: token {token} at position {pos} is outside the vocabulary "
                f"(ids 0..{V - 1})")
    tname = config.token_names[token]
    allowed = _allowed_runs(config, table[state])
    return (f"decode: token {token} ({tname}) at position {pos} is not allowed here; "
            f"allowed: {allowed}")


# ---------------------------------------------------------------------------------- time base
def _time_base(score: Score, config: CodecConfig):
    """Integer map from ticks to grid steps shared by both backends.

    Returns (seg_ticks int64 [S], seg_rates int64 [S], divisor): with ``i`` the last segment
    whose tick <= t, ``U(t) = cum_i + (t - seg_ticks[i]) * seg_rates[i]`` and
    ``step = (2 U + divisor) // (2 divisor)`` (round half up). ``cum_0 = 0``.
    """
    if config.timing == "beats":
        if score.smpte is None:
            return (*_beat_segments(config.steps_per_beat), int(score.ticks_per_beat))
        # SMPTE files have no beat: count one beat per half second (120 BPM).
        fps100, tpf = _smpte(score)
        return (np.zeros(1, np.int64), np.array([config.steps_per_beat * 200], np.int64),
                fps100 * tpf)
    unit = 1000 * config.step_ms
    if score.smpte is not None:
        fps100, tpf = _smpte(score)
        return np.zeros(1, np.int64), np.array([100_000_000], np.int64), fps100 * tpf * unit
    tempos = np.asarray(score.tempos)
    keep = tempos["tick"] > 0
    ticks = np.concatenate([[0], tempos["tick"][keep].astype(np.int64)])
    rates = np.concatenate([[DEFAULT_TEMPO], tempos["tempo"][keep].astype(np.int64)])
    at_zero = tempos["tempo"][~keep]
    if at_zero.size:
        rates[0] = int(at_zero[-1])  # events at tick 0 (or before) replace the default
    last = np.ones(ticks.shape[0], dtype=bool)
    last[:-1] = ticks[1:] != ticks[:-1]  # several events on one tick: the last one wins
    return ticks[last], rates[last], int(score.ticks_per_beat) * unit


_BEAT_SEGMENTS: dict = {}


def _beat_segments(steps_per_beat: int):
    """(seg_ticks, seg_rates) of a beat grid: one segment, made once (read-only)."""
    seg = _BEAT_SEGMENTS.get(steps_per_beat)
    if seg is None:
        seg = (np.zeros(1, np.int64), np.array([steps_per_beat], np.int64))
        for a in seg:
            a.setflags(write=False)
        _BEAT_SEGMENTS[steps_per_beat] = seg
    return seg


def _smpte(score: Score):
    fps, tpf = score.smpte
    return int(round(float(fps) * 100)), int(tpf)


def _prepare(score: Score, config: CodecConfig, where: str = "encode", check: bool = True):
    """(notes in the C layout, seg_ticks, seg_rates, divisor) after the checks the encoder relies
    on: no negative tick, no int64 overflow; tempo segments after the last note are cut. The C++
    encoder makes the same checks with the same messages itself (``check=False``)."""
    if not isinstance(score, Score):
        raise CodecError(f"{where}: expected a musgen.Score, got {type(score).__name__}")
    seg_ticks, seg_rates, divisor = _time_base(score, config)
    notes = np.ascontiguousarray(score.notes, dtype=NOTE_DTYPE)
    if not check:
        return notes, seg_ticks, seg_rates, int(divisor)
    if divisor <= 0:
        raise CodecError(f"{where}: the score's time division gives {divisor} units per step "
                         "(ticks_per_beat must be positive)")
    hi = 0
    if notes.size:
        lo = min(int(notes["start"].min()), int(notes["end"].min()))
        if lo < 0:
            raise CodecError(f"{where}: the score has a note at negative tick {lo}")
        hi = max(int(notes["start"].max()), int(notes["end"].max()))
    n_seg = max(1, int(np.searchsorted(seg_ticks, hi, side="right")))
    seg_ticks = np.ascontiguousarray(seg_ticks[:n_seg], dtype=np.int64)
    seg_rates = np.ascontiguousarray(seg_rates[:n_seg], dtype=np.int64)
    if hi * int(seg_rates.max()) > _MAX_UNITS:
        raise CodecError(f"{where}: tick {hi} is too large to convert to grid steps without "
                         "overflow")
    return notes, seg_ticks, seg_rates, int(divisor)


# ---------------------------------------------------------------------------------- facade
def _c_params(c: CodecConfig) -> tuple:
    """The vocabulary parameters the C++ core takes, in its order."""
    return (c.max_time_shift, c.max_duration, c.pitch_range[0], c.pitch_range[1], c.keep_drums,
            c.drum_pitch_range[0], c.drum_pitch_range[1], c.velocity_bins)


def encode(score: Score, config: CodecConfig | None = None, *,
           backend: str | None = None) -> np.ndarray:
    """Tokens of one score: int32 [n], BOS first and EOS last.

    Parameters
    ----------
    score : Score
    config : CodecConfig, optional (default_config())
    backend : "cpp", "python", "auto" or None (MUSGEN_BACKEND)
    """
    config = config or default_config()
    if _backend.resolve(backend) == "cpp":
        notes, seg_ticks, seg_rates, divisor = _prepare(score, config, check=False)
        return _backend.core().codec_encode(notes, seg_ticks, seg_rates, divisor,
                                            _c_params(config))
    notes, seg_ticks, seg_rates, divisor = _prepare(score, config)
    from . import _pycodec

    return _pycodec.encode_notes(notes, seg_ticks, seg_rates, divisor, config)


def encode_many(scores: Sequence[Score], config: CodecConfig | None = None, *,
                threads: int | None = None, backend: str | None = None) -> list:
    """Tokens of many scores (a list of int32 arrays, in order).

    With the C++ backend the scores are encoded on ``threads`` threads (default: all cores)
    with the GIL released.
    """
    config = config or default_config()
    if threads is not None and (not _is_int(threads) or threads < 1):
        raise ValueError(f"encode_many: threads must be a positive int or None, got {threads!r}")
    cpp = _backend.resolve(backend) == "cpp"
    prepared = []
    for i, s in enumerate(scores):
        try:
            prepared.append(_prepare(s, config, check=not cpp))
        except CodecError as exc:
            raise CodecError(f"encode_many: score {i}: {exc}") from None
    if cpp:
        n = threads if threads is not None else (os.cpu_count() or 1)
        return _backend.core().codec_encode_many(prepared, _c_params(config), int(n))
    from . import _pycodec

    return [_pycodec.encode_notes(*p, config) for p in prepared]


def _decode_scale(config: CodecConfig, ticks_per_beat: int, tempo: int):
    """(num, den): tick = (2 * step * num + den) // (2 * den)."""
    if config.timing == "beats":
        return ticks_per_beat, config.steps_per_beat
    return 1000 * config.step_ms * ticks_per_beat, tempo


def decode(tokens, config: CodecConfig | None = None, *, backend: str | None = None,
           ticks_per_beat: int = 480, tempo: int | None = None) -> Score:
    """The score of a token sequence (complete, or a grammar-valid prefix).

    Notes are on track 0, channel 0 (drums: channel 9), at ``ticks_per_beat``; the score gets
    one tempo, ``tempo`` or ``config.tempo`` (microseconds per beat). Raises CodecError naming
    the position and the token at the first grammar violation; tokens after EOS may only be PAD.
    Exact on the grid when ``ticks_per_beat`` is a multiple of ``steps_per_beat``.
    """
    config = config or default_config()
    if not _is_int(ticks_per_beat) or not (1 <= ticks_per_beat <= 0x7FFF):
        raise CodecError(f"decode: ticks_per_beat must be an int in [1, 32767], "
                         f"got {ticks_per_beat!r}")
    tempo = config.tempo if tempo is None else tempo
    if not _is_int(tempo) or not (1 <= tempo <= 0xFFFFFF):
        raise CodecError(f"decode: tempo must be microseconds per beat in [1, 16777215], "
                         f"got {tempo!r}")
    tok = np.asarray(tokens)
    if tok.ndim != 1 or not (tok.size == 0 or np.issubdtype(tok.dtype, np.integer)):
        raise CodecError(f"decode: expected a 1-D integer array of token ids, got shape "
                         f"{tok.shape} dtype {tok.dtype}")
    tok = np.ascontiguousarray(tok, dtype=np.int64)
    if tok.size and (tok.min() < -(1 << 31) or tok.max() >= (1 << 31)):
        # not an int32: report it, unless an earlier token already breaks the grammar
        bad = int(np.flatnonzero((tok < -(1 << 31)) | (tok >= (1 << 31)))[0])
        grammar(config).walk(tok[:bad])
        raise CodecError(_violation_message(config, grammar(config).table, 0, bad, int(tok[bad])))
    tok = tok.astype(np.int32)
    g = grammar(config)
    num, den = _decode_scale(config, int(ticks_per_beat), int(tempo))
    if _backend.resolve(backend) == "cpp":
        notes = _backend.core().codec_decode(tok, g.table, g.start_state, _c_params(config),
                                             num, den)
    else:
        from . import _pycodec

        notes = _pycodec.decode_tokens(tok, g, config, num, den)
    return Score(notes=notes, ticks_per_beat=int(ticks_per_beat),
                 tempos=np.array([(0, int(tempo))], dtype=TEMPO_DTYPE), track_names=[""],
                 format=0)


# ---------------------------------------------------------------------------------- reference
def quantize(score: Score, config: CodecConfig | None = None, *, ticks_per_beat: int = 480
             ) -> Score:
    """What ``decode(encode(score))`` must give, computed note by note without tokens.

    Drops drums (unless kept) and out-of-range pitches, puts times on the grid, bins velocities,
    merges same (onset, pitch) notes, and keeps the first tempo of the piece (the test oracle
    for round trips; call decode with ``tempo=`` that tempo).
    """
    config = config or default_config()
    notes, seg_ticks, seg_rates, divisor = _prepare(score, config, "quantize")
    from . import _pycodec

    on, dur, code, vel = _pycodec.note_steps(notes, seg_ticks, seg_rates, divisor, config)
    first = _pycodec.first_tempo(score, config)
    num, den = _decode_scale(config, ticks_per_beat, first)
    out = np.zeros(on.shape[0], dtype=NOTE_DTYPE)
    is_drum = code >= config.n_pitches
    out["channel"] = np.where(is_drum, DRUM_CHANNEL, 0)
    out["pitch"] = np.where(is_drum, code - config.n_pitches + config.drum_pitch_range[0],
                            code + config.pitch_range[0])
    s = config.velocity_shift
    out["velocity"] = (vel.astype(np.int64) << s) + ((1 << s) >> 1)
    out["start"] = (2 * on * num + den) // (2 * den)
    out["end"] = (2 * (on + dur) * num + den) // (2 * den)
    order = np.lexsort((out["end"], out["pitch"], out["channel"], out["start"]))
    return Score(notes=out[order], ticks_per_beat=ticks_per_beat,
                 tempos=np.array([(0, first)], dtype=TEMPO_DTYPE), track_names=[""], format=0)


# ---------------------------------------------------------------------------------- paper preset
def paper_features(score: Score, *, keep_drums: bool = False) -> np.ndarray:
    """The seed paper's note features: float32 [n_notes, 3] = (pitch, velocity, seconds since
    the previous note's onset, 0 for the first). Notes in (onset, pitch) order; drums excluded
    unless ``keep_drums``."""
    notes = np.asarray(score.notes)
    # Index the three fields separately: reordering whole padded rows costs twice as much.
    start, pitch, velocity = notes["start"], notes["pitch"], notes["velocity"]
    if not keep_drums:
        keep = notes["channel"] != DRUM_CHANNEL
        start, pitch, velocity = start[keep], pitch[keep], velocity[keep]
    order = np.lexsort((pitch, start))
    out = np.zeros((start.shape[0], 3), dtype=np.float32)
    if start.shape[0] == 0:
        return out
    out[:, 0] = pitch[order]
    out[:, 1] = velocity[order]
    out[1:, 2] = np.diff(score.ticks_to_seconds(start[order]))
    return out


def paper_decode(features, *, ticks_per_beat: int = 480, tempo: int = DEFAULT_TEMPO) -> Score:
    """A score from paper features (float [n, 3]: pitch, velocity, onset delta in seconds).

    Pitch and velocity are rounded and clipped to 0..127 and 1..127, negative deltas count as 0.
    The paper has no durations: a note lasts until the next later onset, at least a 16th
    (``ticks_per_beat // 4``, 1 tick minimum) and at most 4 beats; the last onset lasts one beat.
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != 3:
        raise CodecError(f"paper_decode: expected features of shape [n, 3], got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise CodecError("paper_decode: features contain NaN or infinity")
    if not _is_int(ticks_per_beat) or ticks_per_beat <= 0 or not _is_int(tempo) or tempo <= 0:
        raise CodecError(f"paper_decode: ticks_per_beat and tempo must be positive ints, got "
                         f"{ticks_per_beat!r}, {tempo!r}")
    n = f.shape[0]
    onset_sec = np.cumsum(np.maximum(f[:, 2], 0.0))
    start = np.rint(onset_sec * 1e6 * ticks_per_beat / tempo).astype(np.int64)
    # next strictly later onset of each note (chords share one)
    uniq = np.unique(start)
    nxt_idx = np.searchsorted(uniq, start, side="right")
    has_next = nxt_idx < uniq.size
    nxt = np.where(has_next, uniq[np.minimum(nxt_idx, uniq.size - 1)], start + ticks_per_beat)
    sixteenth = max(1, ticks_per_beat // 4)
    dur = np.clip(nxt - start, sixteenth, 4 * ticks_per_beat)
    notes = np.zeros(n, dtype=NOTE_DTYPE)
    notes["pitch"] = np.clip(np.rint(f[:, 0]), 0, 127).astype(np.uint8)
    notes["velocity"] = np.clip(np.rint(f[:, 1]), 1, 127).astype(np.uint8)
    notes["start"] = start
    notes["end"] = start + dur
    order = np.lexsort((notes["end"], notes["pitch"], notes["start"]))
    return Score(notes=notes[order], ticks_per_beat=int(ticks_per_beat),
                 tempos=np.array([(0, int(tempo))], dtype=TEMPO_DTYPE), track_names=[""],
                 format=0)
