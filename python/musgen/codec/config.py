"""``CodecConfig``: every parameter that defines the token vocabulary and the time grid, its
validation, and its JSON form (saved with every dataset and model)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import CodecError
from ..score import DEFAULT_TEMPO
from .names import bar_quarters, meter_name, parse_meter
from .vocab import Vocabulary

__all__ = ["CodecConfig", "default_config", "FORMAT", "FORMAT_VERSION", "MAX_TOKENS",
           "DRUM_CHANNEL", "VERSIONS", "DEFAULT_TIME_SIGNATURES", "DEFAULT_DENSITY_BINS"]

FORMAT = "musgen.codec"
#: The newest codec format this musgen writes; format_version N holds codec version N.
FORMAT_VERSION = 2
VERSIONS = (1, 2)
DRUM_CHANNEL = 9
TIMINGS = ("beats", "seconds")
#: Longest token sequence encode produces: a huge gap or note length (a damaged file's far-away
#: tick) is refused instead of allocating without bound.
MAX_TOKENS = 1 << 25
#: Meters with their own TimeSig token (version 2); others map to one with the same bar length,
#: else to 4/4. Covers every meter that occurs in more than a handful of files of the corpora
#: we measured (JSB, Nottingham, POP909, piano-midi.de, OpenGameArt, music21 Bach).
DEFAULT_TIME_SIGNATURES = ("4/4", "3/4", "2/4", "2/2", "3/2", "5/4", "6/4", "7/4", "3/8", "5/8",
                           "6/8", "7/8", "9/8", "12/8")
#: Edges of the Density bins in notes per beat (version 2): bin i holds densities in
#: [edge[i-1], edge[i]). The corpora above range from 0.8 (folk melodies) to 17 (chip tunes)
#: notes per beat, with medians between 1.6 and 5.6.
DEFAULT_DENSITY_BINS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0)
_STYLE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]{0,63}")
# Fields that exist only in version 2 (a version-1 config keeps them at their defaults), and
# fields of both versions that a version-1 dict omits while they hold their defaults (so the
# version-1 dict stays exactly what it was before they existed).
_V2_ONLY = ("max_parts", "styles", "density_bins", "tempo_bins", "tempo_range",
            "time_signatures")
_V1_OPTIONAL = ("max_note_beats", "max_silence_beats")


@dataclass(frozen=True)
class CodecConfig(Vocabulary):
    """Everything that defines the token vocabulary and the time grid (saved with every model).

    Attributes
    ----------
    version : {1, 2}
        Codec version. 1: one stream of TimeShift/Pitch/Velocity/Duration (the shipped model).
        2: adds parts and instruments, tempo, bars and meters, and the header conditions (key,
        style, density); see ``musgen.codec``.
    timing : {"beats", "seconds"}
        Beat-relative grid (tempo ignored) or a grid of ``step_ms`` milliseconds (version 1).
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
        Microseconds per beat written into decoded version-1 scores.
    max_note_beats : int or None
        Notes longer than this many beats (64: 16 bars of 4/4) are cut to it (encode, quantize
        and decode); None: off. Of the corpora we measured only 12 of Nottingham's 712532 notes
        (drones of up to 129 beats) are longer.
    max_silence_beats : int or None
        Silences (no note sounding) longer than this many beats are shortened to it, in whole
        beats (version 1) or whole bars (version 2); None: off. Bounds the tokens of a file by
        its music: a damaged file's far-away note costs a few tokens, not millions.
    max_parts : int
        Version 2: most parts (Program tokens) per piece.
    styles : tuple of str
        Version 2: style labels with a Style token each (``Style_unknown`` always exists).
    density_bins : tuple of float
        Version 2: edges of the Density bins, notes per beat, increasing.
    tempo_bins, tempo_range : int, (low, high)
        Version 2: number of Tempo tokens, log-spaced from ``low`` to ``high`` BPM (bin centres).
    time_signatures : tuple of str
        Version 2: meters ("N/D") with a TimeSig token; must hold "4/4".
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
    version: int = 1
    max_note_beats: int | None = 64
    max_silence_beats: int | None = 16
    max_parts: int = 16
    styles: tuple = ()
    density_bins: tuple = DEFAULT_DENSITY_BINS
    tempo_bins: int = 32
    tempo_range: tuple = (40, 250)
    time_signatures: tuple = DEFAULT_TIME_SIGNATURES

    def __post_init__(self) -> None:
        object.__setattr__(self, "pitch_range", _pair(self.pitch_range, "pitch_range"))
        object.__setattr__(self, "drum_pitch_range",
                           _pair(self.drum_pitch_range, "drum_pitch_range"))
        if self.version not in VERSIONS or isinstance(self.version, bool):
            raise CodecError(f"CodecConfig.version: expected one of {VERSIONS}, "
                             f"got {self.version!r}")
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
        for name in _V1_OPTIONAL:
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1, 1 << 20)
        self._check_version_2()

    def _check_version_2(self) -> None:
        """Normalize and check the version-2 fields (a version-1 config keeps their defaults)."""
        styles = self.styles
        if isinstance(styles, (list, tuple)):
            object.__setattr__(self, "styles", tuple(styles))
        if isinstance(self.density_bins, (list, tuple)):
            object.__setattr__(self, "density_bins", tuple(self.density_bins))
        if isinstance(self.tempo_range, (list, tuple)):
            object.__setattr__(self, "tempo_range", tuple(self.tempo_range))
        if isinstance(self.time_signatures, (list, tuple)):
            object.__setattr__(self, "time_signatures",
                               tuple(meter_name(parse_meter(m)) for m in self.time_signatures))
        if self.version == 1:
            defaults = {f.name: f.default for f in fields(self)}
            changed = [n for n in _V2_ONLY if getattr(self, n) != defaults[n]]
            if changed:
                raise CodecError(f"CodecConfig: {', '.join(changed)} only exist in codec "
                                 "version 2 (set version=2)")
            return
        if self.timing != "beats":
            raise CodecError("CodecConfig.timing: codec version 2 needs timing='beats' (its "
                             "bars and tempo tokens live on a beat grid)")
        _check_int("max_parts", self.max_parts, 1, 128)
        self._check_styles()
        edges = self.density_bins
        if (not isinstance(edges, tuple) or len(edges) > 63
                or not all(_is_number(e) and 0 < e < 1000 for e in edges)
                or any(b <= a for a, b in zip(edges, edges[1:]))):
            raise CodecError(f"CodecConfig.density_bins: expected up to 63 increasing "
                             f"positive numbers (notes per beat), got {self.density_bins!r}")
        _check_int("tempo_bins", self.tempo_bins, 1, 256)
        lo_hi = self.tempo_range
        if (not isinstance(lo_hi, tuple) or len(lo_hi) != 2
                or not all(_is_number(x) for x in lo_hi) or not 1 <= lo_hi[0] < lo_hi[1] <= 1000):
            raise CodecError(f"CodecConfig.tempo_range: expected (low, high) BPM with "
                             f"1 <= low < high <= 1000, got {self.tempo_range!r}")
        self._check_meters()

    def _check_styles(self) -> None:
        styles = self.styles
        if not isinstance(styles, tuple) or len(styles) > 1000:
            raise CodecError(f"CodecConfig.styles: expected a list of up to 1000 labels, "
                             f"got {styles!r}")
        for s in styles:
            if not isinstance(s, str) or not _STYLE_RE.fullmatch(s) or s == "unknown":
                raise CodecError(f"CodecConfig.styles: label {s!r} must be 1-64 letters, digits "
                                 "or _.+- (starting with a letter or digit), not 'unknown'")
        if len(set(styles)) != len(styles):
            raise CodecError(f"CodecConfig.styles: labels repeat in {list(styles)}")

    def _check_meters(self) -> None:
        meters = self.time_signatures
        if "4/4" not in meters or len(set(meters)) != len(meters) or len(meters) > 64:
            raise CodecError(f"CodecConfig.time_signatures: expected up to 64 distinct meters "
                             f"holding '4/4', got {list(meters)}")
        for m in meters:
            steps = bar_quarters(parse_meter(m)) * self.steps_per_beat
            if steps.denominator != 1:
                raise CodecError(f"CodecConfig.time_signatures: a bar of {m} is not a whole "
                                 f"number of steps at steps_per_beat={self.steps_per_beat}")

    def __getstate__(self) -> dict:
        """Pickle the fields and cached tables, not the C++ core's vocabulary cached on the
        instance (``codec.tokens._c_params``), which is rebuilt on first use."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_c_")}

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict:
        """A JSON-serializable dict with every parameter and the vocabulary's token names.

        A version-1 config writes ``format_version`` 1 and exactly the keys it always had
        (the fields added since are written only when they differ from their defaults), so
        a version-1 model directory reads the same in every musgen version."""
        d: dict[str, Any] = {"format": FORMAT, "format_version": self.version}
        defaults = {f.name: f.default for f in fields(self)}
        for f in fields(self):
            if self.version == 1 and (f.name == "version" or f.name in _V2_ONLY or (
                    f.name in _V1_OPTIONAL and getattr(self, f.name) == defaults[f.name])):
                continue
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        d["vocab_size"] = self.vocab_size
        d["vocabulary"] = list(self.token_names)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Any) -> "CodecConfig":
        """Rebuild and validate a config saved by ``to_dict`` (codec format 1 or 2).

        Raises CodecError when the dict is not a codec config, has unknown or mistyped keys, or
        its saved vocabulary differs from the one its parameters produce.
        """
        if not isinstance(d, dict):
            raise CodecError(f"codec config: expected a dict, got {type(d).__name__}")
        if d.get("format", FORMAT) != FORMAT:
            raise CodecError(f"codec config: format is {d.get('format')!r}, expected {FORMAT!r}")
        version = d.get("format_version", 1)
        if version not in VERSIONS or isinstance(version, bool):
            raise CodecError(f"codec config: format_version {version!r} is not supported "
                             f"(this musgen reads versions {', '.join(map(str, VERSIONS))})")
        if d.get("version", version) != version:
            raise CodecError(f"codec config: version {d.get('version')!r} does not match "
                             f"format_version {version}")
        names = {f.name for f in fields(cls)}
        extra = sorted(set(d) - names - {"format", "format_version", "vocab_size", "vocabulary"})
        if extra:
            raise CodecError(f"codec config: unknown keys {extra}; expected a subset of "
                             f"{sorted(names)}")
        kwargs = {k: d[k] for k in names if k in d}
        kwargs["version"] = version
        for k in ("pitch_range", "drum_pitch_range", "styles", "density_bins", "tempo_range",
                  "time_signatures"):
            if k in kwargs and isinstance(kwargs[k], list):
                kwargs[k] = tuple(kwargs[k])
        try:
            cfg = cls(**kwargs)
        except CodecError as exc:
            raise CodecError(f"codec config: {exc}") from None
        except TypeError as exc:  # a value of the wrong kind, e.g. a list for an int
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

    # ------------------------------------------------------------------ grid quantities
    @property
    def beat_steps(self) -> int:
        """Grid steps of one beat: ``steps_per_beat``, or in seconds timing a beat at the
        config's ``tempo`` (500 ms at 120 BPM)."""
        if self.timing == "beats":
            return self.steps_per_beat
        return max(1, round(self.tempo / (1000 * self.step_ms)))

    @property
    def note_cap_steps(self) -> int:
        """Longest note in grid steps (0: no cap)."""
        return 0 if self.max_note_beats is None else self.max_note_beats * self.beat_steps

    @property
    def silence_steps(self) -> int:
        """Longest silence in grid steps (0: no limit)."""
        return 0 if self.max_silence_beats is None else self.max_silence_beats * self.beat_steps

    @property
    def silence_unit(self) -> int:
        """Version 1: the step a shortened silence is cut by (a beat; 1 step in seconds timing)."""
        return self.steps_per_beat if self.timing == "beats" else 1

    @cached_property
    def meters(self) -> tuple:
        """Version 2: the (numerator, denominator) of every TimeSig token, in token order."""
        return tuple(parse_meter(m) for m in self.time_signatures)

    @cached_property
    def meter_bar_steps(self) -> np.ndarray:
        """Version 2: int32 [n_meters], the bar length of every TimeSig token in grid steps."""
        out = np.array([int(bar_quarters(m) * self.steps_per_beat) for m in self.meters],
                       dtype=np.int32)
        out.setflags(write=False)
        return out

    @cached_property
    def tempo_centres_bpm(self) -> np.ndarray:
        """Version 2: float64 [tempo_bins], the BPM of every Tempo token: log-spaced with the
        ratio that spans ``tempo_range`` in ``tempo_bins`` bins, on a grid through 120 BPM, so
        that the tempo of every file without a tempo event (120 BPM) is a bin centre and comes
        back exact (32 bins from 40 to 250: 39.0 .. 243.9 BPM, 6.1 % apart)."""
        lo, hi = (float(x) for x in self.tempo_range)
        n = self.tempo_bins
        ratio = (hi / lo) ** (1.0 / max(n - 1, 1)) if n > 1 else 1.0
        first = round(math.log(lo / 120.0) / math.log(ratio)) if n > 1 else 0
        out = 120.0 * ratio ** (np.arange(n, dtype=np.float64) + first)
        if n == 1:
            out = np.array([120.0])
        out.setflags(write=False)
        return out

    @cached_property
    def tempo_centres_us(self) -> np.ndarray:
        """Version 2: int64 [tempo_bins], microseconds per beat that decode writes per bin."""
        out = np.array([int(round(60e6 / b)) for b in self.tempo_centres_bpm], dtype=np.int64)
        out.setflags(write=False)
        return out

    @cached_property
    def tempo_bounds_us(self) -> np.ndarray:
        """Version 2: int64 [tempo_bins - 1], decreasing. A tempo of ``t`` microseconds per beat
        falls in bin ``count(t < bounds)``: the bounds are the geometric means of neighbouring
        centres, so a tempo goes to the nearest centre on a log scale (integers, so both
        backends agree exactly)."""
        c = self.tempo_centres_bpm
        mids = np.sqrt(c[:-1] * c[1:])
        out = np.array([int(round(60e6 / m)) for m in mids], dtype=np.int64)
        out.setflags(write=False)
        return out

    @cached_property
    def density_bounds_milli(self) -> np.ndarray:
        """Version 2: int64 [len(density_bins)], the bin edges in thousandths of a note per beat
        (integers, so both backends bin a density exactly alike)."""
        out = np.array([int(round(1000 * e)) for e in self.density_bins], dtype=np.int64)
        out.setflags(write=False)
        return out

    def density_token(self, notes_per_beat: float) -> int:
        """Version 2: the id of the Density token whose bin holds ``notes_per_beat``."""
        bin_ = int(np.count_nonzero(round(1000 * float(notes_per_beat))
                                    >= self.density_bounds_milli))
        return self.block("Density")[0] + bin_

    def tempo_token(self, bpm: float) -> int:
        """Version 2: the id of the Tempo token nearest ``bpm`` (on a log scale)."""
        return self.block("Tempo")[0] + self.tempo_bin(int(round(60e6 / float(bpm))))

    def tempo_bin(self, microseconds_per_beat: int) -> int:
        """The Tempo bin of a tempo (microseconds per beat)."""
        return int(np.count_nonzero(int(microseconds_per_beat) < self.tempo_bounds_us))

    def meter_index(self, numerator: int, denominator: int) -> int:
        """The TimeSig token (index into ``time_signatures``) a meter maps to: itself when
        listed; else a listed meter with the same bar length (same denominator first, then
        list order); else 4/4."""
        cache = self.__dict__.setdefault("_meter_cache", {})
        key = (int(numerator), int(denominator))
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = self._meter_index(*key)
        return hit

    def _meter_index(self, numerator: int, denominator: int) -> int:
        meters = self.meters
        if (numerator, denominator) in meters:
            return meters.index((numerator, denominator))
        if numerator > 0 and denominator > 0:
            length = bar_quarters((numerator, denominator))
            same = [i for i, m in enumerate(meters) if bar_quarters(m) == length]
            for i in same:
                if meters[i][1] == denominator:
                    return i
            if same:
                return same[0]
        return meters.index((4, 4))

    # ------------------------------------------------------------------ augmentation
    def transpose(self, tokens, semitones: int) -> np.ndarray | None:
        """Shift every Pitch token by ``semitones`` (DrumPitch tokens stay) and, in version 2,
        the Key token with them (same mode, tonic moved by ``semitones``), so the key condition
        stays true.

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
        if self.version == 2:
            first, stop = self.block("Key")
            is_key = (tok >= first) & (tok < stop)
            k = out[is_key] - first
            out[is_key] = first + (k // 12) * 12 + (k % 12 + semitones) % 12
        return out

    def key_normalizing_shift(self, tokens) -> int:
        """Version 2: the semitones (-6..+5, the nearest way) that move a piece's key, its
        first Key token, to C major or A minor (same mode); 0 without a Key token (version 1,
        or a piece without a header)."""
        if self.version != 2:
            return 0
        first, stop = self.block("Key")
        tok = np.asarray(tokens)
        keys = tok[(tok >= first) & (tok < stop)]
        if not keys.size:
            return 0
        k = int(keys[0]) - first  # tonic + 12 x minor
        target = 9 if k >= 12 else 0
        return (target - k % 12 + 6) % 12 - 6

    def normalize_key(self, tokens) -> tuple:
        """Version 2: ``(tokens in C major or A minor, semitones moved)``: the piece moved by
        ``key_normalizing_shift`` (notes and Key token, ``transpose``), or by an octave less or
        more when that would leave ``pitch_range``; as it is (0) when no such shift fits."""
        shift = self.key_normalizing_shift(tokens)
        for s in (shift, shift - 12, shift + 12):
            out = self.transpose(tokens, s)
            if out is not None:
                return out, s
        return np.asarray(tokens).astype(np.int32, copy=True), 0

    def shift_tempo(self, tokens, bins: int) -> np.ndarray | None:
        """Version 2: move every Tempo token by ``bins`` bins (a tempo change of about
        ``bins`` x 6 % with the default 32 bins), for tempo augmentation. Returns a new int32
        array, or None when a Tempo token would leave the bins (version 1: no Tempo tokens,
        the tokens come back unchanged)."""
        tok = np.asarray(tokens)
        out = tok.astype(np.int32, copy=True)
        if bins == 0 or self.version == 1:
            return out
        first, stop = self.block("Tempo")
        is_tempo = (tok >= first) & (tok < stop)
        moved = out[is_tempo] + np.int32(bins)
        if moved.size and (moved.min() < first or moved.max() >= stop):
            return None
        out[is_tempo] = moved
        return out


def _pair(v, name):
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) for x in v):
        return (int(v[0]), int(v[1]))
    raise CodecError(f"CodecConfig.{name}: expected a (low, high) pair of ints, got {v!r}")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            and math.isfinite(float(v)))


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
    """The default config, with overrides.

    ``timing="seconds"`` also defaults both maxima to 100 steps (one second at 10 ms) unless
    they are given. ``version=2`` keeps drums by default (a drum part is a part like any other)
    and keeps the default meters whose bar is a whole number of steps at ``steps_per_beat``.
    """
    if overrides.get("timing") == "seconds":
        overrides.setdefault("max_time_shift", 100)
        overrides.setdefault("max_duration", 100)
    if overrides.get("version") == 2:
        overrides.setdefault("keep_drums", True)
        spb = overrides.get("steps_per_beat", 12)
        if "time_signatures" not in overrides and _is_int(spb) and spb > 0:
            overrides["time_signatures"] = tuple(
                m for m in DEFAULT_TIME_SIGNATURES
                if (bar_quarters(parse_meter(m)) * spb).denominator == 1)
    return CodecConfig(**overrides)
