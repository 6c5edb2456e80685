"""The Score of a version-2 ``Piece``: one track per part (its General MIDI name, program
change and channel), the tempo map, the meters and the key. ``decode`` and ``quantize`` both
end here, so what they give is defined once."""

from __future__ import annotations

import numpy as np

from ..errors import CodecError
from ..score import (
    KEY_SIGNATURE_DTYPE,
    NOTE_DTYPE,
    PROGRAM_DTYPE,
    TEMPO_DTYPE,
    TIME_SIGNATURE_DTYPE,
    Score,
)
from .config import DRUM_CHANNEL
from .names import DRUMS, key_signature, program_name

__all__ = ["assemble", "part_channels"]

_MAX_UNITS = 1 << 61
_MELODIC_CHANNELS = tuple(c for c in range(16) if c != DRUM_CHANNEL)


def part_channels(programs) -> list:
    """MIDI channel of every part: drums on 9, the others on 0..15 skipping 9 in part order.
    With more than 15 melodic parts some share a channel: a part whose program an earlier part
    has joins that part's channel (the last such part first); when no two programs are equal,
    the last part joins the first channel."""
    melodic = [i for i, p in enumerate(programs) if p != DRUMS]
    groups = [[i] for i in melodic]
    while len(groups) > len(_MELODIC_CHANNELS):
        j = next((g for g in range(len(groups) - 1, 0, -1)
                  if any(programs[groups[h][0]] == programs[groups[g][0]] for h in range(g))),
                 None)
        if j is None:
            groups[0] += groups.pop()
            continue
        h = next(h for h in range(j) if programs[groups[h][0]] == programs[groups[j][0]])
        groups[h] += groups.pop(j)
    out = [DRUM_CHANNEL] * len(programs)
    for ch, members in zip(_MELODIC_CHANNELS, groups):
        for i in members:
            out[i] = ch
    return out


def _ticks(steps, num: int, den: int):
    return (2 * np.asarray(steps, np.int64) * num + den) // (2 * den)


def _changes(first, changes, num, den):
    """[(tick, value)]: the first value at tick 0, then the changes (the last of one tick wins;
    a change to the value already in effect is dropped)."""
    by_tick: dict = {0: first}
    for step, value in changes:
        by_tick[int(_ticks(step, num, den))] = value
    out, cur = [], None
    for tick in sorted(by_tick):
        if by_tick[tick] != cur:
            out.append((tick, by_tick[tick]))
            cur = by_tick[tick]
    return out


def assemble(piece, config, ticks_per_beat: int) -> Score:
    """The Score of a Piece at ``ticks_per_beat`` (exact on the grid when it is a multiple of
    ``steps_per_beat``)."""
    c = config
    num, den = int(ticks_per_beat), int(c.steps_per_beat)
    on, dur = piece.on, piece.dur
    if on.size and int((on + dur).max()) > _MAX_UNITS // (2 * num):
        raise CodecError(f"decode: the decoded time of {int((on + dur).max())} steps is too "
                         "large to convert to ticks")
    programs = list(piece.programs)
    channels = part_channels(programs)
    notes = np.zeros(on.size, NOTE_DTYPE)
    if on.size:
        part = piece.part
        is_drum = piece.code >= c.n_pitches
        part_ch = np.array(channels, np.int64)[part]
        notes["track"] = part
        notes["channel"] = np.where(is_drum, DRUM_CHANNEL, part_ch)
        notes["pitch"] = np.where(is_drum, piece.code - c.n_pitches + c.drum_pitch_range[0],
                                  piece.code + c.pitch_range[0])
        s = c.velocity_shift
        notes["velocity"] = (piece.vel << s) + ((1 << s) >> 1)
        notes["start"] = _ticks(on, num, den)
        notes["end"] = _ticks(on + dur, num, den)
        notes = notes[np.lexsort((notes["end"], notes["pitch"], notes["channel"],
                                  notes["track"], notes["start"]))]
    tempo0 = piece.tempo if piece.tempo >= 0 else c.tempo_bin(500_000)
    tempos = np.array([(t, int(c.tempo_centres_us[b])) for t, b in
                       _changes(tempo0, piece.tempo_changes, num, den)], TEMPO_DTYPE)
    meter0 = piece.meter if piece.meter >= 0 else c.meter_index(4, 4)
    meters = c.meters
    sigs = np.array([(t, meters[m][0], meters[m][1], 96 // meters[m][1], 8) for t, m in
                     _changes(meter0, piece.meter_changes, num, den)], TIME_SIGNATURE_DTYPE)
    sharps, mode = key_signature(piece.key)
    keys = np.array([(0, 0, sharps, mode)], KEY_SIGNATURE_DTYPE)
    progs = np.array([(0, i, channels[i], p) for i, p in enumerate(programs) if p != DRUMS],
                     PROGRAM_DTYPE)
    return Score(notes=notes, ticks_per_beat=num, tempos=tempos, time_signatures=sigs,
                 key_signatures=keys, programs=progs,
                 track_names=[program_name(p) for p in programs], format=1)
