"""Instruments of a Score: the General MIDI program names, the program sounding each note, and
the parts (track, channel, program) that pictures colour and label one by one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codec.names import GM_PROGRAMS
from ..score import Score

__all__ = ["GM_PROGRAM_NAMES", "DRUM_CHANNEL", "Part", "note_programs", "parts", "pitch_name"]

#: The 128 General MIDI Level 1 melodic instruments, by program number (0-based): the codec's
#: table, one list for the whole package.
GM_PROGRAM_NAMES = GM_PROGRAMS

#: MIDI channel 10 (0-based 9) holds General MIDI percussion.
DRUM_CHANNEL = 9

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(pitch: int) -> str:
    """Scientific pitch notation with middle C (MIDI 60) = C4: ``pitch_name(61) == 'C#4'``."""
    return f"{_NOTE_NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def note_programs(score: Score) -> np.ndarray:
    """int16 [n_notes]: the GM program sounding each note (0 when no Program Change precedes it).

    A note takes the last Program Change at or before its start on its own (track, channel);
    when that track and channel has none, the last one on its channel in any track (format 1
    files often keep every Program Change in one track); else program 0, the GM default.
    """
    notes = score.notes
    out = np.zeros(len(notes), np.int16)
    progs = np.asarray(score.programs)
    if not len(notes) or not len(progs):
        return out
    for ch in np.unique(notes["channel"]).tolist():
        on_ch = progs[progs["channel"] == ch]
        if not len(on_ch):
            continue
        sel = np.flatnonzero(notes["channel"] == ch)
        for track in np.unique(notes["track"][sel]).tolist():
            rows = sel[notes["track"][sel] == track]
            own = on_ch[on_ch["track"] == track]
            src = own if len(own) else on_ch
            order = np.argsort(src["tick"], kind="stable")
            ticks, values = src["tick"][order], src["program"][order]
            i = np.searchsorted(ticks, notes["start"][rows], side="right") - 1
            out[rows] = np.where(i >= 0, values[np.maximum(i, 0)], 0)
    return out


@dataclass(frozen=True)
class Part:
    """One coloured part of a picture: the notes of one (track, channel, program).

    ``label`` is the GM instrument name ("Drums" on channel 10), with the track's name when
    the file gives one, and the track number when two parts would read the same.
    """

    track: int
    channel: int
    program: int
    is_drum: bool
    label: str
    index: np.ndarray  # int64 rows of score.notes, in score order


def parts(score: Score) -> list:
    """The parts of ``score`` in order of first onset (ties: track, channel, program)."""
    notes = score.notes
    if not len(notes):
        return []
    programs = note_programs(score)
    drums = notes["channel"] == DRUM_CHANNEL
    key = np.stack([notes["track"].astype(np.int64), notes["channel"].astype(np.int64),
                    np.where(drums, -1, programs).astype(np.int64)], axis=1)
    uniq, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    names = list(score.track_names)
    found = []
    for k in np.argsort(first, kind="stable").tolist():
        track, channel, program = (int(v) for v in uniq[k])
        is_drum = channel == DRUM_CHANNEL
        label = "Drums" if is_drum else GM_PROGRAM_NAMES[program]
        track_name = names[track].strip() if track < len(names) else ""
        if track_name and track_name.lower() != label.lower():
            label = f"{track_name}: {label}"
        found.append([track, channel, max(program, 0), is_drum, label,
                      np.flatnonzero(inverse == k)])
    counts: dict = {}
    for f in found:
        counts[f[4]] = counts.get(f[4], 0) + 1
    for f in found:
        if counts[f[4]] > 1:
            f[4] = f"{f[4]} (track {f[0]}, channel {f[1] + 1})"
    return [Part(*f) for f in found]
