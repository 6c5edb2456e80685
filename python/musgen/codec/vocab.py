"""The token vocabulary's layout: token ids of every block, names, and per-token tables.

``CodecConfig`` inherits these from ``Vocabulary``; one place defines which id means what (the
C++ ``musgen::codec::make_vocab`` rebuilds the same layout from the same parameters, and a test
checks the two agree).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..errors import CodecError

__all__ = ["Vocabulary", "TYPE_SPECIAL", "TYPE_TIME", "TYPE_PITCH", "TYPE_VELOCITY",
           "TYPE_DURATION", "TYPE_DRUM_PITCH"]

#: Token types (``CodecConfig.token_types``). Drum pitches have their own type so that
#: transposition and pitch statistics leave them alone.
TYPE_SPECIAL = 0
TYPE_TIME = 1
TYPE_PITCH = 2
TYPE_VELOCITY = 3
TYPE_DURATION = 4
TYPE_DRUM_PITCH = 5


class Vocabulary:
    """Token-id layout of a codec configuration (mixed into the frozen ``CodecConfig``, which
    supplies ``max_time_shift``, ``max_duration``, ``pitch_range``, ``keep_drums``,
    ``drum_pitch_range`` and ``velocity_bins``)."""

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

