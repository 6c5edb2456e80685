"""Benchmark: ``musgen prepare`` (read + encode + write a dataset) against the tools a user would
otherwise chain, measured side by side on the same files in one run.

* musgen prepare, C++ backend, on 1 and 2 threads (whole corpus), and on the pure-Python backend;
* symusic parse + MidiTok TSD tokenizer (one token stream), 1 and 2 processes;
* mido parse + a note-pairing loop + musgen's pure-Python codec;
* the whole of prepare (read + encode + write a new dataset, 1 thread) against symusic's parse
  alone (1 thread), the two interleaved run by run: target <= 1.5x; and read + encode alone
  (``midi.read_many`` + ``codec.encode_many``, 1 thread) against the same parse.

Slow tools run on every k-th file of the corpus (k chosen so each run takes a few seconds) and
their time is scaled to the whole corpus by bytes; the output says which. Times are medians of
MUSGEN_BENCH_REPEATS runs (default 3). Data: $MUSGEN_DATA (default ../shared/data).
``--quick`` runs every row once on the first 60 files of each corpus (a check that the script
works, not figures). Run alone: ``python bench/bench_prepare.py``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from musgen import _backend, codec, midi
from musgen.data import find_midi_files, prepare
from musgen.score import NOTE_DTYPE, TEMPO_DTYPE, Score

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MUSGEN_DATA", ROOT.parent / "shared" / "data"))
REPEATS = int(os.environ.get("MUSGEN_BENCH_REPEATS", "3"))
CORPORA = [("pop909", "corpora/pop909"), ("piano_midi_de", "corpora/piano_midi_de")]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _timing  # noqa: E402


def median_seconds(fn, repeats: int = REPEATS) -> float:
    return _timing.median_seconds(fn, repeats)


# ----------------------------------------------------------------------------- competitors
_TSD = None


def _miditok_tokenizer():
    global _TSD
    if _TSD is None:
        from miditok import TSD, TokenizerConfig

        # 32 velocities and one stream for all tracks, like musgen's default codec
        _TSD = TSD(TokenizerConfig(num_velocities=32, use_programs=True,
                                   one_token_stream_for_programs=True))
    return _TSD


def miditok_files(paths: list[str]) -> int:
    """symusic parse + MidiTok TSD; returns the number of tokens (kept as int32 arrays)."""
    import symusic

    tok = _miditok_tokenizer()
    out = []
    for p in paths:
        try:
            out.append(np.asarray(tok.encode(symusic.Score(p)).ids, dtype=np.int32))
        except Exception:  # a file MidiTok cannot handle is skipped, as prepare would
            continue
    return sum(a.shape[0] for a in out)


def miditok_parallel(paths: list[str], workers: int) -> int:
    chunks = [paths[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(miditok_files, chunks))


def mido_score(path: str) -> Score:
    """A Score from mido messages: FIFO note pairing per (track, channel, pitch), merged tempos."""
    import mido

    mf = mido.MidiFile(path)
    rows, tempos = [], []
    for ti, track in enumerate(mf.tracks):
        tick = 0
        open_notes: dict = {}
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                stack = open_notes.get((msg.channel, msg.note))
                if stack:
                    start, vel = stack.pop(0)
                    rows.append((ti, msg.channel, msg.note, vel, start, tick))
            elif msg.type == "set_tempo":
                tempos.append((tick, msg.tempo))
        for (ch, pitch), stack in open_notes.items():
            rows.extend((ti, ch, pitch, vel, start, tick) for start, vel in stack)
    notes = np.array(rows, dtype=[("track", "<u2"), ("channel", "u1"), ("pitch", "u1"),
                                  ("velocity", "u1"), ("start", "<i8"), ("end", "<i8")])
    notes.sort(order=["start", "track", "channel", "pitch", "end"], kind="stable")
    out = np.zeros(notes.shape[0], dtype=NOTE_DTYPE)
    for f in notes.dtype.names:
        out[f] = notes[f]
    tempo_arr = np.zeros(len(tempos), dtype=TEMPO_DTYPE)
    if tempos:
        tempos.sort(key=lambda t: t[0])
        tempo_arr["tick"] = [t[0] for t in tempos]
        tempo_arr["tempo"] = [t[1] for t in tempos]
    return Score(notes=out, ticks_per_beat=mf.ticks_per_beat, tempos=tempo_arr)


def mido_python_codec(paths: list[str]) -> int:
    n = 0
    for p in paths:
        try:
            n += codec.encode(mido_score(p), backend="python").shape[0]
        except Exception:
            continue
    return n


# ----------------------------------------------------------------------------- the run
def subset(paths: list[Path], seconds_per_file: float, budget: float = 4.0) -> list[Path]:
    """Every k-th file, k such that a tool taking ``seconds_per_file`` runs about ``budget`` s."""
    k = max(1, int(np.ceil(len(paths) * seconds_per_file / budget)))
    return paths[::k]


def scaled(seconds: float, part: list[Path], whole: list[Path]) -> float:
    """Time on ``part`` scaled to ``whole`` by bytes (file sizes vary a lot within a corpus)."""
    return seconds * sum(p.stat().st_size for p in whole) / sum(p.stat().st_size for p in part)


def interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds of each function, run in turns (A, B, A, B, ...) so a busy machine's
    slow moments fall on all of them alike."""
    times: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def limited(root: Path, tmp: Path, n: int | None) -> Path:
    """``root`` itself, or a folder of links to its first ``n`` files (--quick)."""
    if n is None:
        return root
    part = tmp / f"{root.name}_first{n}"
    part.mkdir()
    for i, p in enumerate(find_midi_files(root)[:n]):
        (part / f"{i:05d}_{p.name}").symlink_to(p)
    return part


def bench_corpus(name: str, root: Path, tmp: Path) -> dict:
    files = find_midi_files(root)
    paths = [str(p) for p in files]
    mb = sum(p.stat().st_size for p in files) / 1e6
    for p in files:  # warm the page cache for every tool alike
        p.read_bytes()
    print(f"\n== {name}: {len(files)} files, {mb:.1f} MB")
    res: dict = {}
    backend = _backend.resolve()
    summary = prepare(root, tmp / name, quiet=True)
    n_tokens = sum(s["tokens"] for s in summary["splits"].values())
    print(f"musgen prepare keeps {summary['files']['kept']} files, {n_tokens} tokens "
          f"(skipped: {summary['files']['skipped']})")
    fresh = itertools.count()  # a new output folder per run, as a first prepare writes

    def run_prepare(threads):
        prepare(root, tmp / f"{name}_{next(fresh)}", quiet=True, threads=threads)

    for threads in (1, 2):
        res[f"musgen_t{threads}"] = median_seconds(lambda t=threads: run_prepare(t))
        print(f"musgen prepare ({backend}, {threads} thread{'s' * (threads > 1)}): "
              f"{res[f'musgen_t{threads}']:.3f} s  ({len(files) / res[f'musgen_t{threads}']:,.0f} "
              "files/s)")

    # pure-Python backend, on a subset
    t_one = median_seconds(lambda: prepare(files[0], tmp / "one", quiet=True, backend="python"),
                           1)
    part = subset(files, t_one)
    part_dir = tmp / f"{name}_part"
    part_dir.mkdir()
    for i, p in enumerate(part):
        (part_dir / f"{i:05d}_{p.name}").symlink_to(p)
    t = median_seconds(lambda: prepare(part_dir, tmp / "py", quiet=True, threads=1,
                                       backend="python"), max(1, REPEATS // 2))
    res["musgen_python"] = scaled(t, part, files)
    print(f"musgen prepare (pure Python, 1 thread): {res['musgen_python']:.2f} s"
          f"{'' if len(part) == len(files) else f' (scaled from {len(part)} files)'}")

    # symusic + MidiTok TSD
    t_one = median_seconds(lambda: miditok_files(paths[:3]), 1) / 3
    part = subset(files, t_one)
    t = median_seconds(lambda: miditok_files([str(p) for p in part]))
    res["miditok_p1"] = scaled(t, part, files)
    t = median_seconds(lambda: miditok_parallel([str(p) for p in part], 2))
    res["miditok_p2"] = scaled(t, part, files)
    note = "" if len(part) == len(files) else f" (scaled from {len(part)} files)"
    print(f"symusic + MidiTok TSD: 1 process {res['miditok_p1']:.2f} s, "
          f"2 processes {res['miditok_p2']:.2f} s{note}")

    # mido + pure-Python codec
    t_one = median_seconds(lambda: mido_python_codec(paths[:3]), 1) / 3
    part = subset(files, t_one)
    t = median_seconds(lambda: mido_python_codec([str(p) for p in part]), max(1, REPEATS // 2))
    res["mido_python"] = scaled(t, part, files)
    note = "" if len(part) == len(files) else f" (scaled from {len(part)} files)"
    print(f"mido + musgen Python codec: {res['mido_python']:.2f} s{note}")

    # read + encode alone vs symusic parse alone, single-threaded
    def read_encode():
        r = midi.read_many(paths, threads=1, on_error="skip")
        codec.encode_many(r.scores, threads=1)

    def symusic_parse():
        import symusic

        for p in paths:
            symusic.Score(p)

    res.update(interleaved({
        "prepare_t1": lambda: run_prepare(1),
        "read_encode": read_encode,
        "read_only": lambda: midi.read_many(paths, threads=1, on_error="skip"),
        "symusic_parse": symusic_parse}, max(REPEATS, 5)))
    print(f"musgen prepare (1 thread, read + encode + write): {res['prepare_t1']:.3f} s; "
          f"read + encode: {res['read_encode']:.3f} s (read alone {res['read_only']:.3f} s); "
          f"symusic parse alone: {res['symusic_parse']:.3f} s (interleaved runs)")

    print(f"ratios: MidiTok(1 proc) / musgen prepare(1 thread) = "
          f"{res['miditok_p1'] / res['musgen_t1']:.0f}x (target >= 50x); "
          f"MidiTok(2 procs) / musgen(2 threads) = {res['miditok_p2'] / res['musgen_t2']:.0f}x; "
          f"mido+Python codec / musgen = {res['mido_python'] / res['musgen_t1']:.0f}x; "
          f"musgen Python backend / {backend} = {res['musgen_python'] / res['musgen_t1']:.0f}x")
    print(f"ratios: musgen prepare (read+encode+write) / symusic parse = "
          f"{res['prepare_t1'] / res['symusic_parse']:.2f} (target <= 1.5); "
          f"musgen read+encode / symusic parse = "
          f"{res['read_encode'] / res['symusic_parse']:.2f}; "
          f"musgen read / symusic parse = {res['read_only'] / res['symusic_parse']:.2f}; "
          f"prepare 2 threads speed-up = {res['musgen_t1'] / res['musgen_t2']:.2f}x")
    return res


def main(argv=None) -> int:
    global REPEATS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one run of every row on the first 60 files of each corpus")
    args = parser.parse_args(argv)
    if args.quick:
        REPEATS = 1
    missing = [rel for _, rel in CORPORA if not (DATA / rel).is_dir()]
    if missing:
        print(f"bench_prepare: {DATA} lacks {', '.join(missing)}; set MUSGEN_DATA", file=sys.stderr)
        return 1
    print(f"bench_prepare: medians of {REPEATS} runs, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}, backend {_backend.resolve()}"
          + (" (--quick: 60 files per corpus, figures not meaningful)" if args.quick else ""))
    with tempfile.TemporaryDirectory(prefix="musgen-bench-") as tmp:
        for name, rel in CORPORA:
            root = limited(DATA / rel, Path(tmp), 60 if args.quick else None)
            bench_corpus(name, root, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
