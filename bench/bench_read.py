"""Benchmark: MIDI read throughput (files/s, notes/s) of musgen against mido, pretty_midi, symusic.

Every tool reads every file and produces its notes (musgen: the Score's note array; symusic:
each track's note arrays via ``.numpy()``; mido: messages + a FIFO note pairing; pretty_midi:
its instruments' note lists). Single-threaded, plus musgen ``read_many`` on 2 threads. The slow
tools (mido, pretty_midi, musgen's pure-Python reader) are timed on a subset of files and scaled
per file; the output says so. Medians of several repeats, measured side by side in one run.

Data: $MUSGEN_DATA (default ../shared/data beside the repository): corpora/pop909 and
corpora/piano_midi_de.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections import defaultdict, deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    return Path(os.environ.get("MUSGEN_DATA", ROOT.parent / "shared" / "data"))


def corpus_files(name: str) -> list[str]:
    base = data_root() / "corpora" / name
    return sorted(str(p) for p in base.rglob("*") if p.suffix.lower() in (".mid", ".midi"))


# ----------------------------------------------------------------------------- readers
def read_musgen_cpp(path: str) -> int:
    from musgen import midi

    return midi.read(path, backend="cpp").n_notes


def read_musgen_python(path: str) -> int:
    from musgen import midi

    return midi.read(path, backend="python").n_notes


def read_symusic(path: str) -> int:
    import symusic

    score = symusic.Score(path)
    return sum(len(track.notes.numpy()["pitch"]) for track in score.tracks)


def read_mido(path: str) -> int:
    import mido

    notes = 0
    for events in mido.MidiFile(path, clip=True).tracks:
        tick, open_ = 0, defaultdict(deque)
        for msg in events:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                open_[(msg.channel, msg.note)].append(tick)
            elif msg.type in ("note_on", "note_off") and open_[(msg.channel, msg.note)]:
                open_[(msg.channel, msg.note)].popleft()
                notes += 1
        notes += sum(len(q) for q in open_.values())
    return notes


def read_pretty_midi(path: str) -> int:
    import pretty_midi

    return sum(len(inst.notes) for inst in pretty_midi.PrettyMIDI(path).instruments)


TOOLS = {
    "musgen C++": (read_musgen_cpp, False),
    "musgen Python": (read_musgen_python, True),
    "symusic": (read_symusic, False),
    "mido + pairing": (read_mido, True),
    "pretty_midi": (read_pretty_midi, True),
}


def time_tool(fn, files, repeats):
    """Median seconds for one pass over ``files`` and the notes found."""
    times, notes = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        notes = sum(fn(p) for p in files)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), notes


def time_read_many(files, threads, repeats):
    from musgen import midi

    times, notes = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        scores = midi.read_many(files, threads=threads, backend="cpp")
        notes = sum(s.n_notes for s in scores)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), notes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="repeats of the fast tools (median)")
    ap.add_argument("--slow-repeats", type=int, default=1, help="repeats of the slow tools")
    ap.add_argument("--subset", type=int, default=40, help="files the slow tools read")
    ap.add_argument("--corpora", nargs="*", default=["pop909", "piano_midi_de"])
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")  # recovered-damage warnings and pretty_midi's chatter

    modules = {"musgen C++": "musgen._core", "musgen Python": "musgen",
               "symusic": "symusic", "mido + pairing": "mido", "pretty_midi": "pretty_midi"}
    available = {}
    for name, (fn, slow) in TOOLS.items():
        try:
            __import__(modules[name])
            available[name] = (fn, slow)
        except ImportError as exc:  # a missing competitor is reported, not fatal
            print(f"skipping {name}: {exc}")

    for corpus in args.corpora:
        files = corpus_files(corpus)
        if not files:
            print(f"{corpus}: no files under {data_root() / 'corpora' / corpus}", file=sys.stderr)
            continue
        for p in files:  # warm the page cache so every tool reads from memory
            Path(p).read_bytes()
        step = max(1, len(files) // args.subset)
        subset = files[::step][:args.subset]
        print(f"\n== {corpus}: {len(files)} files ({sum(Path(p).stat().st_size for p in files) / 1e6:.1f} MB); "
              f"slow tools on {len(subset)} files, scaled per file")
        rows = {}
        for name, (fn, slow) in available.items():
            use = subset if slow else files
            sec, notes = time_tool(fn, use, args.slow_repeats if slow else args.repeats)
            per_file = sec / len(use)
            rows[name] = (1.0 / per_file, notes / sec, slow)
        if "musgen C++" in available:
            sec, notes = time_read_many(files, 2, args.repeats)
            rows["musgen read_many (2 threads)"] = (len(files) / sec, notes / sec, False)
        print(f"{'tool':32s} {'files/s':>10s} {'notes/s':>14s}")
        for name, (fps, nps, slow) in rows.items():
            note = "  (subset, scaled)" if slow else ""
            print(f"{name:32s} {fps:10.1f} {nps:14,.0f}{note}")
        if "musgen C++" in rows:
            base = rows["musgen C++"][0]
            for other, target in (("symusic", 1.0), ("mido + pairing", 100.0),
                                  ("pretty_midi", None), ("musgen Python", None)):
                if other in rows:
                    ratio = base / rows[other][0]
                    goal = f" (target >= {target:g}x)" if target else ""
                    print(f"ratio musgen C++ / {other}: {ratio:.2f}x{goal}")
            if "musgen read_many (2 threads)" in rows:
                print(f"ratio read_many(2 threads) / musgen C++ single: "
                      f"{rows['musgen read_many (2 threads)'][0] / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
