"""Benchmark: the musical evaluation on real corpora, one core.

For the JSB Chorales (standard split) and POP909 (a seeded 90/10 split of its 909 songs):

* features: every feature of ``musgen.eval.metrics`` for every piece, per piece and scaled to
  300 pieces (the issue's target: well under 20 s on one core);
* set comparison: the test split against the training split (Yang & Lerch: intra/inter-set
  distances, KDE, overlap, KL for every feature);
* memorization: building the suffix-array index of the training split, and the copy rates and
  longest runs of the test split against it (notes per second);
* next to MusPy when it is installed: its five features that musgen shares
  (pitch range, pitches used, pitch-class entropy, scale consistency, groove consistency) on the
  same pieces, against musgen's eighteen.

Times are medians of MUSGEN_BENCH_REPEATS runs (default 3). Data: $MUSGEN_DATA (default
../shared/data). MUSGEN_BENCH_SMALL=1 runs on 40 pieces of each corpus (a quick check).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from musgen import midi
from musgen.data import find_midi_files
from musgen.eval.compare import compare_tables
from musgen.eval.memorization import CopyIndex, memorization, pitch_sequence
from musgen.eval.metrics import FEATURES, feature_table

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MUSGEN_DATA", ROOT.parent / "shared" / "data"))
REPEATS = int(os.environ.get("MUSGEN_BENCH_REPEATS", "3"))
SMALL = os.environ.get("MUSGEN_BENCH_SMALL") == "1"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _timing  # noqa: E402


def median_seconds(fn) -> float:
    return _timing.median_seconds(fn, REPEATS)


def corpus_splits(name: str) -> tuple:
    """(train paths, test paths) of a corpus."""
    if name == "jsb":
        root = DATA / "corpora" / "jsb_chorales" / "quarter"
        train, test = find_midi_files(root / "train"), find_midi_files(root / "test")
    else:
        files = find_midi_files(DATA / "corpora" / "pop909")
        order = np.random.default_rng(0).permutation(len(files))
        cut = len(files) // 10
        test = [files[i] for i in sorted(order[:cut])]
        train = [files[i] for i in sorted(order[cut:])]
    if SMALL:
        train, test = train[:40], test[:40]
    return train, test


def muspy_seconds(paths) -> float | None:
    try:
        import muspy
    except ImportError:
        return None
    music = [muspy.read_midi(str(p)) for p in paths]

    def run():
        for m in music:
            muspy.pitch_range(m), muspy.n_pitches_used(m), muspy.pitch_class_entropy(m)
            muspy.scale_consistency(m)
            muspy.groove_consistency(m, 4 * m.resolution)

    return median_seconds(run)


def bench_corpus(name: str) -> dict:
    train_paths, test_paths = corpus_splits(name)
    train, test = midi.read_many(train_paths), midi.read_many(test_paths)
    pieces = train + test
    notes = sum(s.n_notes for s in pieces)
    out = {"corpus": name, "pieces": len(pieces), "notes": notes}
    t = median_seconds(lambda: feature_table(pieces))
    out["features_s"] = t
    out["features_per_300_s"] = t / len(pieces) * 300
    tables = (feature_table(train), feature_table(test))
    out["compare_s"] = median_seconds(lambda: compare_tables(tables[1], tables[0]))
    train_seqs = [pitch_sequence(s) for s in train]
    test_seqs = [pitch_sequence(s) for s in test]
    out["train_notes"] = int(sum(s.size for s in train_seqs))
    out["test_notes"] = int(sum(s.size for s in test_seqs))
    out["index_s"] = median_seconds(lambda: CopyIndex(train_seqs))
    index = CopyIndex(train_seqs)
    out["query_s"] = median_seconds(lambda: memorization(test_seqs, index))
    mem = memorization(test_seqs, index)
    out["copy_rate_16"] = mem["copy_rate_16"]
    out["muspy_5_features_s"] = muspy_seconds(pieces_paths(train_paths, test_paths))
    return out


def pieces_paths(train_paths, test_paths) -> list:
    return list(train_paths) + list(test_paths)


def main() -> None:
    print(f"musical evaluation, one core; medians of {REPEATS} runs"
          + (" (SMALL: 40 + 40 pieces per corpus)" if SMALL else ""))
    print("| corpus | pieces | notes | features: all | per 300 pieces | test vs train "
          "comparison | index (train notes) | copy query (test notes) | 16-gram copy | "
          "MusPy, 5 features |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("jsb", "pop909"):
        r = bench_corpus(name)
        muspy = r["muspy_5_features_s"]
        ratio = (f"{muspy:.2f} s ({muspy / r['features_s']:.1f}x musgen's {len(FEATURES)})"
                 if muspy is not None else "not installed")
        print(f"| {name} | {r['pieces']} | {r['notes']} | {r['features_s']:.2f} s | "
              f"{r['features_per_300_s']:.2f} s | {r['compare_s']:.2f} s | "
              f"{r['index_s']:.2f} s ({r['train_notes']}) | {r['query_s']:.2f} s "
              f"({r['test_notes']}, {r['test_notes'] / r['query_s']:.0f} notes/s) | "
              f"{r['copy_rate_16']:.2%} | {ratio} |")


if __name__ == "__main__":
    main()
