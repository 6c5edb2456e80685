"""Reproduce the default model shipped inside the package (``python/musgen/models/default``).

Data: the JSB Chorales in the standard Boulanger-Lewandowski (2012) split (229/76/77 pieces),
quarter-note grid, from ``corpora/jsb_chorales/quarter`` of the data folder (``--data`` or
``MUSGEN_DATA``). The music is J. S. Bach's (public domain); the MIDI rendering's source
repository states no licence (see ``README_source.md`` beside the data).

Steps, all seeded: ``musgen prepare`` (seed 0) -> ``musgen train`` with the default settings for a
fixed number of epochs (no time budget, so the result does not depend on the machine's speed) ->
copy the exported model directory into the package -> ``musgen evaluate`` on the test split with
the n-gram baseline -> ``metrics.json`` and ``MODEL_CARD.md`` beside the weights.

    python tools/train_default_model.py --data ../shared/data [--work build/default_model]

``--check`` retrains and compares with the shipped weights instead of replacing them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PACKAGE_MODEL = REPO / "python" / "musgen" / "models" / "default"
SOURCE = "corpora/jsb_chorales/quarter"
DATA_README = REPO / "tests" / "data" / "corpus_small" / "README_source.md"
EPOCHS = 28  # where the validation loss stopped improving meaningfully in a 60-epoch budget
SEED = 0


def _metrics_table(result: dict) -> str:
    m, g = result["model"], result["ngram"]
    rows = [
        "| model | NLL/token | NLL/note | perplexity | accuracy |",
        "|---|---:|---:|---:|---:|",
        f"| this model (LSTM 2x256, embedding 64) | {m['nll_per_token']:.4f} | "
        f"{m['nll_per_note']:.3f} | {m['perplexity']:.3f} | {m['accuracy']:.3f} |",
        f"| best n-gram (order {g['order']}, interpolated Kneser-Ney) | "
        f"{g['nll_per_token']:.4f} | {g['nll_per_note']:.3f} | {g['perplexity']:.3f} | - |",
    ]
    gain = 1 - m["nll_per_token"] / g["nll_per_token"]
    return "\n".join(rows) + f"\n\nThe LSTM's NLL per token is {gain:.1%} lower than the n-gram's."


def write_card(model_dir: Path, config: dict, result: dict) -> None:
    m = config["model"]
    t = config["training"]
    hp = t["hyperparameters"]
    splits = t["dataset"]["splits"]
    card = f"""# musgen default model: JSB Chorales LSTM

The model `musgen generate` and `musgen.generate()` use when no model is given.

- **Data**: the JSB Chorales (J. S. Bach, public domain), standard Boulanger-Lewandowski (2012)
  split: {splits['train']['pieces']} train / {splits['valid']['pieces']} valid /
  {splits['test']['pieces']} test pieces, rendered to MIDI on a quarter-note grid (480 ticks per
  beat, 100 BPM, velocity 80). The MIDI rendering's source repository states no licence; the
  music itself is in the public domain (`DATA_SOURCE.md`: the source's own description).
- **Representation**: musgen's default codec ({config['codec'].get('steps_per_beat')} steps per
  beat; TimeShift / Pitch / Velocity / Duration tokens; vocabulary {m['vocab_size']}).
- **Architecture**: embedding {m['embedding_dim']} -> LSTM {' x '.join(map(str, m['lstm_units']))}
  (dropout {m['dropout']}) -> dense head over the vocabulary; float32 weights
  (`weights.safetensors`, Keras layout).
- **Training**: `musgen train` defaults, {t['epochs_run']} epochs (best epoch
  {t['best_epoch']}), window {hp['window']}, stride {hp['stride']}, batch {hp['batch_size']},
  Adam lr {hp['learning_rate']}, seed {t['seed']}; final validation loss
  {t['valid_loss']:.4f} nats/token.

## Test-split metrics (`musgen evaluate MODEL DATASET --split test`)

{_metrics_table(result)}

NLL in nats; per note = total NLL over the test tokens / notes. These numbers are reproduced by
the test suite (`tests/test_default_model.py`) from `metrics.json`.

## Retrain

```bash
pip install ".[train]"
python tools/train_default_model.py --data PATH/TO/data   # the folder holding corpora/
```

It prepares the dataset (seed {SEED}), trains for {EPOCHS} epochs with seed {SEED}, and
writes this folder. `--check` retrains and compares with the shipped weights instead.
"""
    (model_dir / "MODEL_CARD.md").write_text(card)
    # The data's source and licence statement travel with the model.
    shutil.copyfile(DATA_README, model_dir / "DATA_SOURCE.md")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("MUSGEN_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--work", default=str(REPO / "build" / "default_model"))
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--check", action="store_true", help="compare with the shipped weights")
    args = ap.parse_args(argv)

    from musgen import data as ds_mod
    from musgen import eval as evaluation, training
    from musgen.modeldir import load_model_dir, save_model_dir

    src = Path(args.data) / SOURCE
    if not src.is_dir():
        sys.exit(f"{src}: not found (pass --data, the folder holding corpora/)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ds_dir = work / "jsb"
    if not (ds_dir / "dataset.json").exists():
        # the shipped model is a codec-version-1 model
        ds_mod.prepare([src], ds_dir, seed=SEED, quiet=True, codec_version=1)
    model_dir = work / "model"
    training.train(ds_dir, model_dir, epochs=args.epochs, seed=SEED, max_minutes=None,
                   resume=(model_dir / "checkpoints").exists(), quiet=True)
    config, tensors = load_model_dir(model_dir)
    # Provenance without this machine's paths.
    config["training"]["dataset"]["path"] = SOURCE
    config["training"]["dataset"]["name"] = "jsb_chorales/quarter"
    print(f"trained in {time.perf_counter() - t0:.0f} s")
    if args.check:
        _, shipped = load_model_dir(PACKAGE_MODEL)
        worst = max(float(np.max(np.abs(shipped[k] - tensors[k]))) for k in shipped)
        print(f"largest |weight difference| against the shipped model: {worst:.3g}")
        return 0 if worst == 0.0 else 1
    out = work / "package_model"
    if out.exists():
        shutil.rmtree(out)
    save_model_dir(out, config, tensors)
    result = evaluation.evaluate(out, ds_dir, split="test", baselines=True)
    for key in ("dataset", "model_dir"):  # paths of this machine stay out of the package
        result.pop(key, None)
    (out / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    write_card(out, config, result)
    if PACKAGE_MODEL.exists():
        shutil.rmtree(PACKAGE_MODEL)
    shutil.copytree(out, PACKAGE_MODEL)
    print(evaluation.format_report(result))
    print(f"wrote {PACKAGE_MODEL.relative_to(REPO)} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
