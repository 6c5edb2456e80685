"""The token vocabulary's layout: token ids of every block, names, and per-token tables.

``CodecConfig`` inherits these from ``Vocabulary``; one place defines which id means what (the
C++ ``musgen::codec::make_vocab`` rebuilds the same layout from the same parameters, and a test
checks the two agree).

Version 1, in id order: PAD, BOS, EOS, TimeShift_1.., Pitch_lo.., [DrumPitch_lo..],
Velocity_0.., Duration_1.. (unchanged since the first release: the shipped model uses it).

Version 2, in id order (every block contiguous): PAD, BOS, EOS, Program_0..Program_127,
Program_Drums, Key_C..Key_Bm (24), Style_unknown, Style_<label>.., Density_0.., Tempo_0..,
TimeSig_<n>_<d>.., Bar, TimeShift_1.., Part_0.., Pitch_lo.., [DrumPitch_lo..], Velocity_0..,
Duration_1... The header blocks come first so that the conditions an engine masks by id range
(Program, Key, Style, Density, Tempo) are contiguous, and the body keeps version 1's order.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..errors import CodecError

__all__ = ["Vocabulary", "TYPE_SPECIAL", "TYPE_TIME", "TYPE_PITCH", "TYPE_VELOCITY",
           "TYPE_DURATION", "TYPE_DRUM_PITCH", "TYPE_PROGRAM", "TYPE_KEY", "TYPE_STYLE",
           "TYPE_DENSITY", "TYPE_TEMPO", "TYPE_TIMESIG", "TYPE_BAR", "TYPE_PART", "TYPE_NAMES",
           "BLOCKS"]

#: Token types (``CodecConfig.token_types``). Drum pitches have their own type so that
#: transposition and pitch statistics leave them alone. Types 6.. exist in version 2 only.
TYPE_SPECIAL = 0
TYPE_TIME = 1
TYPE_PITCH = 2
TYPE_VELOCITY = 3
TYPE_DURATION = 4
TYPE_DRUM_PITCH = 5
TYPE_PROGRAM = 6
TYPE_KEY = 7
TYPE_STYLE = 8
TYPE_DENSITY = 9
TYPE_TEMPO = 10
TYPE_TIMESIG = 11
TYPE_BAR = 12
TYPE_PART = 13
#: A short name per token type (reports, NLL per token type).
TYPE_NAMES = {TYPE_SPECIAL: "special", TYPE_TIME: "time", TYPE_PITCH: "pitch",
              TYPE_VELOCITY: "velocity", TYPE_DURATION: "duration",
              TYPE_DRUM_PITCH: "drum_pitch", TYPE_PROGRAM: "program", TYPE_KEY: "key",
              TYPE_STYLE: "style", TYPE_DENSITY: "density", TYPE_TEMPO: "tempo",
              TYPE_TIMESIG: "time_signature", TYPE_BAR: "bar", TYPE_PART: "part"}
#: The blocks ``Vocabulary.block`` knows, with their token type.
BLOCKS = {"TimeShift": TYPE_TIME, "Pitch": TYPE_PITCH, "DrumPitch": TYPE_DRUM_PITCH,
          "Velocity": TYPE_VELOCITY, "Duration": TYPE_DURATION, "Program": TYPE_PROGRAM,
          "Key": TYPE_KEY, "Style": TYPE_STYLE, "Density": TYPE_DENSITY, "Tempo": TYPE_TEMPO,
          "TimeSig": TYPE_TIMESIG, "Bar": TYPE_BAR, "Part": TYPE_PART}
N_KEYS = 24
N_PROGRAMS = 129  # 0..127 and drums


class Vocabulary:
    """Token-id layout of a codec configuration (mixed into the frozen ``CodecConfig``, which
    supplies the parameters: ``version``, ``max_time_shift``, ``max_duration``,
    ``pitch_range``, ``keep_drums``, ``drum_pitch_range``, ``velocity_bins`` and, in version
    2, ``max_parts``, ``styles``, ``density_bins``, ``tempo_bins``, ``time_signatures``)."""

    pad_id = 0
    bos_id = 1
    eos_id = 2

    # ------------------------------------------------------------------ vocabulary layout
    @cached_property
    def _bases(self) -> dict:
        """First id of every block (version 2 header blocks included)."""
        b: dict = {}
        at = 3
        if self.version == 2:
            for name, size in (("Program", N_PROGRAMS), ("Key", N_KEYS),
                               ("Style", 1 + len(self.styles)),
                               ("Density", len(self.density_bins) + 1),
                               ("Tempo", self.tempo_bins), ("TimeSig", len(self.time_signatures)),
                               ("Bar", 1)):
                b[name] = at
                at += size
        b["TimeShift"] = at
        at += self.max_time_shift
        if self.version == 2:
            b["Part"] = at
            at += self.max_parts
        n_pitches = self.pitch_range[1] - self.pitch_range[0] + 1
        n_drums = (self.drum_pitch_range[1] - self.drum_pitch_range[0] + 1
                   if self.keep_drums else 0)
        for name, size in (("Pitch", n_pitches), ("DrumPitch", n_drums),
                           ("Velocity", self.velocity_bins), ("Duration", self.max_duration)):
            b[name] = at
            at += size
        b["_end"] = at
        return b

    def block(self, name: str) -> tuple[int, int]:
        """``(first_id, stop_id)`` of a block of tokens ("Program", "Key", "Style", "Density",
        "Tempo", "TimeSig", "Bar", "TimeShift", "Part", "Pitch", "DrumPitch", "Velocity",
        "Duration"); a block this config does not have is empty (``first == stop``)."""
        if name not in BLOCKS:
            raise CodecError(f"block {name!r}: expected one of {', '.join(BLOCKS)}")
        b = self._bases
        order = [k for k in b if k != "_end"]
        if name not in b:
            at = b["TimeShift"]
            return at, at
        i = order.index(name)
        stop = b[order[i + 1]] if i + 1 < len(order) else b["_end"]
        return b[name], stop

    @property
    def time_base(self) -> int:
        """Id of TimeShift_1 (TimeShift_k is ``time_base + k - 1``)."""
        return self._bases["TimeShift"]

    @property
    def pitch_base(self) -> int:
        """Id of Pitch_<pitch_range[0]>."""
        return self._bases["Pitch"]

    @property
    def n_pitches(self) -> int:
        return self.pitch_range[1] - self.pitch_range[0] + 1

    @property
    def drum_base(self) -> int:
        """Id of DrumPitch_<drum_pitch_range[0]> (== velocity_base without drums)."""
        return self._bases["DrumPitch"]

    @property
    def n_drums(self) -> int:
        return self.drum_pitch_range[1] - self.drum_pitch_range[0] + 1 if self.keep_drums else 0

    @property
    def velocity_base(self) -> int:
        return self._bases["Velocity"]

    @property
    def duration_base(self) -> int:
        """Id of Duration_1."""
        return self._bases["Duration"]

    @property
    def vocab_size(self) -> int:
        return self._bases["_end"]

    @property
    def velocity_shift(self) -> int:
        """bin = velocity >> velocity_shift."""
        return 7 - (self.velocity_bins.bit_length() - 1)

    # version 2 ids (a version-1 config has none of these blocks)
    @property
    def program_base(self) -> int:
        """Id of Program_0 (Program_Drums is ``program_base + 128``)."""
        return self._v2("Program")

    @property
    def key_base(self) -> int:
        return self._v2("Key")

    @property
    def style_base(self) -> int:
        """Id of Style_unknown (Style_<styles[i]> is ``style_base + 1 + i``)."""
        return self._v2("Style")

    @property
    def density_base(self) -> int:
        return self._v2("Density")

    @property
    def tempo_base(self) -> int:
        return self._v2("Tempo")

    @property
    def timesig_base(self) -> int:
        return self._v2("TimeSig")

    @property
    def bar_id(self) -> int:
        return self._v2("Bar")

    @property
    def part_base(self) -> int:
        return self._v2("Part")

    def _v2(self, name: str) -> int:
        if self.version != 2:
            raise CodecError(f"a version-{self.version} codec has no {name} tokens")
        return self._bases[name]

    @cached_property
    def token_names(self) -> list:
        lo, hi = self.pitch_range
        dlo, dhi = self.drum_pitch_range
        names = ["PAD", "BOS", "EOS"]
        if self.version == 2:
            from .names import KEY_NAMES

            names += [f"Program_{p}" for p in range(128)] + ["Program_Drums"]
            names += [f"Key_{k}" for k in KEY_NAMES]
            names += ["Style_unknown"] + [f"Style_{s}" for s in self.styles]
            names += [f"Density_{i}" for i in range(len(self.density_bins) + 1)]
            names += [f"Tempo_{i}" for i in range(self.tempo_bins)]
            names += ["TimeSig_" + m.replace("/", "_") for m in self.time_signatures]
            names += ["Bar"]
        names += [f"TimeShift_{k}" for k in range(1, self.max_time_shift + 1)]
        if self.version == 2:
            names += [f"Part_{i}" for i in range(self.max_parts)]
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
        for name, typ in BLOCKS.items():
            first, stop = self.block(name)
            t[first:stop] = typ
        t.setflags(write=False)
        return t

    @cached_property
    def token_steps(self) -> np.ndarray:
        """np.int32 [vocab]: grid steps a token advances the clock (TimeShift_k -> k, else 0;
        a version-2 Bar advances to the next bar line, which depends on the position: see
        ``token_tables``)."""
        s = np.zeros(self.vocab_size, dtype=np.int32)
        s[self.time_base:self.time_base + self.max_time_shift] = np.arange(
            1, self.max_time_shift + 1)
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
