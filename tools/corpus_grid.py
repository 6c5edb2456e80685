"""How much of each corpus lies off the codec's grid: the share of notes whose onset (and whose
end) is not on a grid step of ``steps_per_beat``, i.e. what ``quantize`` moves.

    python tools/corpus_grid.py [--data DIR] [--steps-per-beat 12]

Reads every MIDI file of every corpus under DIR/corpora (default ``$MUSGEN_DATA``) and prints
one row per corpus: files, notes, onsets off the grid, ends off the grid, and the mean distance
of the moved onsets in grid steps (half a step at most). SMPTE-division files count one beat
per half second, as the codec does.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

MIDI_SUFFIXES = (".mid", ".midi", ".rmi", ".kar")


def off_grid(score, spb: int) -> tuple[int, int, int, float]:
    """(notes, onsets off the grid, ends off the grid, summed onset distance in steps)."""
    n = score.notes
    if score.smpte is not None:
        fps, tpf = score.smpte
        tpb = float(fps) * float(tpf) / 2  # ticks per beat at 120 BPM
        units = [n["start"] * spb / tpb, n["end"] * spb / tpb]
        off = [np.abs(u - np.round(u)) > 1e-9 for u in units]
        dist = np.abs(units[0] - np.round(units[0]))[off[0]]
    else:
        tpb = int(score.ticks_per_beat)
        off = [(n["start"].astype(np.int64) * spb) % tpb != 0,
               (n["end"].astype(np.int64) * spb) % tpb != 0]
        r = (n["start"].astype(np.int64) * spb) % tpb / tpb
        dist = np.minimum(r, 1 - r)[off[0]]
    return int(n.size), int(off[0].sum()), int(off[1].sum()), float(dist.sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("MUSGEN_DATA"),
                    help="the folder holding corpora/ (default $MUSGEN_DATA)")
    ap.add_argument("--steps-per-beat", type=int, default=12)
    args = ap.parse_args(argv)
    if not args.data:
        sys.exit("corpus_grid: pass --data or set MUSGEN_DATA")
    from musgen import MidiWarning, midi

    root = Path(args.data) / "corpora"
    print(f"grid: {args.steps_per_beat} steps per beat")
    print(f"{'corpus':16s} {'files':>6s} {'notes':>9s} {'onsets off':>11s} {'ends off':>9s} "
          f"{'mean shift':>11s}")
    for corpus in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(str(p) for p in corpus.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MidiWarning)
            res = midi.read_many(files, on_error="skip")
        tot = np.zeros(3, np.int64)
        dist = 0.0
        for s in res.scores:
            n, a, b, d = off_grid(s, args.steps_per_beat)
            tot += (n, a, b)
            dist += d
        n = max(int(tot[0]), 1)
        moved = max(int(tot[1]), 1)
        print(f"{corpus.name:16s} {len(res.scores):6d} {int(tot[0]):9d} "
              f"{100 * tot[1] / n:10.2f}% {100 * tot[2] / n:8.2f}% {dist / moved:8.3f} st")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
