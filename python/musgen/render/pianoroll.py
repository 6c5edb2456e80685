"""Piano rolls of a Score with matplotlib: notes as bars coloured by part, drums as diamonds,
the beat and bar grid of the score's time signatures, time in beats and pitch names.

Only matplotlib's object API is used (``Figure`` with the Agg canvas), never ``pyplot``, so
drawing works on servers and in threads and never opens a window or picks a GUI backend.
matplotlib is an optional dependency (``pip install musgen[plot]``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..errors import MissingDependencyError
from ..score import DEFAULT_TEMPO, Score
from .instruments import parts, pitch_name

__all__ = ["draw_piano_roll", "save_piano_roll", "piano_roll_figure", "grid_lines",
           "tempo_text", "meter_text", "part_colors"]

#: Bar height in semitones (a gap of 0.2 keeps neighbouring pitches apart).
NOTE_HEIGHT = 0.8
#: Zero-length notes (and notes shorter than this) are drawn this wide, in beats.
MIN_NOTE_WIDTH = 1.0 / 32.0
#: Beyond this many beat lines in view, only bar lines are drawn (they would merge into grey).
MAX_BEAT_LINES = 400
_BLACK_KEYS = {1, 3, 6, 8, 10}


def _matplotlib():
    """matplotlib, or the one-line error telling how to install it."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            "piano rolls need matplotlib, which is not installed: pip install musgen[plot]"
        ) from None
    return Figure


# ------------------------------------------------------------------------------ score facts
def tempo_text(score: Score) -> str:
    """The tempo as people read it: "100 BPM", "96-120 BPM" with changes, or SMPTE's fps."""
    if score.smpte is not None:
        return f"SMPTE {score.smpte[0]:g} fps"
    tempos = np.asarray(score.tempos["tempo"], np.float64)
    if not len(tempos) or score.tempos["tick"][0] > 0:
        tempos = np.concatenate([[DEFAULT_TEMPO], tempos])
    bpm = 60e6 / tempos
    lo, hi = float(bpm.min()), float(bpm.max())
    if round(lo) == round(hi):
        return f"{lo:.0f} BPM"
    return f"{lo:.0f}-{hi:.0f} BPM ({len(tempos)} tempos)"


def _meters(score: Score) -> list:
    """[(tick, numerator, denominator)] with 4/4 until the first time signature (the MIDI
    default); several signatures on one tick: the last one wins."""
    ts = np.asarray(score.time_signatures)
    out = [(0, 4, 4)]
    for row in ts[np.argsort(ts["tick"], kind="stable")]:
        tick, num, den = int(row["tick"]), int(row["numerator"]), int(row["denominator"])
        if num <= 0 or den <= 0:
            continue  # a damaged signature: keep the previous meter
        if out[-1][0] == tick or tick <= 0:
            out[-1] = (max(tick, 0), num, den)
        else:
            out.append((tick, num, den))
    return out


def meter_text(score: Score) -> str:
    """The time signatures in order: "4/4", "3/4 -> 4/4" (at most three shown)."""
    meters = [f"{n}/{d}" for _, n, d in _meters(score)]
    merged = [m for i, m in enumerate(meters) if i == 0 or m != meters[i - 1]]
    return " -> ".join(merged[:3]) + (" ..." if len(merged) > 3 else "")


def _beat_unit(num: int, den: int) -> float:
    """Length of the counted beat in quarter notes: the denominator's note, or its dotted
    value in compound meters (6/8, 9/8, 12/8: three eighths per beat)."""
    unit = 4.0 / den
    if den >= 8 and num % 3 == 0 and num > 3:
        return 3.0 * unit
    return unit


def _multiples(origin: float, step: float, a: float, b: float, limit: float) -> np.ndarray:
    """``origin + k * step`` (k >= 0) inside [a, b] and before ``limit``."""
    eps = 1e-9
    k0 = max(0.0, np.ceil((a - origin) / step - eps))
    k1 = np.floor((b - origin) / step + eps)
    x = origin + np.arange(k0, k1 + 1) * step
    return x[x < limit - eps]


def grid_lines(score: Score, start: float, end: float) -> tuple:
    """(beat lines, bar lines) in beats within [start, end], float64 arrays.

    Each time signature starts a new bar where it occurs; a bar lasts ``numerator x 4 /
    denominator`` quarter notes. Beat lines do not repeat bar lines.
    """
    meters = _meters(score)
    at = [float(score.ticks_to_beats(t)) for t, _, _ in meters] + [np.inf]
    beats, bars = [np.zeros(0)], [np.zeros(0)]
    for (_, num, den), lo, hi in zip(meters, at[:-1], at[1:]):
        a, b = max(lo, start), min(hi, end)
        if b < a:
            continue
        bar_len = num * 4.0 / den
        bars.append(_multiples(lo, bar_len, a, b, hi))
        u = _multiples(lo, _beat_unit(num, den), a, b, hi)
        phase = ((u - lo) / bar_len) % 1.0
        beats.append(u[~(np.isclose(phase, 0.0) | np.isclose(phase, 1.0))])
    return np.concatenate(beats), np.concatenate(bars)


def part_colors(n: int) -> list:
    """``n`` distinct RGBA colours: matplotlib's tab10, then tab20 for more parts."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ---------------------------------------------------------------------------------- drawing
def _window(score: Score, beats) -> tuple:
    """The shown span [start, end] in beats: ``beats`` None (the whole piece), a length from
    0, or a (start, end) pair."""
    if beats is None:
        end = float(score.ticks_to_beats(score.end_tick)) if score.n_notes else 4.0
        return 0.0, max(end, 1.0)
    if np.ndim(beats) == 0:
        start, end = 0.0, float(beats)
    else:
        if len(beats) != 2:
            raise ValueError(f"beats={beats!r}: expected a length or a (start, end) pair")
        start, end = float(beats[0]), float(beats[1])
    if not np.isfinite(start) or not np.isfinite(end) or end <= start:
        raise ValueError(f"beats={beats!r}: expected finite start < end, in beats")
    return start, end


def _note_rects(onset: np.ndarray, offset: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """float [n, 4, 2]: one rectangle per note, NOTE_HEIGHT tall around its pitch."""
    right = np.maximum(offset, onset + MIN_NOTE_WIDTH)
    lo, hi = pitch - NOTE_HEIGHT / 2, pitch + NOTE_HEIGHT / 2
    return np.stack([np.stack([onset, lo], 1), np.stack([onset, hi], 1),
                     np.stack([right, hi], 1), np.stack([right, lo], 1)], axis=1)


def _draw_parts(ax, score: Score, start: float, end: float, velocity: bool) -> list:
    """Draw every part's notes; returns the legend handles."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    notes = score.notes
    onset = score.ticks_to_beats(notes["start"])
    offset = score.ticks_to_beats(notes["end"])
    found = parts(score)
    handles = []
    for part, color in zip(found, part_colors(len(found))):
        idx = part.index[(offset[part.index] >= start) & (onset[part.index] <= end)]
        pitch = notes["pitch"][idx].astype(np.float64)
        alpha = (0.35 + 0.65 * notes["velocity"][idx] / 127.0) if velocity else np.ones(len(idx))
        faces = np.tile(np.asarray(to_rgba(color)), (len(idx), 1))
        faces[:, 3] = alpha
        if part.is_drum:
            ax.scatter(onset[idx], pitch, s=18, marker="D", c=faces, edgecolors="black",
                       linewidths=0.4, zorder=3)
            handles.append(Line2D([], [], ls="none", marker="D", markerfacecolor=color,
                                  markeredgecolor="black", label=f"{part.label} (hits)"))
        else:
            edge = tuple(0.55 * c for c in to_rgba(color)[:3]) + (1.0,)
            ax.add_collection(PolyCollection(_note_rects(onset[idx], offset[idx], pitch),
                                             facecolors=faces, edgecolors=[edge],
                                             linewidths=0.5, zorder=2))
            handles.append(Patch(facecolor=color, edgecolor=edge, label=part.label))
    return handles


def _pitch_axis(ax, lo: int, hi: int) -> None:
    """Pitch names on the y axis and the black-key rows shaded, like a keyboard."""
    from matplotlib.ticker import FixedLocator

    ax.set_ylim(lo - 0.5, hi + 0.5)
    for p in range(lo, hi + 1):
        if p % 12 in _BLACK_KEYS:
            ax.axhspan(p - 0.5, p + 0.5, facecolor="0.93", edgecolor="none", zorder=0)
    every = 1 if hi - lo <= 24 else 12
    ticks = [p for p in range(lo, hi + 1) if every == 1 or p % 12 == 0]
    if every == 1:
        ticks = [p for p in ticks if p % 12 not in _BLACK_KEYS] or ticks
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.set_yticklabels([pitch_name(p) for p in ticks])
    ax.yaxis.set_minor_locator(FixedLocator(list(range(lo, hi + 1))))
    ax.tick_params(axis="y", which="minor", length=0)
    ax.set_ylabel("pitch")


def _grid(ax, score: Score, start: float, end: float) -> None:
    beat, bar = grid_lines(score, start, end)
    transform = ax.get_xaxis_transform()
    if len(beat) + len(bar) <= MAX_BEAT_LINES:
        ax.vlines(beat, 0, 1, transform=transform, colors="0.82", linewidths=0.5, zorder=1)
    ax.vlines(bar, 0, 1, transform=transform, colors="0.45", linewidths=0.9, zorder=1)


def draw_piano_roll(score: Score, ax=None, *, title: str | None = None, beats=None,
                    pitch_range: tuple | None = None, legend: bool = True,
                    velocity: bool = False, grid: bool = True):
    """Draw ``score`` as a piano roll.

    Parameters
    ----------
    score : Score
    ax : matplotlib Axes or None
        Where to draw; None makes a new ``Figure`` (Agg canvas, no pyplot).
    title : str or None
        Drawn on the left above the roll; the tempo and meter are on the right.
    beats : float, (float, float) or None
        The span shown, in beats (quarter notes): a length from beat 0, a (start, end) pair,
        or None for the whole piece.
    pitch_range : (int, int) or None
        Lowest and highest MIDI pitch shown; None: the notes' range plus two semitones.
    legend : bool
        One entry per part (track, channel, program) with its General MIDI instrument name;
        drums are drawn and listed as diamonds at their key number.
    velocity : bool
        Note opacity follows velocity (else every note is opaque).
    grid : bool
        Beat lines (light) and bar lines (dark) from the score's time signatures.

    Returns
    -------
    matplotlib.axes.Axes
    """
    Figure = _matplotlib()
    if not isinstance(score, Score):
        raise TypeError(f"draw_piano_roll: expected a musgen Score, got {type(score).__name__}")
    if ax is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = Figure(figsize=(12, 4.8), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    start, end = _window(score, beats)
    pitches = score.notes["pitch"]
    if pitch_range is None:
        lo, hi = ((int(pitches.min()) - 2, int(pitches.max()) + 2) if len(pitches)
                  else (57, 72))
    else:
        lo, hi = (int(v) for v in pitch_range)
        if not 0 <= lo <= hi <= 127:
            raise ValueError(f"pitch_range={pitch_range!r}: expected 0 <= low <= high <= 127")
    lo, hi = max(lo, 0), min(hi, 127)
    _pitch_axis(ax, lo, hi)
    ax.set_xlim(start, end)
    if grid:
        _grid(ax, score, start, end)
    handles = _draw_parts(ax, score, start, end, velocity)
    if not handles:
        ax.text(0.5, 0.5, "no notes", transform=ax.transAxes, ha="center", va="center",
                color="0.4")
    ax.set_xlabel("time (beats)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 4, 5, 10]))
    if title:
        ax.set_title(title, loc="left", fontsize="medium")
    ax.set_title(f"{tempo_text(score)}, {meter_text(score)}", loc="right", fontsize="small",
                 color="0.3")
    if legend and handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0),
                  borderaxespad=0.0, fontsize="small", frameon=False)
    return ax


def piano_roll_figure(score: Score, *, title: str | None = None, width: int = 1200,
                      height: int = 480, dpi: int = 100, **options):
    """A ``Figure`` of ``width`` x ``height`` pixels at ``dpi`` holding the piano roll of
    ``score`` (``options`` as :func:`draw_piano_roll`), with an Agg canvas."""
    Figure = _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for name, value in (("width", width), ("height", height), ("dpi", dpi)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 16:
            raise ValueError(f"{name}={value!r}: expected an integer >= 16 (pixels / dots per "
                             "inch)")
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    draw_piano_roll(score, fig.add_subplot(), title=title, **options)
    # Settle the constrained layout once and freeze it: every later draw (savefig, a test's
    # pixel transform) then sees the same axes position.
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    return fig


def save_piano_roll(score: Score, path: str | os.PathLike, *, title: str | None = None,
                    width: int = 1200, height: int = 480, dpi: int = 100, **options) -> Path:
    """Write the piano roll of ``score`` as a PNG of exactly ``width`` x ``height`` pixels.

    ``options`` are those of :func:`draw_piano_roll` (beats, pitch_range, legend, velocity,
    grid). Returns the path written.
    """
    from .._io import atomic_write_bytes

    path = Path(path)
    fig = piano_roll_figure(score, title=title, width=width, height=height, dpi=dpi, **options)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path
