"""The seed paper's representation (the ``paper`` preset's baseline): per note (pitch,
velocity, seconds since the previous onset) as floats, and back to a Score."""

from __future__ import annotations

import numpy as np

from ..errors import CodecError
from ..score import DEFAULT_TEMPO, NOTE_DTYPE, TEMPO_DTYPE, Score
from .config import DRUM_CHANNEL, _is_int

__all__ = ["paper_features", "paper_decode"]


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
