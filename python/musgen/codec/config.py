"""``CodecConfig``: every parameter that defines the token vocabulary and the time grid, its
validation, and its JSON form (saved with every dataset and model)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..errors import CodecError
from ..score import DEFAULT_TEMPO
from .vocab import Vocabulary

__all__ = ["CodecConfig", "default_config", "FORMAT", "FORMAT_VERSION", "MAX_TOKENS",
           "DRUM_CHANNEL"]

FORMAT = "musgen.codec"
FORMAT_VERSION = 1
DRUM_CHANNEL = 9
TIMINGS = ("beats", "seconds")
#: Longest token sequence encode produces: a huge gap or note length (a damaged file's far-away
#: tick) is refused instead of allocating without bound.
MAX_TOKENS = 1 << 25


@dataclass(frozen=True)
class CodecConfig(Vocabulary):
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
