"""Measure: which part-token design codec version 2 should use, by sequence length and NLL.

Three spellings of the same pieces (codec version 2, everything else equal):

* ``on change`` (the design chosen): a Part token only before a note whose part differs from
  the previous note's;
* ``per note``: a Part token before every note;
* ``none``: no Part tokens (the parts are lost: a lower bound on what they cost).

For each corpus: tokens per note, and the negative log-likelihood per NOTE of the test split
under an interpolated Kneser-Ney n-gram (``musgen.eval.ngram``; order chosen on the valid
split, up to 5) trained on the train split (80/10/10 by a seeded hash of each file). NLL per
note compares designs whose sequences have different lengths: a design may spend fewer bits
per token and still cost more per note.

    python bench/bench_part_tokens.py [--limit N]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from musgen import CodecWarning, MidiWarning, codec, midi
from musgen.eval.ngram import KneserNey, best_order

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MUSGEN_DATA", ROOT.parent / "shared" / "data"))
CORPORA = {
    "pop909": "corpora/pop909/*/*.mid",
    "music21_bach": "corpora/music21_bach/**/*.mid",
    "opengameart": "corpora/opengameart/**/*.mid",
    "jsb_separated": "corpora/jsb_chorales/separated_16th/**/*.mid",
}


def spell(tokens: np.ndarray, config, design: str) -> np.ndarray:
    """The same stream with Part tokens before every note (``per note``) or none (``none``)."""
    if design == "on change":
        return tokens
    first, stop = config.block("Part")
    is_part = (tokens >= first) & (tokens < stop)
    if design == "none":
        return tokens[~is_part]
    out, part = [], 0
    is_note = (tokens >= config.pitch_base) & (tokens < config.velocity_base)
    for t, p, n in zip(tokens.tolist(), is_part.tolist(), is_note.tolist()):
        if p:
            part = t - first
            continue
        if n:
            out.append(first + part)
        out.append(t)
    return np.array(out, np.int32)


def split_of(path: str) -> str:
    h = int(hashlib.sha1(Path(path).name.encode()).hexdigest(), 16) % 10
    return "train" if h < 8 else "valid" if h == 8 else "test"


def measure(name: str, files: list, config) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MidiWarning)
        warnings.simplefilter("ignore", CodecWarning)
        res = midi.read_many(files, on_error="skip")
        tokens = codec.encode_many(res.scores, config)
    splits = [split_of(p) for p in res.paths]
    notes = {s: 0 for s in ("train", "valid", "test")}
    for t, s in zip(tokens, splits):
        notes[s] += int(((t >= config.pitch_base) & (t < config.velocity_base)).sum())
    parts = [len(codec.read_header(t, config)["programs"]) for t in tokens]
    print(f"\n{name}: {len(tokens)} pieces, {sum(notes.values())} notes, parts per piece "
          f"median {int(np.median(parts))} (max {max(parts)})")
    print(f"  {'design':10s} {'tokens/note':>12s} {'n-gram order':>13s} {'NLL/token':>10s} "
          f"{'NLL/note':>9s}")
    for design in ("on change", "per note", "none"):
        seqs = {s: [spell(t, config, design) for t, sp in zip(tokens, splits) if sp == s]
                for s in ("train", "valid", "test")}
        n_tok = sum(len(x) for s in seqs.values() for x in s)
        model = KneserNey(seqs["train"], config.vocab_size, config.bos_id, max_order=5)
        order, _ = best_order(model, seqs["valid"])
        total, count = model.nll(seqs["test"], order)
        print(f"  {design:10s} {n_tok / sum(notes.values()):12.3f} {order:13d} "
              f"{total / count:10.4f} {total / max(notes['test'], 1):9.4f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=300, help="files per corpus (0 = all)")
    args = ap.parse_args(argv)
    config = codec.default_config(version=2)
    found = False
    for name, pattern in CORPORA.items():
        files = sorted(glob.glob(str(DATA / pattern), recursive=True))
        if not files:
            print(f"{name}: no files under {DATA / pattern}, skipped")
            continue
        found = True
        if args.limit:
            files = files[::max(1, len(files) // args.limit)][:args.limit]
        measure(name, files, config)
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
