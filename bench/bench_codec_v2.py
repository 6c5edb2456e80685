"""Benchmark: codec version 2 against MidiTok's REMI with programs, tempos and time signatures
(the multi-instrument tokenization users know), on the same files, one thread:

* encode throughput (notes per second): musgen v2 C++ and Python, musgen v1 C++ for reference,
  MidiTok REMI on symusic Scores (files parsed beforehand: encoding alone is timed);
* prepare throughput: ``musgen prepare`` (read + encode + write, codec v2, one thread) against
  symusic parse + MidiTok REMI of the same files (one process);
* tokens per note of musgen v1, v2, and REMI.

Target (issue): musgen v2 encodes and prepares >= 50x faster than MidiTok, as v1 does. Data:
$MUSGEN_DATA (default ../shared/data relative to the repository).

    python bench/bench_codec_v2.py [--limit N] [--repeat R]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path


from musgen import CodecWarning, MidiWarning, codec, midi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _timing import best_seconds, median_seconds  # noqa: E402

DATA = Path(os.environ.get("MUSGEN_DATA", ROOT.parent / "shared" / "data"))
CORPORA = {
    "pop909": "corpora/pop909/*/*.mid",
    "piano_midi_de": "corpora/piano_midi_de/**/*.mid",
    "opengameart": "corpora/opengameart/**/*.mid",
    "music21_bach": "corpora/music21_bach/**/*.mid",
}


def remi_tokenizer():
    """REMI with one stream for all programs, tempos and time signatures, the same grid as
    musgen (12 steps per beat up to 4 beats) and 32 velocities."""
    import miditok

    return miditok.REMI(miditok.TokenizerConfig(
        num_velocities=32, beat_res={(0, 4): 12, (4, 12): 4}, use_programs=True,
        one_token_stream_for_programs=True, use_tempos=True, use_time_signatures=True))


def remi_ids(tokenizer, score) -> int:
    out = tokenizer.encode(score)
    return len(out.ids if hasattr(out, "ids") else out[0].ids)


def run_encode(name, files, repeat, tokenizer):
    """Encode throughput and tokens per note of one corpus."""
    import symusic

    v1, v2 = codec.default_config(), codec.default_config(version=2)
    scores = [midi.read(p, backend="cpp") for p in files]
    syms = [symusic.Score(p) for p in files]
    notes = sum(s.n_notes for s in scores)
    t = {"musgen v1 C++": 0.0, "musgen v2 C++": 0.0, "musgen v2 Python": 0.0, "MidiTok REMI": 0.0}
    toks = {"musgen v1": 0, "musgen v2": 0, "MidiTok REMI": 0}
    for s, sym in zip(scores, syms):
        t["musgen v1 C++"] += best_seconds(lambda s=s: codec.encode(s, v1, backend="cpp"),
                                           repeat)
        t["musgen v2 C++"] += best_seconds(lambda s=s: codec.encode(s, v2, backend="cpp"),
                                           repeat)
        t["musgen v2 Python"] += best_seconds(
            lambda s=s: codec.encode(s, v2, backend="python"), 1)
        t["MidiTok REMI"] += best_seconds(lambda sym=sym: tokenizer.encode(sym), repeat)
        toks["musgen v1"] += codec.encode(s, v1).size
        toks["musgen v2"] += codec.encode(s, v2).size
        toks["MidiTok REMI"] += remi_ids(tokenizer, sym)
    print(f"\n{name}: {len(files)} files, {notes} notes (encoding alone, best of {repeat} per "
          "file, one thread)")
    print(f"  {'':20s} {'notes/s':>12s} {'MidiTok / this':>15s}")
    for label, sec in t.items():
        print(f"  {label:20s} {notes / sec:12.3e} {t['MidiTok REMI'] / sec:14.1f}x")
    print("  tokens per note: " + ", ".join(f"{k} {v / notes:.2f}" for k, v in toks.items()))
    return t


def run_prepare(name, files, repeat, tokenizer):
    """prepare (read + encode + write) against symusic + MidiTok REMI on the same files."""
    import symusic

    tmp = Path(tempfile.mkdtemp(prefix="bench_v2_"))
    try:
        src = tmp / "corpus"
        src.mkdir()
        for i, f in enumerate(files):
            shutil.copyfile(f, src / f"{i:05d}.mid")
        from musgen.data import prepare

        t_musgen = median_seconds(lambda: prepare(src, tmp / "ds", quiet=True, threads=1),
                                  repeat)

        def miditok_all():
            for f in sorted(src.iterdir()):
                tokenizer.encode(symusic.Score(str(f)))

        t_mt = median_seconds(miditok_all, max(1, repeat - 1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"  prepare, one thread: musgen v2 {len(files) / t_musgen:9.1f} files/s, symusic + "
          f"MidiTok REMI {len(files) / t_mt:7.1f} files/s: {t_mt / t_musgen:.1f}x")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=60, help="files per corpus (0 = all)")
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats (best/median kept)")
    args = ap.parse_args(argv)
    try:
        import miditok  # noqa: F401
        import symusic  # noqa: F401
    except ImportError as exc:
        print(f"bench_codec_v2: needs symusic and miditok ({exc}); pip install .[bench]")
        return 1
    from musgen import _backend

    if not _backend.has_cpp():
        print("bench_codec_v2: the C++ extension is not built")
        return 1
    warnings.simplefilter("ignore", CodecWarning)
    warnings.simplefilter("ignore", MidiWarning)
    tokenizer = remi_tokenizer()
    found = False
    t0 = time.perf_counter()
    for name, pattern in CORPORA.items():
        files = sorted(glob.glob(str(DATA / pattern), recursive=True))
        if not files:
            print(f"{name}: no files under {DATA / pattern}, skipped")
            continue
        found = True
        if args.limit:
            files = files[::max(1, len(files) // args.limit)][:args.limit]
        run_encode(name, files, args.repeat, tokenizer)
        run_prepare(name, files, args.repeat, tokenizer)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
