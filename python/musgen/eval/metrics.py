"""Musical features of one piece (pure NumPy): pitch, rhythm, harmony, voice leading and form.

One small function per feature, each with its formula and where it comes from. Every feature
looks at the non-drum notes only (channel 10 is percussion) and measures time in beats
(quarter notes, :meth:`musgen.Score.ticks_to_beats`). A note lasts ``[onset, offset)``; a
zero-length note is given one tick so that it sounds somewhere. A feature that is undefined for
a piece (no notes, a single onset, no four-voice beat, ...) is NaN, and set statistics skip it.

Features that MusPy (Dong et al., ISMIR 2020 LBD) also defines follow its definition exactly:
``pitch_range``, ``n_pitches`` (MusPy's ``n_pitches_used``), ``pitch_class_entropy``,
``scale_consistency`` and ``groove_consistency`` (on a grid of ``GROOVE_STEPS_PER_BEAT``). Two
differ on purpose, and say so: ``polyphony`` counts the notes sounding at each onset (MusPy's
averages over every sounding time step), and ``empty_beat_rate`` uses half-open notes (MusPy
counts a note ending on a beat line as sounding in the next beat too).

Use :func:`piece_features` for all of them at once, or the functions one by one; each accepts a
``Score`` or the ``PieceNotes`` that :func:`piece_notes` makes once and every feature reuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..score import Score

__all__ = [
    "PieceNotes", "piece_notes", "Feature", "FEATURES", "piece_features", "feature_table",
    "pitch_class_histogram", "key_normalized_pitch_class_histogram", "find_key",
    "pitch_class_entropy", "scale_consistency", "pitch_range", "n_pitches", "polyphony",
    "note_length_histogram", "ioi_histogram", "empty_beat_rate", "groove_consistency",
    "voice_count_histogram", "chord_fit", "parallel_fifths_octaves", "restrikes",
    "longest_hold", "length_beats", "ended_early", "DURATION_BINS", "DURATION_LABELS",
    "VOICE_COUNT_LABELS", "GROOVE_STEPS_PER_BEAT", "CHORD_TEMPLATES",
]

DRUM_CHANNEL = 9
#: Nominal note values (in beats) of the note-length and inter-onset histograms: 32nd, 16th,
#: 8th triplet, 8th, quarter triplet, dotted 8th, quarter, dotted quarter, half, dotted half,
#: whole, dotted whole, two whole notes and longer.
DURATION_BINS = np.array([1 / 8, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 4, 1, 3 / 2, 2, 3, 4, 6, 8])
#: A duration falls in the bin of the nearest nominal value on a log scale (bin edges are the
#: geometric means of neighbours); the first and last bins are open-ended.
DURATION_EDGES = np.sqrt(DURATION_BINS[1:] * DURATION_BINS[:-1])
DURATION_LABELS = ("1/8", "1/4", "1/3", "1/2", "2/3", "3/4", "1", "3/2", "2", "3", "4", "6",
                   "8+")
VOICE_COUNT_LABELS = ("0", "1", "2", "3", "4", "5", "6+")
#: Grid of groove_consistency (12 steps per beat hold 16ths and 8th/16th triplets exactly).
GROOVE_STEPS_PER_BEAT = 12

_MAJOR_SCALE = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)
_MINOR_SCALE = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], bool)  # natural minor
#: Krumhansl & Kessler (1982) key profiles, tonic first (Krumhansl, "Cognitive Foundations of
#: Musical Pitch", 1990, table 2.1).
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _key_profiles() -> np.ndarray:
    """float [24, 12]: the profiles rotated to tonics 0..11 (major, then minor), centred and
    scaled to unit norm, so a dot product with a centred vector over its norm is Pearson's r."""
    rows = np.array([np.roll(prof, tonic) for prof in (_KK_MAJOR, _KK_MINOR)
                     for tonic in range(12)])
    rows = rows - rows.mean(axis=1, keepdims=True)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


_KEY_PROFILES = _key_profiles()
#: Pitch classes above the root of the chords ``chord_fit`` accepts.
CHORD_TEMPLATES = {
    "major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "augmented": (0, 4, 8),
    "dominant seventh": (0, 4, 7, 10), "major seventh": (0, 4, 7, 11),
    "minor seventh": (0, 3, 7, 10), "half-diminished seventh": (0, 3, 6, 10),
    "diminished seventh": (0, 3, 6, 9),
}


def _fits_table() -> np.ndarray:
    """bool [4096]: a 12-bit pitch-class set lies inside some chord of CHORD_TEMPLATES in some
    transposition (the empty set fits nothing: it is no chord)."""
    chords = []
    for pcs in CHORD_TEMPLATES.values():
        for root in range(12):
            chords.append(sum(1 << ((root + p) % 12) for p in pcs))
    masks = np.arange(4096)
    fits = np.zeros(4096, bool)
    for c in chords:
        fits |= (masks & ~c) == 0
    fits[0] = False
    return fits


_CHORD_FITS = _fits_table()


# ------------------------------------------------------------------------------ the notes
@dataclass(frozen=True, eq=False)
class PieceNotes:
    """The non-drum notes of one piece in beats, sorted by (onset, pitch).

    Attributes
    ----------
    onset, offset : float64 [n]
        Beats; ``offset > onset`` (a zero-length note lasts one tick).
    end : float64 [n]
        The notes' real ends in beats (``end == onset`` for a zero-length note).
    pitch : int64 [n]
    instrument : int64 [n]
        One id per (track, channel, program): notes of one instrument share it.
    meter : (int, int)
        The first time signature (numerator, denominator); 4/4 when there is none.
    """

    onset: np.ndarray
    offset: np.ndarray
    end: np.ndarray
    pitch: np.ndarray
    instrument: np.ndarray
    meter: tuple

    @property
    def n(self) -> int:
        return int(self.pitch.shape[0])

    @property
    def length(self) -> float:
        """Beats from 0 to the last note's end (0 without notes)."""
        return float(self.end.max()) if self.n else 0.0


def piece_notes(score) -> PieceNotes:
    """The :class:`PieceNotes` of a ``Score`` (a ``PieceNotes`` is returned as it is)."""
    if isinstance(score, PieceNotes):
        return score
    if not isinstance(score, Score):
        raise TypeError(f"expected a musgen Score or PieceNotes, got {type(score).__name__}")
    from ..render.instruments import note_programs

    notes = score.notes
    keep = notes["channel"] != DRUM_CHANNEL
    programs = note_programs(score)[keep]
    notes = notes[keep]
    start = notes["start"].astype(np.int64)
    stop = notes["end"].astype(np.int64)
    onset = score.ticks_to_beats(start)
    offset = score.ticks_to_beats(np.maximum(stop, start + 1))
    end = score.ticks_to_beats(np.maximum(stop, start))
    pitch = notes["pitch"].astype(np.int64)
    instrument = (notes["track"].astype(np.int64) * 16 + notes["channel"]) * 128 + programs
    order = np.lexsort((pitch, onset))
    ts = score.time_signatures
    meter = (4, 4)
    if len(ts):
        first = ts[np.argsort(ts["tick"], kind="stable")][0]
        if first["numerator"] > 0 and first["denominator"] > 0:
            meter = (int(first["numerator"]), int(first["denominator"]))
    return PieceNotes(onset[order], offset[order], end[order], pitch[order], instrument[order],
                      meter)


def _sounding_at(p: PieceNotes, phase: float) -> tuple:
    """Which notes sound at the instants ``k + phase`` of the beats k = 0 .. K - 1, where
    K = ceil(length) is the number of beats the piece spans.

    Returns (note index, k) int64 arrays, one row per (note, instant) with
    ``onset <= k + phase < offset``, and K.
    """
    n_instants = int(np.ceil(p.length - 1e-9)) if p.n else 0
    if not p.n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    first = np.ceil(p.onset - phase - 1e-9).astype(np.int64)
    last = np.ceil(p.offset - phase - 1e-9).astype(np.int64)  # exclusive
    count = np.maximum(last - first, 0)
    note = np.repeat(np.arange(p.n), count)
    k = np.repeat(first - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
    inside = (k >= 0) & (k < n_instants)
    return note[inside], k[inside], n_instants


def _normalized(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.full(counts.shape, np.nan)


# ------------------------------------------------------------------------------ pitch
def pitch_class_histogram(piece) -> np.ndarray:
    """float [12]: share of the notes on each pitch class (C = 0).

    ``h[c] = #(notes with pitch mod 12 = c) / #(notes)``; NaN without notes. Yang & Lerch
    (2018), "On the evaluation of generative models in music", Neural Comput. & Appl. (MGEval's
    ``total_pitch_class_histogram``).
    """
    p = piece_notes(piece)
    return _normalized(np.bincount(p.pitch % 12, minlength=12).astype(np.float64))


def find_key(piece) -> tuple:
    """The key by Krumhansl-Schmuckler key finding -> (tonic pitch class, "major"|"minor",
    correlation).

    The duration-weighted pitch-class distribution ``d`` is correlated (Pearson) with the
    Krumhansl-Kessler major and minor profiles rotated to each of the 12 tonics; the best of
    the 24 wins (ties: lowest tonic, major first). Krumhansl (1990), "Cognitive Foundations of
    Musical Pitch", ch. 4. ``(None, None, nan)`` without notes or with a flat distribution.
    """
    p = piece_notes(piece)
    d = np.bincount(p.pitch % 12, weights=p.offset - p.onset, minlength=12)
    if not p.n or np.allclose(d, d[0]):
        return None, None, float("nan")
    d = d - d.mean()
    r = _KEY_PROFILES @ d / np.sqrt(d @ d)
    best = int(np.argmax(r))  # the first maximum: lowest tonic, major before minor
    return best % 12, ("major", "minor")[best // 12], float(r[best])


def key_normalized_pitch_class_histogram(piece) -> np.ndarray:
    """float [12]: :func:`pitch_class_histogram` rotated so that index 0 is the tonic found by
    :func:`find_key` (``h_key[i] = h[(tonic + i) mod 12]``), so pieces in different keys
    compare. NaN without notes."""
    h = pitch_class_histogram(piece)
    tonic, _, _ = find_key(piece)
    return h if tonic is None else np.roll(h, -tonic)


def pitch_class_entropy(piece) -> float:
    """Shannon entropy of the pitch-class histogram, in bits (0 .. log2 12 = 3.585).

    ``H = -sum_c h[c] log2 h[c]``; NaN without notes. Wu & Yang (2020), "The Jazz Transformer
    on the front line", ISMIR; MusPy's ``pitch_class_entropy``.
    """
    h = pitch_class_histogram(piece)
    if np.isnan(h).any():
        return float("nan")
    nz = h[h > 0]
    return float(-(nz * np.log2(nz)).sum())


def scale_consistency(piece) -> float:
    """Largest share of the notes inside one of the 24 major / natural-minor scales.

    ``max over root, mode of #(notes in scale(root, mode)) / #(notes)``; NaN without notes.
    Mogren (2016), "C-RNN-GAN", NeurIPS CML workshop; MusPy's ``scale_consistency``.
    """
    p = piece_notes(piece)
    if not p.n:
        return float("nan")
    counts = np.bincount(p.pitch % 12, minlength=12)
    best = 0
    for scale in (_MAJOR_SCALE, _MINOR_SCALE):
        for root in range(12):
            best = max(best, int(counts[np.roll(scale, root)].sum()))
    return best / p.n


def pitch_range(piece) -> float:
    """Highest minus lowest pitch, in semitones; NaN without notes (MusPy: 0). MusPy's
    ``pitch_range``; Yang & Lerch (2018) ``pitch_range``."""
    p = piece_notes(piece)
    return float(p.pitch.max() - p.pitch.min()) if p.n else float("nan")


def n_pitches(piece) -> float:
    """Number of distinct pitches used. MusPy's ``n_pitches_used``; Yang & Lerch (2018)
    ``total_used_pitch``."""
    return float(np.unique(piece_notes(piece).pitch).size)


# ------------------------------------------------------------------------------ rhythm
def polyphony(piece) -> float:
    """Mean number of notes sounding at each onset.

    ``mean over distinct onsets t of #(notes with onset <= t < offset)``; NaN without notes.
    Unlike MusPy's ``polyphony`` (mean over every sounding time step), a held note counts only
    at the onsets it spans, so this reads as "notes per attack point".
    """
    p = piece_notes(piece)
    if not p.n:
        return float("nan")
    t = np.unique(p.onset)
    started = np.searchsorted(p.onset, t, side="right")  # p.onset is sorted
    ended = np.searchsorted(np.sort(p.offset), t, side="right")
    return float(np.mean(started - ended))


def _duration_histogram(values: np.ndarray) -> np.ndarray:
    bins = np.searchsorted(DURATION_EDGES, values, side="right")
    return _normalized(np.bincount(bins, minlength=len(DURATION_BINS)).astype(np.float64))


def note_length_histogram(piece) -> np.ndarray:
    """float [13]: share of the notes in each duration bin (``DURATION_BINS``, in beats; a
    duration goes to the nearest nominal value on a log scale). NaN without notes. After Yang &
    Lerch (2018) ``note_length_hist``, in beats instead of bar fractions."""
    p = piece_notes(piece)
    if not p.n:
        return np.full(len(DURATION_BINS), np.nan)
    return _duration_histogram(p.end - p.onset)


def ioi_histogram(piece) -> np.ndarray:
    """float [13]: inter-onset intervals (beats between consecutive distinct onsets) in the
    bins of :func:`note_length_histogram`. NaN with fewer than two onsets. After Yang & Lerch
    (2018) ``avg_IOI``, as a distribution."""
    t = np.unique(piece_notes(piece).onset)
    if t.size < 2:
        return np.full(len(DURATION_BINS), np.nan)
    return _duration_histogram(np.diff(t))


def empty_beat_rate(piece) -> float:
    """Share of the beats ``[k, k + 1)``, k = 0 .. ceil(length) - 1, in which no note sounds.

    A beat is sounding when some note has ``onset < k + 1`` and ``offset > k``. NaN without
    notes. Dong et al. (2018), "Pypianoroll", ISMIR LBD; MusPy's ``empty_beat_rate`` counts a
    note's last beat inclusively (a note ending on a beat line fills the next beat too); here
    notes are half-open, so a rest of one beat after a note is seen.
    """
    p = piece_notes(piece)
    if not p.n:
        return float("nan")
    n_beats = max(int(np.ceil(p.length - 1e-9)), 1)
    first = np.floor(p.onset + 1e-9).astype(np.int64)
    last = np.ceil(p.offset - 1e-9).astype(np.int64)
    cover = np.zeros(n_beats + 1, np.int64)
    np.add.at(cover, np.clip(first, 0, n_beats), 1)
    np.add.at(cover, np.clip(last, 0, n_beats), -1)
    return float(np.mean(np.cumsum(cover)[:n_beats] <= 0))


def groove_consistency(piece, steps_per_beat: int = GROOVE_STEPS_PER_BEAT) -> float:
    """MusPy's groove consistency on a grid of ``steps_per_beat``, measures of the first time
    signature.

    ``1 - 1 / (R (T - 1)) sum_{i=1}^{T-1} hamming(G_i, G_{i+1})`` where ``G_i`` is the binary
    onset pattern of measure i on R steps per measure and ``T = floor(length / R) + 1`` (MusPy
    counts one measure more when the piece ends on a bar line). NaN with fewer than 2 measures.
    The length is the last note's end (MusPy's ``get_end_time`` also counts lyrics and
    annotations, so a file with text events after its music gets more empty measures there).
    Wu & Yang (2020), "The Jazz Transformer on the front line", ISMIR; MusPy's
    ``groove_consistency(music.adjust_resolution(steps_per_beat), R)``.
    """
    p = piece_notes(piece)
    num, den = p.meter
    resolution = int(round(steps_per_beat * num * 4 / den))
    if not p.n or resolution < 1:
        return float("nan")
    length = int(np.round(p.end.max() * steps_per_beat))
    n_measures = length // resolution + 1
    if n_measures < 2:
        return float("nan")
    steps = np.round(p.onset * steps_per_beat).astype(np.int64)
    pattern = np.zeros((n_measures, resolution), bool)
    pattern[steps // resolution, steps % resolution] = True
    distance = np.count_nonzero(pattern[:-1] != pattern[1:])
    return float(1.0 - distance / (resolution * (n_measures - 1)))


def voice_count_histogram(piece) -> np.ndarray:
    """float [7]: share of the beats with 0, 1, ..., 5 and 6 or more notes sounding at the
    middle of the beat (``k + 0.5``, k = 0 .. ceil(length) - 1). NaN without notes."""
    p = piece_notes(piece)
    _, k, n_instants = _sounding_at(p, 0.5)
    if n_instants == 0:
        return np.full(7, np.nan)
    voices = np.minimum(np.bincount(k, minlength=n_instants), 6)
    return _normalized(np.bincount(voices, minlength=7).astype(np.float64))


# ------------------------------------------------------------------------------ harmony
def _beat_chords(p: PieceNotes) -> tuple:
    """At each beat start k = 0 .. K-1 -> (pitch-class bit mask int64 [K], beat of each
    sounding note, its pitch (both sorted by beat, then pitch), K)."""
    note, k, n_beats = _sounding_at(p, 0.0)
    masks = np.zeros(n_beats, np.int64)
    np.bitwise_or.at(masks, k, np.left_shift(1, p.pitch[note] % 12))
    order = np.lexsort((p.pitch[note], k))
    return masks, k[order], p.pitch[note][order], n_beats


def chord_fit(piece) -> float:
    """Share of the sounding beats whose pitch classes all lie inside one chord.

    At each beat start ``k`` the pitch classes of the notes with ``onset <= k < offset`` form
    a set S; a beat is sounding when S is not empty, and fits when S is a subset of a major,
    minor, diminished or augmented triad or a dominant, major, minor, half-diminished or
    diminished seventh chord on any root (``CHORD_TEMPLATES``). ``#(fitting) / #(sounding)``;
    NaN without a sounding beat. A subset fits, so a bare third or a doubled root fits too:
    what fails is a clash (a non-chord tone held against a chord, C-E-F-A, major and minor
    third together).
    """
    masks = _beat_chords(piece_notes(piece))[0]
    sounding = masks != 0
    if not sounding.any():
        return float("nan")
    return float(np.mean(_CHORD_FITS[masks[sounding]]))


def parallel_fifths_octaves(piece) -> float:
    """Share of the changes between consecutive four-voice beats that hold a parallel perfect
    fifth or octave.

    At each beat start the sounding pitches, sorted low to high, are the voices (bass, tenor,
    alto, soprano when exactly four sound). For consecutive beats k, k+1 that both have four
    voices and differ (a change), a pair of voices makes parallels when both move in the same
    direction and their interval is a perfect fifth (7 mod 12) or octave/unison (0 mod 12)
    both before and after. ``#(changes with parallels) / #(changes)``; NaN without a change.
    The textbook rule of common-practice voice leading (e.g. Aldwell & Schachter, "Harmony and
    Voice Leading"); voices are assigned by register, so crossing voices are read uncrossed.
    """
    masks, k, pitch, n_beats = _beat_chords(piece_notes(piece))
    per_beat = np.bincount(k, minlength=n_beats)
    four = np.flatnonzero(per_beat == 4)
    if four.size < 2:
        return float("nan")
    starts = np.concatenate([[0], np.cumsum(per_beat)])[four]
    voices = pitch[starts[:, None] + np.arange(4)[None, :]]  # [n_four, 4], low to high
    pair = np.flatnonzero(np.diff(four) == 1)
    before, after = voices[pair], voices[pair + 1]
    change = np.any(before != after, axis=1)
    if not change.any():
        return float("nan")
    before, after = before[change], after[change]
    move = np.sign(after - before)
    i, j = np.triu_indices(4, 1)
    held = (before[:, j] - before[:, i]) % 12
    same_interval = held == (after[:, j] - after[:, i]) % 12
    perfect = (held == 7) | (held == 0)
    parallel = same_interval & perfect & (move[:, i] == move[:, j]) & (move[:, i] != 0)
    return float(np.mean(parallel.any(axis=1)))


def restrikes(piece) -> float:
    """Notes that start on a pitch their own instrument is still sounding, per 100 notes.

    A note at onset t re-strikes when an earlier note (onset < t) of the same instrument
    (track, channel, program) and pitch has ``offset > t``. ``100 x #(re-strikes) / #(notes)``;
    NaN without notes. A MIDI synthesizer cuts or doubles such a note; in written music a held
    note is not struck again while it sounds.
    """
    p = piece_notes(piece)
    if not p.n:
        return float("nan")
    key = p.instrument * 128 + p.pitch
    order = np.lexsort((p.onset, key))
    k, t, off = key[order], p.onset[order], p.offset[order]
    new_group = np.concatenate([[True], k[1:] != k[:-1]])
    group = np.cumsum(new_group) - 1
    big = float(off.max()) + 1.0
    run_max = np.maximum.accumulate(off + group * big) - group * big  # within-group max so far
    # the latest offset among notes with a strictly earlier onset in the same group
    new_onset = new_group | np.concatenate([[True], t[1:] != t[:-1]])
    first_of_onset = np.maximum.accumulate(np.where(new_onset, np.arange(len(t)), 0))
    prev = first_of_onset - 1
    has_prev = (prev >= 0) & ~new_group[first_of_onset]
    earlier_max = np.where(has_prev, run_max[np.maximum(prev, 0)], -np.inf)
    return float(100.0 * np.count_nonzero(earlier_max > t) / p.n)


def longest_hold(piece) -> float:
    """The longest time, in beats, that one pitch sounds without a break.

    Notes of the same pitch (any instrument) that overlap (the next onset before the current
    end) are merged into one sounding span; a note that starts exactly when the last one ends
    is a new attack and starts a new span. The longest span, in beats; NaN without notes.
    """
    p = piece_notes(piece)
    if not p.n:
        return float("nan")
    order = np.lexsort((p.onset, p.pitch))
    pitch, t, off = p.pitch[order], p.onset[order], p.offset[order]
    new_group = np.concatenate([[True], pitch[1:] != pitch[:-1]])
    group = np.cumsum(new_group) - 1
    big = float(off.max()) + 1.0
    run_max = np.maximum.accumulate(off + group * big) - group * big
    starts_span = new_group | np.concatenate([[True], t[1:] >= run_max[:-1]])
    span = np.cumsum(starts_span) - 1
    span_start = t[starts_span]
    span_end = np.zeros(span_start.size)
    np.maximum.at(span_end, span, off)
    return float(np.max(span_end - span_start))


# ------------------------------------------------------------------------------ form
def length_beats(piece) -> float:
    """Beats from the start to the last note's end (0 without notes)."""
    return piece_notes(piece).length


def ended_early(piece, target_beats: float | None) -> float:
    """1.0 when the piece ends (its last note's end) before ``target_beats``, else 0.0; NaN
    when no length was asked (``target_beats`` None)."""
    if target_beats is None:
        return float("nan")
    return float(length_beats(piece) < float(target_beats) - 1e-9)


# ------------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class Feature:
    """A feature of the table: its function, its size (1 for a scalar, else the bins), what a
    person reads, and whether the set comparison (overlap, KL) applies to it."""

    name: str
    function: Callable
    size: int
    description: str
    unit: str = ""
    labels: tuple = ()
    compare: bool = True


FEATURES = {f.name: f for f in [
    Feature("pitch_class_histogram", pitch_class_histogram, 12,
            "share of notes per pitch class", labels=("C", "C#", "D", "D#", "E", "F", "F#",
                                                      "G", "G#", "A", "A#", "B")),
    Feature("key_normalized_pitch_class_histogram", key_normalized_pitch_class_histogram, 12,
            "pitch-class shares from the tonic (Krumhansl-Schmuckler key)",
            labels=tuple(str(i) for i in range(12))),
    Feature("pitch_class_entropy", pitch_class_entropy, 1, "pitch-class entropy", "bits"),
    Feature("scale_consistency", scale_consistency, 1, "largest share in one scale"),
    Feature("pitch_range", pitch_range, 1, "pitch range", "semitones"),
    Feature("n_pitches", n_pitches, 1, "distinct pitches"),
    Feature("polyphony", polyphony, 1, "notes sounding per onset"),
    Feature("note_length_histogram", note_length_histogram, len(DURATION_BINS),
            "note lengths", "beats", DURATION_LABELS),
    Feature("ioi_histogram", ioi_histogram, len(DURATION_BINS), "inter-onset intervals",
            "beats", DURATION_LABELS),
    Feature("empty_beat_rate", empty_beat_rate, 1, "share of silent beats"),
    Feature("groove_consistency", groove_consistency, 1, "groove consistency (MusPy)"),
    Feature("voice_count_histogram", voice_count_histogram, 7,
            "notes sounding at mid-beat", labels=VOICE_COUNT_LABELS),
    Feature("chord_fit", chord_fit, 1, "beats inside a triad or seventh chord"),
    Feature("parallel_fifths_octaves", parallel_fifths_octaves, 1,
            "four-voice changes with parallel fifths/octaves"),
    Feature("restrikes", restrikes, 1, "re-struck sounding notes", "per 100 notes"),
    Feature("longest_hold", longest_hold, 1, "longest held pitch", "beats"),
    Feature("length_beats", length_beats, 1, "length", "beats"),
    Feature("ended_early", ended_early, 1, "ended before the asked length", compare=False),
]}


def piece_features(score, *, target_beats: float | None = None) -> dict:
    """Every feature of :data:`FEATURES` for one piece -> {name: float or float64 array}."""
    p = piece_notes(score)
    out = {}
    for name, f in FEATURES.items():
        out[name] = f.function(p, target_beats) if name == "ended_early" else f.function(p)
    return out


def feature_table(scores, *, target_beats: float | None = None, progress=None) -> dict:
    """Features of many pieces -> {name: float64 [n] (scalars) or [n, bins] (histograms)}.

    ``progress`` (callable(int) or None) is called once per piece.
    """
    rows = []
    for s in scores:
        rows.append(piece_features(s, target_beats=target_beats))
        if progress is not None:
            progress(1)
    table = {}
    for name, f in FEATURES.items():
        shape = (len(rows),) if f.size == 1 else (len(rows), f.size)
        table[name] = (np.array([r[name] for r in rows], np.float64) if rows
                       else np.zeros(shape))
    return table
