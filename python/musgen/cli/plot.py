"""``musgen plot``: piano rolls of MIDI files (instruments coloured, beat and bar grid, tempo)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._inputs import midi_jobs

FORMATS = ("png", "svg", "pdf")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="IN", help="MIDI file(s) or folder(s)")
    p.add_argument("-o", "--output", required=True,
                   help="roll.png / .svg / .pdf for one MIDI file, else a folder")
    p.add_argument("--format", default="png", choices=FORMATS,
                   help="format of the files written into a folder (default png)")
    add_plot_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_plot_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared with ``musgen generate --plot``."""
    p.add_argument("--width", type=int, default=1200, help="pixels (default 1200)")
    p.add_argument("--height", type=int, default=480, help="pixels (default 480)")
    p.add_argument("--beats", default=None, metavar="[START:]END",
                   help="the span drawn, in beats (default: the whole piece)")
    p.add_argument("--velocity", action="store_true", help="note opacity follows velocity")


def _beats(text: str | None):
    if text is None:
        return None
    try:
        parts = [float(x) for x in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise SystemExit(f"musgen plot: error: --beats {text!r}: expected END or START:END in "
                         "beats, e.g. 32 or 16:48")
    return parts[0] if len(parts) == 1 else tuple(parts)


def plot_options(args: argparse.Namespace) -> dict:
    return {"width": args.width, "height": args.height, "beats": _beats(args.beats),
            "velocity": args.velocity}


def save_plot(score, path: Path, *, title: str, options: dict) -> None:
    """The piano roll of ``score`` in the format ``path``'s suffix names."""
    import io

    from .._io import atomic_write_bytes
    from ..render import piano_roll_figure

    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{path}: unknown picture format {path.suffix!r}, expected "
                         f"{', '.join('.' + f for f in FORMATS)}")
    fig = piano_roll_figure(score, title=title, **options)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=fig.dpi)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ValueError, OSError) as exc:  # bad suffix or size, unwritable output: one line
        raise SystemExit(f"musgen plot: error: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    from .. import midi
    from .._progress import progress_bar

    options = plot_options(args)
    out = Path(args.output)
    if len(args.inputs) == 1 and Path(args.inputs[0]).is_file() and out.suffix:
        src = Path(args.inputs[0])
        save_plot(midi.read(src), out, title=src.name, options=options)
        if not args.quiet:
            print(f"wrote {out}")
        return 0
    jobs = midi_jobs(args.inputs, args.format, "plot")
    skipped = 0
    with progress_bar(len(jobs), "plotting", unit="file", quiet=args.quiet) as bar:
        for src, stem in jobs:
            try:
                score = midi.read(src)
            except ValueError as exc:  # MidiError: report, go on with the others
                print(f"musgen plot: skipped {src}: {str(exc).splitlines()[0]}", file=sys.stderr)
                skipped += 1
            else:
                save_plot(score, out / f"{stem}.{args.format}", title=Path(src).name,
                          options=options)
            bar.update(1)
    if not args.quiet:
        print(f"wrote {len(jobs) - skipped} file(s) to {out}"
              + (f", skipped {skipped}" if skipped else ""))
    return 1 if skipped else 0
