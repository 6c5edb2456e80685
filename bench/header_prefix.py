"""Experiment: training windows with and without the header prefix (``header_prefix``), same
corpus, settings and time budget. Without it only a piece's first window holds the conditions
(Key, Style, Program, ...); with it every window starts with them, as context without loss.

Trains two version-2 models on the JSB Chorales as four voices (transposition by up to +-5
semitones, the Key condition moving with the notes), one after the other, then measures each on
the validation split:

* held-out NLL per token and per pitch token (``musgen evaluate``);
* the music of ``--n`` unconditioned pieces of "64 beats" at T = 1 against the validation split
  (``musgen evaluate --music`` without baselines): scale consistency, pitch-class entropy, the
  key-normalised pitch-class histogram and chord fit, with their overlap areas;
* the key condition alone (``key=K``, ``scale_strictness=0``: no mask, no bias on pitches):
  the share of notes in K's scale against unconditioned pieces (``v2_conditions.key_rows``).

    python bench/header_prefix.py [--minutes 15] [--n 100] [--work build/header_prefix]

Needs TensorFlow. Writes ``bench/results/header_prefix.json`` and ``.md``. Data:
$MUSGEN_DATA (default ../shared/data).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from v2_conditions import DATA, RESULTS, key_rows  # noqa: E402

SOURCE = "corpora/jsb_chorales/separated_16th"
#: The chorale recipe's first phase (``tools/train_chorale_model.py``), smaller and time-boxed.
SETTINGS = {"units": 256, "layers": 2, "embedding_dim": 96, "dropout": 0.3, "weight_decay": 0.05,
            "window": 256, "stride": 128, "transpose": 5, "batch_size": 64,
            "learning_rate": 4e-3, "patience": 10, "seed": 0}
FEATURES = ("scale_consistency", "pitch_class_entropy", "key_normalized_pitch_class_histogram",
            "chord_fit", "polyphony", "pitch_range")


def measure(model: Path, ds_dir: Path, n: int) -> dict:
    from musgen import generate
    from musgen.eval.music import evaluate_music

    ev = evaluate_music(model, ds_dir, split="valid", n=n, length="64 beats", seed=0,
                        baselines=False)
    r = ev.result
    nll = r["nll"]["model"] if "model" in r["nll"] else r["nll"]
    feats = {name: {"mean": r[name]["mean"], "reference_mean": r[name]["reference_mean"],
                    "overlap_area": r[name]["overlap_area"]} for name in FEATURES}
    free = generate(model, n=n // 2, length="32 beats", seed=1)
    return {"nll_per_token": nll.get("nll_per_token"),
            "nll_per_pitch_token": (nll.get("nll_per_token_type") or {}).get("pitch"),
            "features": feats, "keys": key_rows(model, free, n // 2, "32 beats")}


def run(args) -> dict:
    from musgen import data, training

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ds_dir = work / "dataset"
    if not (ds_dir / "dataset.json").exists():
        data.prepare([DATA / SOURCE], ds_dir, seed=0, quiet=True, codec_version=2,
                     labels="chorale")
    out = {"corpus": SOURCE, "minutes": args.minutes, "n": args.n, "settings": SETTINGS,
           "runs": {}}
    for name, prefix in (("without", False), ("with", True)):
        model = work / f"model_{name}"
        t0 = time.perf_counter()
        if not (model / "config.json").exists():
            training.train(ds_dir, model, max_minutes=args.minutes, header_prefix=prefix,
                           quiet=True, **SETTINGS)
        cfg = json.loads((model / "config.json").read_text())["training"]
        row = {"header_prefix": prefix, "epochs": cfg.get("epochs_run"),
               "best_epoch": cfg.get("best_epoch"), "valid_loss": cfg.get("valid_loss"),
               "train_minutes": round((time.perf_counter() - t0) / 60, 1)}
        row.update(measure(model, ds_dir, args.n))
        out["runs"][name] = row
        print(json.dumps({name: row}, indent=1), flush=True)
    return out


def _f(v, spec=".3f") -> str:
    """A figure, or '-' where there is none or it is a histogram (only its overlap is shown)."""
    return "-" if v is None or isinstance(v, list) else format(v, spec)


def write(result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "header_prefix.json").write_text(json.dumps(result, indent=2) + "\n")
    a, b = result["runs"]["without"], result["runs"]["with"]
    s = result["settings"]
    lines = ["# Training windows with and without the header prefix (`bench/header_prefix.py`)",
             "", f"{result['corpus']} (codec version 2, style `chorale`), 2x{s['units']} LSTM, "
             f"window {s['window']}, stride {s['stride']}, batch {s['batch_size']}, "
             f"transposition +-{s['transpose']}, {result['minutes']} minutes each, one after "
             f"the other; measured on the validation split ({result['n']} pieces of 64 beats at "
             "T = 1; OA: overlap area with the validation split, 1 is best).", "",
             "| | without prefix | with prefix |", "|---|---:|---:|",
             f"| epochs (best) | {a['epochs']} ({a['best_epoch']}) | "
             f"{b['epochs']} ({b['best_epoch']}) |",
             f"| validation NLL per token | {_f(a['nll_per_token'], '.4f')} | "
             f"{_f(b['nll_per_token'], '.4f')} |",
             f"| validation NLL per pitch token | {_f(a['nll_per_pitch_token'])} | "
             f"{_f(b['nll_per_pitch_token'])} |"]
    for name in FEATURES:
        fa, fb = a["features"][name], b["features"][name]
        lines.append(f"| {name} (validation: {_f(fa['reference_mean'])}) | "
                     f"{_f(fa['mean'])} (OA {_f(fa['overlap_area'], '.2f')}) | "
                     f"{_f(fb['mean'])} (OA {_f(fb['overlap_area'], '.2f')}) |")
    lines += ["", "The Key condition alone (`key=K, scale_strictness=0`), share of notes in K's "
              "scale, conditioned / unconditioned:", "",
              "| key | without prefix | with prefix |", "|---|---:|---:|"]
    for ra, rb in zip(a["keys"], b["keys"]):
        lines.append(f"| {ra['key']} | {ra['conditioned']:.3f} / {ra['unconditioned']:.3f} | "
                     f"{rb['conditioned']:.3f} / {rb['unconditioned']:.3f} |")
    gain = [r["conditioned"] - r["unconditioned"] for r in b["keys"]]
    gain0 = [r["conditioned"] - r["unconditioned"] for r in a["keys"]]
    lines += ["", f"Mean gain of the asked key's scale share: without the prefix "
              f"{np.mean(gain0):+.3f}, with it {np.mean(gain):+.3f}."]
    (RESULTS / "header_prefix.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15.0, help="training budget per model")
    ap.add_argument("--n", type=int, default=100, help="pieces per measurement")
    ap.add_argument("--work", default=str(Path(__file__).resolve().parents[1] / "build"
                                          / "header_prefix"))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    result = run(args)
    write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
