"""``token_tables(config)``: the per-token arrays an engine needs to follow the music while it
samples (clock, notes, pitches, durations, bars, parts, programs, tempos), one code path for
both codec versions: version 1 fills what it has and leaves the rest neutral."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import CodecConfig, default_config
from .names import DRUMS

__all__ = ["TokenTables", "token_tables"]


@dataclass(frozen=True, eq=False)
class TokenTables:
    """Read-only per-token tables of one codec configuration (every array has length V, the
    vocabulary size).

    Attributes
    ----------
    clock_steps : int32 [V]
        Grid steps a token advances the clock (TimeShift_k -> k; 0 otherwise; a Bar advances
        to the next bar line, see ``is_bar``).
    is_note : uint8 [V]
        1 for tokens that start a note (Pitch, DrumPitch).
    pitch : int16 [V]
        MIDI pitch of a Pitch token, -1 otherwise (DrumPitch tokens too: drums have no key).
    duration : int32 [V]
        Grid steps a Duration token adds to its note, 0 otherwise.
    is_bar : uint8 [V]
        1 for the Bar token (version 2).
    bar_steps : int32 [V]
        A TimeSig token: the bar length it sets from its bar on, in grid steps; 0 otherwise.
    part : int16 [V]
        Part_i -> i, -1 otherwise.
    program : int16 [V]
        A header Program token -> 0..127, 128 for drums; -1 otherwise.
    tempo_bpm : float32 [V]
        A Tempo token -> its bin's BPM; 0 otherwise.
    steps_per_beat : int
        Grid steps of a beat (seconds timing: of a beat at the config's tempo).
    default_bar_steps : int
        Version 2: the bar length (4/4) until a TimeSig token says otherwise; version 1: 0
        (no bars).
    eos_id, bos_id : int
    """

    clock_steps: np.ndarray
    is_note: np.ndarray
    pitch: np.ndarray
    duration: np.ndarray
    is_bar: np.ndarray
    bar_steps: np.ndarray
    part: np.ndarray
    program: np.ndarray
    tempo_bpm: np.ndarray
    steps_per_beat: int
    default_bar_steps: int
    eos_id: int
    bos_id: int

    _DTYPES = {"clock_steps": np.int32, "is_note": np.uint8, "pitch": np.int16,
               "duration": np.int32, "is_bar": np.uint8, "bar_steps": np.int32,
               "part": np.int16, "program": np.int16, "tempo_bpm": np.float32}

    @classmethod
    def of(cls, source) -> "TokenTables":
        """Tables from a mapping or an object with these names (tables of a codec are returned
        as they are), checked: equal lengths, the right dtypes, no negative steps."""
        if isinstance(source, cls):
            return source  # built by token_tables: typed, read-only, checked by construction

        def get(name):
            return source[name] if isinstance(source, dict) else getattr(source, name)

        arrays = {}
        for name, dtype in cls._DTYPES.items():
            arr = np.ascontiguousarray(get(name), dtype=dtype)
            arr.setflags(write=False)
            arrays[name] = arr
        V = arrays["clock_steps"].shape[0]
        for name, arr in arrays.items():
            if arr.shape != (V,):
                raise ValueError(f"token tables: {name} has shape {list(arr.shape)}, expected "
                                 f"[{V}]")
        for name in ("clock_steps", "duration", "bar_steps"):
            if arrays[name].size and int(arrays[name].min()) < 0:
                raise ValueError(f"token tables: {name} holds a negative number of steps")
        scalars = {k: int(get(k)) for k in ("steps_per_beat", "default_bar_steps", "eos_id",
                                            "bos_id")}
        if scalars["steps_per_beat"] < 1 or scalars["default_bar_steps"] < 0:
            raise ValueError("token tables: steps_per_beat must be >= 1 and default_bar_steps "
                             ">= 0")
        return cls(**arrays, **scalars)

    @property
    def vocab_size(self) -> int:
        return int(self.clock_steps.shape[0])

    @property
    def has_bars(self) -> bool:
        return self.default_bar_steps > 0


_TABLES: dict = {}


def token_tables(config: CodecConfig | None = None) -> TokenTables:
    """The per-token tables of ``config`` (cached per config; the arrays are read-only)."""
    config = config or default_config()
    hit = _TABLES.get(config)
    if hit is None:
        hit = _build(config)
        if len(_TABLES) > 32:
            _TABLES.clear()
        _TABLES[config] = hit
    return hit


def _build(c: CodecConfig) -> TokenTables:
    V = c.vocab_size
    is_note = np.zeros(V, np.uint8)
    is_note[c.pitch_base:c.velocity_base] = 1
    pitch = np.full(V, -1, np.int16)
    pitch[c.pitch_base:c.drum_base] = np.arange(c.pitch_range[0], c.pitch_range[1] + 1)
    is_bar = np.zeros(V, np.uint8)
    bar_steps = np.zeros(V, np.int32)
    part = np.full(V, -1, np.int16)
    program = np.full(V, -1, np.int16)
    tempo_bpm = np.zeros(V, np.float32)
    default_bar = 0
    if c.version == 2:
        is_bar[c.bar_id] = 1
        first, stop = c.block("TimeSig")
        bar_steps[first:stop] = c.meter_bar_steps
        first, stop = c.block("Part")
        part[first:stop] = np.arange(stop - first)
        program[c.program_base:c.program_base + DRUMS + 1] = np.arange(DRUMS + 1)
        first, stop = c.block("Tempo")
        tempo_bpm[first:stop] = c.tempo_centres_bpm.astype(np.float32)
        default_bar = int(c.meter_bar_steps[c.meter_index(4, 4)])
    arrays = dict(clock_steps=np.array(c.token_steps, np.int32), is_note=is_note, pitch=pitch,
                  duration=np.array(c.token_durations, np.int32), is_bar=is_bar,
                  bar_steps=bar_steps, part=part, program=program, tempo_bpm=tempo_bpm)
    for a in arrays.values():
        a.setflags(write=False)
    return TokenTables(**arrays, steps_per_beat=int(c.beat_steps),
                       default_bar_steps=default_bar, eos_id=int(c.eos_id),
                       bos_id=int(c.bos_id))
