"""Small data: the default LSTM against the best Kneser-Ney n-gram on the first N Nottingham tunes
(top-level files sorted by name) under a short time budget.

Prepares the subset once (``musgen prepare`` on a folder of links to the files, default seeded
80/10/10 split: 95/12/12 pieces, one file quarantined), then
for each configuration runs ``musgen train DATASET -o MODEL --max-minutes M [ARGS]`` and
``musgen evaluate MODEL DATASET --json``, and prints one Markdown row per configuration: test
NLL per token (and without velocity tokens: the subset has one velocity), the n-gram's, the
epochs run and the model's size. Data come from ``MUSGEN_DATA`` (default ``../shared/data``).

    python bench/small_data.py --work build/small_data [--tunes 120] [--minutes 3] \\
        [--config "defaults="] [--config "2x256 batch 16=--units 256 --batch-size 16"]

Timings depend on the machine and its load: the epochs that fit in the budget, and so the NLL,
move with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(args: list) -> None:
    print("$ musgen " + shlex.join(args), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "musgen", *args], check=True,
                   stdout=subprocess.DEVNULL)


def _prepare(work: Path, data: Path, tunes: int) -> Path:
    """The subset as a folder of links (its name is the style label), prepared once."""
    dataset = work / f"ds{tunes}"
    if not (dataset / "dataset.json").is_file():
        folder = work / f"nott{tunes}"
        folder.mkdir(exist_ok=True)
        names = sorted(f.name for f in (data / "corpora/nottingham").iterdir()
                       if f.suffix == ".mid" and f.is_file())[:tunes]
        for name in names:
            if not (folder / name).exists():
                (folder / name).symlink_to(data / "corpora/nottingham" / name)
        _run(["prepare", str(folder), "-o", str(dataset), "-q"])
    return dataset


def _row(name: str, dataset: Path, model: Path, minutes: float, extra: list) -> dict:
    _run(["train", str(dataset), "-o", str(model), "--max-minutes", str(minutes), "-q",
          *extra])
    out = model.parent / f"{model.name}.eval.json"
    _run(["evaluate", str(model), str(dataset), "--json", str(out)])
    result = json.loads(out.read_text())
    config = json.loads((model / "config.json").read_text())
    training = config["training"]
    m, ng = result["model"], result["ngram"]
    return {"name": name, "args": extra, "lstm": m["nll_per_token"],
            "lstm_no_vel": m.get("nll_per_token_without_velocity"),
            "ngram": ng["nll_per_token"], "ngram_no_vel": ng.get("nll_per_token_without_velocity"),
            "order": ng["order"], "epochs": training["epochs_run"],
            "best_epoch": training["best_epoch"], "seconds": training["train_seconds"],
            "units": config["model"]["lstm_units"], "dropout": config["model"]["dropout"],
            "sizing": training["hyperparameters"].get("sizing")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--tunes", type=int, default=120)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--config", action="append", default=None, metavar="NAME=ARGS",
                   help="a configuration: its name, '=', extra musgen train options")
    a = p.parse_args()
    data = Path(os.environ.get("MUSGEN_DATA", REPO.parent / "shared" / "data"))
    a.work.mkdir(parents=True, exist_ok=True)
    dataset = _prepare(a.work, data, a.tunes)
    rows = []
    for i, spec in enumerate(a.config or ["defaults="]):
        name, _, extra = spec.partition("=")
        rows.append(_row(name, dataset, a.work / f"model{i}", a.minutes, shlex.split(extra)))
    print("| configuration | LSTM NLL/token | w/o velocity | n-gram NLL/token | w/o velocity "
          "| LSTM / n-gram | epochs (best) | LSTM |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['name']} | {r['lstm']:.4f} | {r['lstm_no_vel'] or float('nan'):.4f} | "
              f"{r['ngram']:.4f} ({r['order']}-gram) | {r['ngram_no_vel'] or float('nan'):.4f} "
              f"| {r['lstm'] / r['ngram']:.3f} | {r['epochs']} ({r['best_epoch']}) | "
              f"{'x'.join(map(str, r['units']))}, dropout {r['dropout']:g} |")
    (a.work / "small_data.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
