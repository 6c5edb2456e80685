"""Which generation defaults a model should ship: its music on the validation split under
several settings of the rules (``max_rest``, ``max_voices``, ``min_voices``), side by side.

For each setting: 200 pieces of "64 beats" at T = 1, seed 0, against the validation split of the
dataset (``musgen evaluate --music`` features without baselines): per feature, the mean
(scalar features) and the overlap area with the validation split.

    python bench/generation_defaults.py MODEL DATASET [--n 200] [--json OUT]

``DATASET`` is a ``musgen prepare`` folder with the model's codec. The default model's settings
were chosen with it (``bench/results/default_model.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

#: The settings compared: None turns a rule off, "auto" takes the model's own default.
SETTINGS = {
    "no rules": {"max_rest": None, "max_voices": None, "min_voices": None},
    "no rests": {"max_rest": 0.0, "max_voices": None, "min_voices": None},
    "no rests, at most 4 voices": {"max_rest": 0.0, "max_voices": 4, "min_voices": None},
    "no rests, 3 to 4 voices": {"max_rest": 0.0, "max_voices": 4, "min_voices": 3},
    "no rests, exactly 4 voices": {"max_rest": 0.0, "max_voices": 4, "min_voices": 4},
    "the model's defaults": {},
}
FEATURES = ("key_normalized_pitch_class_histogram", "scale_consistency", "pitch_class_entropy",
            "pitch_range", "polyphony", "note_length_histogram", "ioi_histogram",
            "voice_count_histogram", "chord_fit", "parallel_fifths_octaves", "empty_beat_rate")


def measure(model, dataset, n: int) -> dict:
    from musgen import generate
    from musgen.data import Dataset
    from musgen.eval.baselines import split_scores
    from musgen.eval.music import compare_sets, piece_set

    ds = Dataset.open(dataset)
    reference = piece_set("reference", "valid", split_scores(ds, "valid"))
    out = {}
    for name, kw in SETTINGS.items():
        scores = generate(model, n=n, length="64 beats", seed=0, **kw)
        generated = piece_set("generated", name, scores, target_beats=64)
        r = compare_sets(generated, reference, seed=0).result
        out[name] = {f: {"mean": r[f]["mean"] if not isinstance(r[f]["mean"], list) else None,
                         "reference_mean": r[f]["reference_mean"]
                         if not isinstance(r[f]["reference_mean"], list) else None,
                         "overlap_area": r[f]["overlap_area"]} for f in FEATURES}
    return out


def table(result: dict) -> str:
    lines = ["| setting | " + " | ".join(FEATURES) + " |",
             "|---|" + "---:|" * len(FEATURES)]
    for name, row in result.items():
        cells = []
        for f in FEATURES:
            m, oa = row[f]["mean"], row[f]["overlap_area"]
            cells.append(("" if m is None else f"{m:.2f} ") + f"({oa:.2f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("dataset")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    result = measure(args.model, args.dataset, args.n)
    print(table(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
