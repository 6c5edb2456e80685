"""Turn a Score into the time-ordered MIDI events a synthesizer plays, in output samples.

Playback follows MIDI semantics, as a hardware synthesizer playing the file would: the 16 channels
are shared by every track, a Program Change on a channel holds until the next one, and channel
10 (index 9) is the General MIDI drum kit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EVENT_DTYPE", "PROGRAM", "NOTE_OFF", "NOTE_ON", "schedule_events"]

#: Event kinds, in the order they are played when they fall on the same sample: programs first
#: (a note starting with a new instrument sounds with it), then note-offs, then note-ons (a key
#: repeated without a gap is struck again rather than cut off).
PROGRAM, NOTE_OFF, NOTE_ON = 0, 1, 2
# The note-off of a zero-length note plays after its own note-on.
_LATE_OFF = 3

#: ``sample``: output frame index; ``kind``: PROGRAM, NOTE_OFF or NOTE_ON; ``channel`` 0-15;
#: ``data``: the program or pitch; ``velocity``: note-on velocity (0 otherwise).
EVENT_DTYPE = np.dtype([("sample", "<i8"), ("kind", "u1"), ("channel", "u1"), ("data", "u1"),
                        ("velocity", "u1")])


def _program_events(score, sample_rate: int) -> np.ndarray:
    progs = score.programs
    ev = np.zeros(len(progs), EVENT_DTYPE)
    ev["sample"] = _to_samples(score, progs["tick"], sample_rate)
    ev["kind"] = PROGRAM
    ev["channel"] = progs["channel"] & 0x0F
    ev["data"] = progs["program"] & 0x7F
    return ev


def _note_events(score, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    notes = score.notes
    on = np.zeros(len(notes), EVENT_DTYPE)
    on["sample"] = _to_samples(score, notes["start"], sample_rate)
    on["kind"] = NOTE_ON
    on["channel"] = notes["channel"] & 0x0F
    on["data"] = notes["pitch"] & 0x7F
    on["velocity"] = np.clip(notes["velocity"], 1, 127)
    off = on.copy()
    off["sample"] = _to_samples(score, notes["end"], sample_rate)
    off["velocity"] = 0
    off["kind"] = np.where(off["sample"] <= on["sample"], _LATE_OFF, NOTE_OFF)
    off["sample"] = np.maximum(off["sample"], on["sample"])
    return on, off


def _to_samples(score, ticks, sample_rate: int) -> np.ndarray:
    return np.rint(score.ticks_to_seconds(ticks) * sample_rate).astype(np.int64)


def schedule_events(score, sample_rate: int) -> np.ndarray:
    """Every program change, note-on and note-off of ``score``, as EVENT_DTYPE rows sorted by
    (sample, kind); ties keep the Score's order. Times go through the Score's tempo map."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate: {sample_rate}, expected > 0")
    on, off = _note_events(score, sample_rate)
    events = np.concatenate([_program_events(score, sample_rate), off, on])
    order = np.lexsort((events["kind"], events["sample"]))  # stable: last key is primary
    events = events[order]
    events["kind"][events["kind"] == _LATE_OFF] = NOTE_OFF
    return events
