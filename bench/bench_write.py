"""Writing generated MIDI files (target: <= 0.1 ms per file), side by side in one run.

Pieces are generated once with the shipped model (n=1000 x 64 beats; --quick: 100 x 16), then
written, interleaved run by run, each time into a fresh folder (as ``musgen generate -o DIR``
writes): the C++ writer with ``write_many`` on 1 and 2 threads, with fsync per file, and the
pure-Python writer (one thread: the fallback, and how files were written before: its encoder
plus an fsync per file). Times are medians. Run alone: ``python bench/bench_write.py``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 0.1


def main(argv=None) -> int:
    from musgen import _backend, generate, midi

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 pieces of 16 beats, 1 run")
    parser.add_argument("--n", type=int, default=None, help="pieces (default 1000)")
    args = parser.parse_args(argv)
    n = args.n or (100 if args.quick else 1000)
    beats = 16 if args.quick else 64
    repeats = 1 if args.quick else 5
    t0 = time.perf_counter()
    scores = generate(n=n, length=f"{beats} beats", seed=1)
    notes = sum(s.n_notes for s in scores) / n
    print(f"bench_write: {n} pieces of {beats} beats ({notes:.0f} notes each on average), "
          f"generated in {time.perf_counter() - t0:.1f} s; medians of {repeats} runs; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    text = "musgen generate --seed 1"
    rows = {}
    if _backend.has_cpp():
        rows["C++ write_many, 1 thread"] = {"threads": 1, "backend": "cpp"}
        rows["C++ write_many, 2 threads"] = {"threads": 2, "backend": "cpp"}
        rows["C++ write_many, 2 threads, fsync"] = {"threads": 2, "backend": "cpp", "fsync": True}
    rows["Python writer, 1 thread"] = {"threads": 1, "backend": "python"}
    rows["Python writer + fsync per file (before)"] = {"threads": 1, "backend": "python",
                                                          "fsync": True}
    times: dict = {k: [] for k in rows}
    fresh = itertools.count()
    with tempfile.TemporaryDirectory(prefix="musgen-bench-write-") as tmp:
        for _ in range(repeats):
            for name, kw in rows.items():
                folder = Path(tmp) / f"run{next(fresh)}"
                folder.mkdir()
                paths = [folder / f"generated-{i:04d}.mid" for i in range(n)]
                t0 = time.perf_counter()
                midi.write_many(scores, paths, texts=text, **kw)
                times[name].append((time.perf_counter() - t0) / n * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, ms in med.items():
        print(f"  {name:<42} {ms:8.3f} ms per file")
    base = med["Python writer + fsync per file (before)"]
    best = min(v for k, v in med.items() if "fsync" not in k)
    print(f"ratios: best default ({best:.3f} ms) / target {TARGET_MS} ms = {best / TARGET_MS:.2f}"
          f" ({'met' if best <= TARGET_MS else 'NOT met'}); before / best = {base / best:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
