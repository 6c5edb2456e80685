"""Experiment: does a codec-version-2 model follow its conditions? Trains a small model on a
multi-instrument corpus, then generates 50 pieces per condition and measures:

* instruments: with ``instruments=[...]`` (the header's Program tokens forced), the share of
  the asked parts that hold notes, and the share of notes in them (the rest would be in parts
  the model was not given; the engine masks those, so this share is 1 by construction) against
  pieces generated without the condition (how often the model picks those instruments itself);
* key: with ``key=K`` and ``scale_strictness=0`` (the Key condition, or for a key the model
  hardly saw the transposition of ``musgen.keyplan``: no mask, no bias on
  pitches), the share of pitched notes inside K's scale (major, or natural + harmonic minor),
  against unconditioned pieces measured in the same key. The condition works if the first is
  clearly higher.

    python bench/v2_conditions.py [--corpus opengameart] [--minutes 6] [--n 50]
        [--work build/v2_conditions]

Needs TensorFlow (training) and the generation rules of ``musgen.generate`` (``key=``,
``scale_strictness=``, ``instruments=``). Writes ``bench/results/v2_conditions.json`` and
``.md``. Data: $MUSGEN_DATA (default ../shared/data).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MUSGEN_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "bench" / "results"
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor and the harmonic minor's raised 7th
KEYS = ("C", "Dm", "Eb", "Am", "F#", "Bbm")


def scale_share(score, key: str) -> float:
    """Share of pitched (non-drum) notes whose pitch class is in ``key``'s scale."""
    from musgen.codec.names import parse_key

    k = parse_key(key)
    tonic, minor = k % 12, k >= 12
    n = score.notes[score.notes["channel"] != 9]
    if not n.size:
        return float("nan")
    degrees = (n["pitch"].astype(np.int64) - tonic) % 12
    return float(np.isin(degrees, MINOR if minor else MAJOR).mean())


def common_instrument_sets(ds, k: int = 3) -> list:
    """The k most frequent instrument lists of the training pieces (as GM program numbers)."""
    counts = Counter(tuple(p.programs) for p in ds.pieces if p.split == "train" and p.programs)
    return [list(s) for s, _ in counts.most_common(k)]


def parts_used(score, n_parts: int) -> float:
    """Share of a piece's declared parts that hold at least one note (tracks are parts)."""
    return len(set(score.notes["track"].tolist())) / max(n_parts, 1)


def run(args) -> dict:
    from musgen import data, generate, training

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ds_dir = work / "dataset"
    corpus = DATA / "corpora" / args.corpus
    if not (ds_dir / "dataset.json").exists():
        data.prepare([corpus], ds_dir, seed=0, quiet=True, codec_version=2)
    ds = data.Dataset.open(ds_dir)
    model = work / "model"
    t0 = time.perf_counter()
    # key normalization (every piece in C major / A minor, other keys by transposition) or
    # random transposition with the Key condition moved along
    augment = {"key_normalize": True} if args.key_normalize else {"transpose": 6}
    training.train(ds, model, units=args.units, layers=2, embedding_dim=64, window=128,
                   stride=64, max_minutes=args.minutes, seed=0, quiet=True,
                   resume=(model / "checkpoints").exists(), **augment)
    # the run's own training time (a resumed, finished run does not train again)
    seconds = json.loads((model / "config.json").read_text())["training"].get("train_seconds")
    train_minutes = seconds / 60 if seconds else (time.perf_counter() - t0) / 60
    length = f"{args.beats} beats"
    prefix = json.loads((model / "config.json").read_text())["training"]["hyperparameters"].get(
        "header_prefix", False)
    out: dict = {"corpus": args.corpus, "pieces": len(ds), "header_prefix": prefix,
                 "key_normalize": bool(args.key_normalize),
                 "train_minutes": round(train_minutes, 1),
                 "units": args.units, "n": args.n, "length": length, "instruments": [],
                 "keys": []}
    free = generate(model, n=args.n, length=length, seed=1)
    for progs in common_instrument_sets(ds):
        names = ["drums" if p == 128 else p for p in progs]
        pieces = generate(model, n=args.n, length=length, seed=2, instruments=names)
        asked = [parts_used(s, len(progs)) for s in pieces]
        chosen = sum(sorted(_programs(s)) == sorted(progs) for s in free) / len(free)
        out["instruments"].append({
            "programs": progs, "parts_with_notes": float(np.mean(asked)),
            "unconditioned_pieces_with_these_instruments": chosen,
            "notes_per_piece": float(np.mean([s.n_notes for s in pieces]))})
    out["keys"] = key_rows(model, free, args.n, length)
    if args.keys_model:
        free = generate(args.keys_model, n=args.n, length=length, seed=1)
        out["keys_model"] = Path(args.keys_model).name
        out["keys_of_keys_model"] = key_rows(args.keys_model, free, args.n, length)
    return out


def key_rows(model, free, n: int, length: str) -> list:
    """Per key: the share of notes in its scale with the Key condition alone (strictness 0: no
    mask, no bias on pitches) against the unconditioned pieces ``free``."""
    from musgen import generate

    rows = []
    for key in KEYS:
        pieces = generate(model, n=n, length=length, seed=3, key=key, scale_strictness=0.0)
        cond = [scale_share(s, key) for s in pieces]
        base = [scale_share(s, key) for s in free]
        rows.append({"key": key, "conditioned": float(np.nanmean(cond)),
                     "unconditioned": float(np.nanmean(base))})
    return rows


def _programs(score) -> list:
    """The General MIDI programs of a decoded piece's parts (128: drums)."""
    progs = {int(r["track"]): int(r["program"]) for r in score.programs}
    drums = {int(t) for t in score.notes["track"][score.notes["channel"] == 9]}
    return [128 if t in drums and t not in progs else progs.get(t, 0)
            for t in range(len(score.track_names))]


def key_gain(rows: list) -> float:
    """Mean over the keys of (conditioned - unconditioned) share of notes in the asked scale."""
    return float(np.mean([r["conditioned"] - r["unconditioned"] for r in rows]))


def write(result: dict, stem: str = "v2_conditions") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Codec version 2: conditions followed (`bench/v2_conditions.py`)", "",
             f"{result['corpus']}, {result['pieces']} pieces; 2x{result['units']} LSTM trained "
             f"{result['train_minutes']} min"
             + (", training windows prefixed with the piece's conditions"
                if result.get("header_prefix") else "")
             + (", every piece moved to C major or A minor (`--key-normalize`; other keys by "
                "transposition)" if result.get("key_normalize") else
                ", transposition by up to +-6 semitones")
             + f"; {result['n']} pieces of {result['length']} per condition.", "",
             "| instruments (GM programs) | asked parts with notes | "
             "unconditioned pieces with these instruments |", "|---|---:|---:|"]
    for r in result["instruments"]:
        lines.append(f"| {r['programs']} | {r['parts_with_notes']:.2f} | "
                     f"{r['unconditioned_pieces_with_these_instruments']:.2f} |")
    lines += ["", "| key (`key=K, scale_strictness=0`: no pitch mask) | notes in scale, conditioned | "
              "unconditioned |", "|---|---:|---:|"]
    for r in result["keys"]:
        lines.append(f"| {r['key']} | {r['conditioned']:.3f} | {r['unconditioned']:.3f} |")
    if result.get("keys_of_keys_model"):
        lines += ["", f"The same key measurement on {result['keys_model']} (trained with key "
                      "conditions):", "",
                  "| key (`key=K, scale_strictness=0`: no pitch mask) | notes in scale, conditioned | "
                  "unconditioned |", "|---|---:|---:|"]
        for r in result["keys_of_keys_model"]:
            lines.append(f"| {r['key']} | {r['conditioned']:.3f} | {r['unconditioned']:.3f} |")
    gain = key_gain(result["keys"])
    lines += ["", "Instruments: the parts asked for are the piece's parts and hold notes, and "
              "the model never picks these sets by itself. Key: `key=` without a pitch mask moves the "
              f"share of notes in the asked scale by {gain:+.3f} on average over the keys "
              f"({'it follows the key' if gain >= 0.05 else 'it does not follow the key'}). "
              "`key=` with the default scale_strictness (1: out-of-scale pitches masked) "
              "puts every note in the scale."]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="opengameart")
    ap.add_argument("--minutes", type=float, default=6.0, help="training time budget")
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--n", type=int, default=50, help="pieces per condition")
    ap.add_argument("--beats", type=int, default=32, help="length of each piece")
    ap.add_argument("--work", default=str(ROOT / "build" / "v2_conditions"))
    ap.add_argument("--key-normalize", action="store_true",
                    help="train with key normalization instead of random transposition")
    ap.add_argument("--results", default="v2_conditions",
                    help="name of the results files in bench/results (.json, .md)")
    ap.add_argument("--keys-model", default=None, metavar="MODEL",
                    help="also measure the key condition of this model (a folder or a shipped "
                         "name, e.g. chorale)")
    args = ap.parse_args(argv)
    import inspect

    from musgen import generate

    if "instruments" not in inspect.signature(generate).parameters:
        print("v2_conditions: this musgen's generate() has no key=/instruments= conditions yet")
        return 1
    warnings.simplefilter("ignore")
    result = run(args)
    write(result, args.results)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
