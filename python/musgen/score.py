"""Score: the in-memory form of a MIDI file that every stage passes along.

One definition of every array layout lives here; the C++ core fills arrays with exactly these
(aligned) layouts, and tests check the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "NOTE_DTYPE",
    "TEMPO_DTYPE",
    "TIME_SIGNATURE_DTYPE",
    "KEY_SIGNATURE_DTYPE",
    "PROGRAM_DTYPE",
    "Score",
    "DEFAULT_TEMPO",
]

#: One row per note. ``start``/``end`` are absolute ticks; ``track`` is the index of the MTrk
#: chunk in file order; ``velocity`` is the note-on's. Sorted by (start, track, channel, pitch, end).
NOTE_DTYPE = np.dtype(
    [
        ("track", "<u2"),
        ("channel", "u1"),
        ("pitch", "u1"),
        ("velocity", "u1"),
        ("start", "<i8"),
        ("end", "<i8"),
    ],
    align=True,
)
#: Set Tempo events of all tracks merged, sorted by tick (stable in file order).
#: ``tempo`` is microseconds per beat (quarter note).
TEMPO_DTYPE = np.dtype([("tick", "<i8"), ("tempo", "<u4")], align=True)
#: ``denominator`` is the real denominator (4 for x/4), not the power of two stored in the file.
TIME_SIGNATURE_DTYPE = np.dtype(
    [
        ("tick", "<i8"),
        ("numerator", "u1"),
        ("denominator", "u1"),
        ("clocks_per_click", "u1"),
        ("notated_32nds", "u1"),
    ],
    align=True,
)
#: ``key`` is sharps (>0) or flats (<0); ``mode`` 0 = major, 1 = minor.
KEY_SIGNATURE_DTYPE = np.dtype(
    [("tick", "<i8"), ("track", "<u2"), ("key", "i1"), ("mode", "u1")], align=True
)
#: Program Change events, per track and channel, in (tick, track, channel) order.
PROGRAM_DTYPE = np.dtype(
    [("tick", "<i8"), ("track", "<u2"), ("channel", "u1"), ("program", "u1")], align=True
)

#: 120 BPM, the tempo before the first Set Tempo event.
DEFAULT_TEMPO = 500_000


def _empty(dtype: np.dtype) -> np.ndarray:
    return np.zeros(0, dtype=dtype)


@dataclass(eq=False)
class Score:
    """A parsed MIDI file.

    Attributes
    ----------
    notes : ndarray of NOTE_DTYPE
        One row per note, ticks, sorted by (start, track, channel, pitch, end).
    ticks_per_beat : int
        Ticks per quarter note (metrical division). For SMPTE division this is 0 and
        ``smpte`` holds (frames per second, ticks per frame).
    tempos, time_signatures, key_signatures, programs : ndarrays (see the *_DTYPE constants)
    track_names : list of str
        Per MTrk chunk, the first Track Name meta event (latin-1 decoded), or "".
    format : int
        SMF format (0, 1 or 2) as stated by the header.
    smpte : tuple (fps, ticks_per_frame) or None
        ``fps`` is 24, 25, 29.97 (stored as 29.97) or 30.
    """

    notes: np.ndarray = field(default_factory=lambda: _empty(NOTE_DTYPE))
    ticks_per_beat: int = 480
    tempos: np.ndarray = field(default_factory=lambda: _empty(TEMPO_DTYPE))
    time_signatures: np.ndarray = field(default_factory=lambda: _empty(TIME_SIGNATURE_DTYPE))
    key_signatures: np.ndarray = field(default_factory=lambda: _empty(KEY_SIGNATURE_DTYPE))
    programs: np.ndarray = field(default_factory=lambda: _empty(PROGRAM_DTYPE))
    track_names: list = field(default_factory=list)
    format: int = 1
    smpte: tuple | None = None

    def __post_init__(self) -> None:
        for name, dtype in (
            ("notes", NOTE_DTYPE),
            ("tempos", TEMPO_DTYPE),
            ("time_signatures", TIME_SIGNATURE_DTYPE),
            ("key_signatures", KEY_SIGNATURE_DTYPE),
            ("programs", PROGRAM_DTYPE),
        ):
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.dtype != dtype:
                raise TypeError(f"Score.{name}: expected an ndarray of dtype {dtype}, got "
                                f"{getattr(arr, 'dtype', type(arr))}")
        if self.smpte is None and self.ticks_per_beat <= 0:
            raise ValueError(f"Score.ticks_per_beat: expected > 0, got {self.ticks_per_beat}")

    # ------------------------------------------------------------------ time conversion
    @property
    def n_notes(self) -> int:
        return int(self.notes.shape[0])

    @property
    def end_tick(self) -> int:
        """The last note's end (0 for an empty score)."""
        return int(self.notes["end"].max()) if self.notes.size else 0

    def ticks_to_seconds(self, ticks) -> np.ndarray:
        """Convert absolute ticks to seconds through the merged tempo map.

        With SMPTE division, seconds = ticks / (fps * ticks_per_frame) and tempo is ignored.
        Several tempo events at the same tick: the last in the map wins.
        """
        t = np.asarray(ticks, dtype=np.int64)
        if self.smpte is not None:
            fps, tpf = self.smpte
            return t.astype(np.float64) / (float(fps) * float(tpf))
        tpb = float(self.ticks_per_beat)
        ticks_at = np.concatenate([[0], self.tempos["tick"].astype(np.int64)])
        tempo_at = np.concatenate([[DEFAULT_TEMPO], self.tempos["tempo"].astype(np.float64)])
        # Collapse tempo events that share a tick (the last one wins).
        keep = np.ones(ticks_at.shape[0], dtype=bool)
        keep[:-1] = ticks_at[1:] != ticks_at[:-1]
        ticks_at, tempo_at = ticks_at[keep], tempo_at[keep]
        seg_seconds = np.diff(ticks_at) * tempo_at[:-1] / 1e6 / tpb
        base = np.concatenate([[0.0], np.cumsum(seg_seconds)])
        idx = np.searchsorted(ticks_at, t, side="right") - 1
        idx = np.clip(idx, 0, None)
        return base[idx] + (t - ticks_at[idx]) * tempo_at[idx] / 1e6 / tpb

    def ticks_to_beats(self, ticks) -> np.ndarray:
        """Convert absolute ticks to beats (quarter notes), float64.

        Beats follow the metrical division and ignore tempo. SMPTE files have no beat: one
        beat is counted per half second (120 BPM), as the codec's beat grid does.
        """
        t = np.asarray(ticks, dtype=np.int64)
        if self.smpte is not None:
            return self.ticks_to_seconds(t) * 2.0
        return t.astype(np.float64) / float(self.ticks_per_beat)

    @property
    def duration_seconds(self) -> float:
        return float(self.ticks_to_seconds(self.end_tick)) if self.notes.size else 0.0

    def __repr__(self) -> str:
        div = f"smpte={self.smpte}" if self.smpte else f"ticks_per_beat={self.ticks_per_beat}"
        return (f"Score({self.n_notes} notes, {div}, {len(self.tempos)} tempos, "
                f"{len(self.track_names)} tracks, format={self.format})")

    def equals(self, other: "Score") -> bool:
        """Exact equality of every field (used by parity tests)."""
        return (
            self.ticks_per_beat == other.ticks_per_beat
            and self.smpte == other.smpte
            and self.format == other.format
            and list(self.track_names) == list(other.track_names)
            and all(
                np.array_equal(getattr(self, f), getattr(other, f))
                for f in ("notes", "tempos", "time_signatures", "key_signatures", "programs")
            )
        )
