"""Musical requests as the static masks and logit biases the engine's rules apply to token ids:
keys and scales (``"D minor"``, ``"F# dorian"``), pitch ranges, and the header conditions of
codecs that have them (instruments, key, style, density and tempo tokens).

Everything here is computed once per ``generate`` call in Python and handed to every backend as
the same arrays (``Rules.allowed`` [V] and ``Rules.bias`` [V]), so no backend computes a
logarithm or parses a name inside the loop.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .rules import TokenTables

__all__ = ["Scale", "parse_key", "parse_pitch", "parse_pitch_range", "scale_bias",
           "StaticArrays", "MODES", "SCALE_STRICTNESS"]

#: Semitones above the tonic of each mode (the default scale of "minor" is the natural minor).
MODES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic minor": (0, 2, 3, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
}
_ALIASES = {"": "major", "maj": "major", "ionian": "major", "m": "minor", "min": "minor",
            "aeolian": "minor", "natural minor": "minor", "pentatonic": "major pentatonic"}
_TONICS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS = {"#": 1, "♯": 1, "b": -1, "♭": -1}
_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

#: The default scale strictness: out-of-scale pitches are masked.
SCALE_STRICTNESS = 1.0


@dataclass(frozen=True)
class Scale:
    """A key or scale: its tonic (pitch class 0..11), its mode and its pitch classes."""

    tonic: int
    mode: str

    @property
    def pitch_classes(self) -> frozenset:
        return frozenset((self.tonic + i) % 12 for i in MODES[self.mode])

    @property
    def name(self) -> str:
        return f"{_NAMES[self.tonic]} {self.mode}"

    def contains(self, pitches) -> np.ndarray:
        """bool array: which MIDI pitches are in the scale."""
        pcs = np.asarray(sorted(self.pitch_classes))
        return np.isin(np.asarray(pitches) % 12, pcs)


def parse_key(text: str) -> Scale:
    """``"D minor"``, ``"Dm"``, ``"C#"``, ``"Bb major"``, ``"F# dorian"``, ``"A harmonic minor"``
    -> Scale. A bare tonic is major; ``m`` / ``min`` are minor (natural)."""
    if isinstance(text, Scale):
        return text
    if not isinstance(text, str):
        raise ValueError(f"key: {text!r}, expected a key name like 'D minor' or 'F# dorian'")
    m = re.fullmatch(r"\s*([A-Ga-g])\s*([#♯b♭]?)\s*(.*?)\s*", text)
    mode = _ALIASES.get(m.group(3).lower(), m.group(3).lower()) if m else None
    if m is None or mode not in MODES:
        raise ValueError(f"key: {text!r}, expected a tonic A-G (with # or b) and one of "
                         f"{', '.join(MODES)} (e.g. 'D minor', 'Bb', 'F# dorian')")
    tonic = _TONICS[m.group(1).upper()] + _ACCIDENTALS.get(m.group(2), 0)
    return Scale(tonic % 12, mode)


def parse_pitch(text) -> int:
    """A MIDI pitch from an int (0..127) or a note name in scientific notation (``C4`` = 60,
    ``A#3``, ``Bb-1``)."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        value = int(text)
    else:
        s = str(text).strip()
        m = re.fullmatch(r"([A-Ga-g])([#♯b♭]?)(-?\d+)", s)
        if re.fullmatch(r"-?\d+", s):
            value = int(s)
        elif m:
            pc = _TONICS[m.group(1).upper()] + _ACCIDENTALS.get(m.group(2), 0)
            value = 12 * (int(m.group(3)) + 1) + pc
        else:
            raise ValueError(f"pitch: {text!r}, expected a MIDI number 0..127 or a note name "
                             "like C4 or F#3")
    if not 0 <= value <= 127:
        raise ValueError(f"pitch: {text!r} is MIDI pitch {value}, outside 0..127")
    return value


def parse_pitch_range(value) -> tuple:
    """``(48, 84)``, ``"48-84"``, ``"C3-C6"``, ``"C-1..G9"`` or ``"48,84"`` -> (low, high),
    inclusive MIDI pitches with low <= high."""
    if isinstance(value, str):
        s = value.strip()
        for sep in ("..", ",", ":"):
            if sep in s:
                parts = s.split(sep)
                break
        else:  # LOW-HIGH: the dash after the low end's last digit (so "C-1-G9" works too)
            dash = re.fullmatch(r"(.+?\d)-(.+)", s)
            parts = list(dash.groups()) if dash else [s]
        if len(parts) != 2:
            raise ValueError(f"pitch_range: {value!r}, expected LOW-HIGH, e.g. 48-84 or C3-C6")
        lo, hi = (parse_pitch(p) for p in parts)
    else:
        try:
            lo, hi = (parse_pitch(p) for p in value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"pitch_range: {value!r}, expected (low, high) MIDI pitches "
                             f"({exc})") from None
    if lo > hi:
        raise ValueError(f"pitch_range: low {lo} is above high {hi}")
    return lo, hi


def scale_bias(strictness: float) -> float:
    """The logit bias on out-of-scale pitches for ``scale_strictness`` s in [0, 1):
    ``2 ln(1 - s)``, so each such pitch's odds are multiplied by (1 - s)^2 (0 at s = 0, about
    1/100 at s = 0.9); s = 1 is a hard mask instead."""
    s = float(strictness)
    if not (0.0 <= s <= 1.0):
        raise ValueError(f"scale_strictness: {strictness!r}, expected a number in [0, 1] "
                         "(0: no preference, 1: only pitches of the scale)")
    return 2.0 * math.log1p(-s) if s < 1.0 else -math.inf


class StaticArrays:
    """The static mask and bias of one call, built request by request (each method checks its
    request against the codec and says which one leaves nothing to play)."""

    def __init__(self, tables: TokenTables, names: list):
        self.tables = tables
        self.names = names
        V = tables.vocab_size
        self.allowed = np.ones(V, bool)
        self.bias = np.zeros(V, np.float32)
        self.pitched = np.flatnonzero(tables.pitch >= 0)

    def _check_pitches_left(self, what: str) -> None:
        if not self.allowed[self.pitched].any():
            raise ValueError(f"{what}: no pitch of this codec is left to play "
                             f"(its Pitch tokens cover {int(self.tables.pitch[self.pitched].min())}"
                             f"..{int(self.tables.pitch[self.pitched].max())})")

    def key(self, scale: Scale, strictness: float) -> None:
        """Out-of-scale Pitch tokens masked (strictness 1) or biased by ``scale_bias``."""
        out = self.pitched[~scale.contains(self.tables.pitch[self.pitched])]
        b = scale_bias(strictness)
        if math.isinf(b):
            self.allowed[out] = False
            self._check_pitches_left(f"key {scale.name!r}")
        else:
            self.bias[out] += np.float32(b)

    def pitch_range(self, lo: int, hi: int) -> None:
        p = self.tables.pitch[self.pitched]
        self.allowed[self.pitched[(p < lo) | (p > hi)]] = False
        self._check_pitches_left(f"pitch_range ({lo}, {hi})")

    def block(self, prefix: str) -> np.ndarray:
        """Token ids whose names start with ``prefix`` (a condition block of the codec)."""
        return np.array([i for i, n in enumerate(self.names) if n.startswith(prefix)], np.int64)

    def only(self, prefix: str, keep, what: str) -> None:
        """In the block ``prefix``, allow only the ids ``keep`` (a header condition)."""
        ids = self.block(prefix)
        keep = np.atleast_1d(np.asarray(keep, np.int64))
        if ids.size == 0:
            raise ValueError(f"{what}: this model's codec has no {prefix}* tokens (conditions "
                             "need codec version 2)")
        self.allowed[ids] = False
        self.allowed[keep] = True

    def arrays(self):
        """(allowed uint8 [V] or None, bias float32 [V] or None): None where nothing is set."""
        allowed = None if self.allowed.all() else self.allowed.astype(np.uint8)
        bias = None if not self.bias.any() else self.bias
        return allowed, bias
