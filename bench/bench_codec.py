"""Benchmark: token encoding speed of musgen's C++ and Python encoders against MidiTok's TSD
tokenizer (applied to symusic Scores), on POP909 and piano-midi.de, same files, one thread.

Encoding is timed alone (files are parsed beforehand); symusic's parse time of the same files is
printed too, because encoding must cost much less than parsing. Data: $MUSGEN_DATA (default
../shared/data relative to the repository).

    python bench/bench_codec.py [--limit N] [--repeat R]
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
from pathlib import Path

import numpy as np

from musgen import Score, codec
from musgen.score import NOTE_DTYPE, TEMPO_DTYPE

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _timing import best_seconds  # noqa: E402
DATA = Path(os.environ.get("MUSGEN_DATA", ROOT.parent / "shared" / "data"))
CORPORA = {
    "pop909": "corpora/pop909/*/*.mid",
    "piano_midi_de": "corpora/piano_midi_de/**/*.mid",
}


def from_symusic(s) -> Score:
    """A musgen Score from a symusic Score (used when musgen.midi is not available)."""
    parts = []
    for i, track in enumerate(s.tracks):
        a = track.notes.numpy()
        n = np.zeros(a["time"].shape[0], dtype=NOTE_DTYPE)
        n["track"] = i
        n["channel"] = 9 if track.is_drum else 0
        n["pitch"] = a["pitch"].astype(np.uint8)
        n["velocity"] = a["velocity"].astype(np.uint8)
        n["start"] = a["time"]
        n["end"] = a["time"].astype(np.int64) + a["duration"]
        parts.append(n)
    notes = np.concatenate(parts) if parts else np.zeros(0, NOTE_DTYPE)
    notes = notes[np.lexsort((notes["end"], notes["pitch"], notes["channel"], notes["track"],
                              notes["start"]))]
    t = s.tempos.numpy()
    tempos = np.zeros(t["time"].shape[0], dtype=TEMPO_DTYPE)
    tempos["tick"], tempos["tempo"] = t["time"], t["mspq"]
    return Score(notes=notes, ticks_per_beat=int(s.ticks_per_quarter), tempos=tempos)


def reader():
    """musgen's C++ MIDI reader, or None when this build has none (symusic converts then)."""
    try:
        from musgen import midi
    except ImportError:
        return None
    return lambda path: midi.read(path, backend="cpp")


def run_corpus(name: str, files: list, repeat: int, tokenizer) -> None:
    import symusic

    cfg = codec.default_config()
    read_cpp = reader()
    rows = []  # per file: notes, parse, cpp, python, miditok, musgen read, read + encode (s)
    for path in files:
        parse = best_seconds(lambda: symusic.Score(path), repeat)
        sym = symusic.Score(path)
        score = read_cpp(path) if read_cpp else from_symusic(sym)
        t_cpp = best_seconds(lambda: codec.encode(score, cfg, backend="cpp"), repeat)
        t_py = best_seconds(lambda: codec.encode(score, cfg, backend="python"), repeat)
        t_mt = best_seconds(lambda: tokenizer.encode(sym), repeat)
        t_read = best_seconds(lambda: read_cpp(path), repeat) if read_cpp else float("nan")
        t_both = (best_seconds(lambda: codec.encode(read_cpp(path), cfg, backend="cpp"), repeat)
                  if read_cpp else float("nan"))
        rows.append((score.n_notes, parse, t_cpp, t_py, t_mt, t_read, t_both))
    a = np.array(rows, dtype=np.float64)
    notes = a[:, 0].sum()
    print(f"\n{name}: {len(files)} files, {int(notes)} notes (best of {repeat} per file, "
          "one thread)")
    print(f"  {'':26s} {'median ms/file':>15s} {'notes/s':>14s} {'vs musgen C++':>14s}")
    labels = ["symusic parse", "musgen encode (C++)", "musgen encode (Python)",
              "MidiTok TSD encode", "musgen read (C++)", "musgen read+encode (C++)"]
    cpp_total = a[:, 2].sum()
    for col, label in zip((1, 2, 3, 4, 5, 6), labels):
        if np.isnan(a[:, col]).any():
            continue
        med = statistics.median(a[:, col]) * 1e3
        rate = notes / a[:, col].sum()
        print(f"  {label:26s} {med:15.3f} {rate:14.3e} {a[:, col].sum() / cpp_total:13.1f}x")
    print(f"  C++ encode / symusic parse (total time): {cpp_total / a[:, 1].sum():.3f}")
    if read_cpp:
        print(f"  musgen read+encode / symusic parse:      {a[:, 6].sum() / a[:, 1].sum():.2f}"
              " (target <= 1.5)")
    print(f"  MidiTok TSD / musgen C++ (total time):   {a[:, 4].sum() / cpp_total:.1f}x")
    print(f"  musgen Python / musgen C++ (total time): {a[:, 3].sum() / cpp_total:.1f}x")
    scores = [read_cpp(p) if read_cpp else from_symusic(symusic.Score(p)) for p in files]
    for threads in (1, os.cpu_count() or 1):
        t = best_seconds(lambda: codec.encode_many(scores, cfg, threads=threads, backend="cpp"),
                      repeat)
        print(f"  encode_many C++, {threads} thread(s): {notes / t:.3e} notes/s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=200,
                    help="files per corpus (0 = all; default 200)")
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats per file (best kept)")
    args = ap.parse_args(argv)
    try:
        import miditok
        import symusic  # noqa: F401
    except ImportError as exc:
        print(f"bench_codec: needs symusic and miditok ({exc}); pip install .[bench]")
        return 1
    from musgen import _backend

    if not _backend.has_cpp():
        print("bench_codec: the C++ extension is not built")
        return 1
    # TSD with the same grid (12 steps per beat up to 4 beats), 32 velocities, one stream.
    tokenizer = miditok.TSD(miditok.TokenizerConfig(
        num_velocities=32, beat_res={(0, 4): 12, (4, 12): 4}, use_programs=True,
        one_token_stream_for_programs=True))
    found = False
    for name, pattern in CORPORA.items():
        files = sorted(glob.glob(str(DATA / pattern), recursive=True))
        if not files:
            print(f"{name}: no files under {DATA / pattern}, skipped")
            continue
        found = True
        if args.limit:
            files = files[:args.limit]
        run_corpus(name, files, args.repeat, tokenizer)
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
