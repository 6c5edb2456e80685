"""Reproduce the version-1 model shipped inside the package as ``jsb-v1``
(``python/musgen/models/jsb-v1``): the default model before codec version 2, kept so that scripts
written for it make the very same pieces (``generate(model="jsb-v1")``; the regression sample in
``tests/data/regression`` is its tokens).

Data: the JSB Chorales in the standard Boulanger-Lewandowski (2012) split (229/76/77 pieces),
quarter-note grid, from ``corpora/jsb_chorales/quarter`` of the data folder (``--data`` or
``MUSGEN_DATA``). The music is J. S. Bach's (public domain); the MIDI rendering's source
repository states no licence (see ``README_source.md`` beside the data).

Steps, all seeded: ``musgen prepare`` (seed 0) -> ``musgen train`` with the default settings for a
fixed number of epochs (no time budget, so the result does not depend on the machine's speed) ->
copy the exported model directory into the package -> ``musgen evaluate`` on the test split with
the n-gram baseline, and ``musgen evaluate --music`` (200 pieces of "64 beats" at temperature 1,
seed 0, against the test split, with the n-gram's pieces and training pieces as baseline rows)
-> ``metrics.json`` and ``MODEL_CARD.md`` beside the weights.

    python tools/train_jsb_v1_model.py --data ../shared/data [--work build/jsb_v1_model]

``--check`` retrains and compares with the shipped weights instead of replacing them.
``--music-only`` keeps the shipped weights and their NLL figures and measures the music again
(after a change to generation); ``--report DIR`` also writes the full report there
(``bench/results/music_jsb_v1`` is the committed one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path


import model_card
from model_card import cell, copies_line, music_command

REPO = Path(__file__).resolve().parent.parent
PACKAGE_MODEL = REPO / "python" / "musgen" / "models" / "jsb-v1"
SOURCE = "corpora/jsb_chorales/quarter"
DATA_README = REPO / "tests" / "data" / "corpus_small" / "README_source.md"
EPOCHS = 28  # where the validation loss stopped improving meaningfully in a 60-epoch budget
#: The settings the shipped model was trained with (the ``musgen train`` defaults of its day),
#: pinned so that later defaults (the corpus sizing, batch 64) do not change the recipe.
TRAIN = {"units": 256, "layers": 2, "embedding_dim": 64, "dropout": 0.2, "batch_size": 32,
         "learning_rate": 2e-3, "window": 128, "stride": 64}
SEED = 0
#: Features quoted in the card's table (all are in metrics.json).
CARD_FEATURES = ("pitch_class_entropy", "scale_consistency", "chord_fit",
                 "parallel_fifths_octaves", "restrikes", "polyphony", "empty_beat_rate",
                 "longest_hold", "length_beats", "pitch_class_histogram", "voice_count_histogram",
                 "note_length_histogram")


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
    types = ", ".join(f"{t} {v:.3f}" for t, v in sorted(m.get("nll_per_token_type", {}).items()))
    return "\n".join(rows) + f"""

The LSTM's NLL per token is {gain:.1%} lower than the n-gram's. Per token type (nats per token
of that type): {types}. The chorales have one velocity, so velocity tokens cost almost nothing
and flatter the per-token figure: per note and per pitch token are the honest ones."""


def _music_section(music: dict) -> str:
    f, b = music["features"], music["baselines"]
    rows = ["| feature | test split | this model (OA) | 5-gram (OA) | order-3 Markov (OA) | "
            "train pieces (OA) |", "|---|---:|---:|---:|---:|---:|"]
    for name in CARD_FEATURES:
        cells = [cell(f[name]["reference_mean"])]
        for row in (f, b["ngram"]["features"], b["markov"]["features"], b["train"]["features"]):
            cells.append(f"{cell(row[name]['mean'])} ({cell(row[name]['overlap_area'], '.2f')})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    early = f["ended_early"]["mean"]
    split = music["settings"]["split"]
    return f"""## Music (`{music_command(split)}`)

{music['sets']['generated']['n_pieces']} generated pieces against the
{music['sets']['reference']['n_pieces']} {split} pieces: mean per piece and overlap area (OA, 1 is
best) of the Yang & Lerch (2018) set comparison; "5-gram" and "order-3 Markov" are Kneser-Ney
baselines sampled through the same grammar, rules and settings, "train pieces" are training
pieces (the ceiling). Every piece runs to the asked length and closes on a beat with every
note released (the generation rules).

{chr(10).join(rows)}

- Ended before the asked 64 beats: {early:.0%} of the model's pieces
  ({b['ngram']['features']['ended_early']['mean']:.0%} of the 5-gram's).
{copies_line(music, "5-gram")}

Every figure is in `metrics.json` (`music`); the full report is
`bench/results/music_jsb_v1/` in the source tree.
"""


def write_card(model_dir: Path, config: dict, result: dict) -> None:
    m = config["model"]
    t = config["training"]
    hp = t["hyperparameters"]
    splits = t["dataset"]["splits"]
    card = f"""# jsb-v1: JSB Chorales LSTM, codec version 1 (the default model before version 2)

The default model of musgen before codec version 2, kept under its name so that scripts written
for it make the very same pieces: `generate(model="jsb-v1")`, `musgen generate --model jsb-v1`.
One stream of notes on one piano part, no conditions (key, style, tempo); the default model now
is a version-2 model (`musgen info --model default`).

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
- **Training**: `musgen train` with the settings of `TRAIN` in the recipe (the defaults of its
  day), {t['epochs_run']} epochs (best epoch
  {t['best_epoch']}), window {hp['window']}, stride {hp['stride']}, batch {hp['batch_size']},
  Adam lr {hp['learning_rate']}, seed {t['seed']}; final validation loss
  {t['valid_loss']:.4f} nats/token.

## Test-split metrics (`musgen evaluate MODEL DATASET --split test`)

{_metrics_table(result)}

NLL in nats; per note = total NLL over the test tokens / notes. These numbers are reproduced by
the test suite (`tests/test_default_model.py`) from `metrics.json`.

{_music_section(result["music"]) if result.get("music") else ""}
## Retrain

```bash
pip install ".[train]"
python tools/train_jsb_v1_model.py --data PATH/TO/data   # the folder holding corpora/
```

It prepares the dataset (seed {SEED}), trains for {EPOCHS} epochs with seed {SEED}, and
writes this folder. `--check` retrains and compares with the shipped weights instead.
"""
    (model_dir / "MODEL_CARD.md").write_text(card)
    # The data's source and licence statement travel with the model.
    shutil.copyfile(DATA_README, model_dir / "DATA_SOURCE.md")


def measure_music(model_dir: Path, ds_dir: Path, report) -> dict:
    """The card's music on the test split (see ``model_card.measure_music``)."""
    return model_card.measure_music(model_dir, ds_dir, report, split="test",
                                    model="musgen's jsb-v1 model",
                                    dataset=f"{SOURCE}, prepared with seed {SEED}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("MUSGEN_DATA",
                                                     str(REPO.parent / "shared" / "data")))
    ap.add_argument("--work", default=str(REPO / "build" / "jsb_v1_model"))
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--check", action="store_true", help="compare with the shipped weights")
    ap.add_argument("--music-only", action="store_true",
                    help="keep the shipped weights; measure their music again")
    ap.add_argument("--report", default=None, metavar="DIR",
                    help="also write the full music report to DIR")
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
    if args.music_only:
        result = json.loads((PACKAGE_MODEL / "metrics.json").read_text())
        result["music"] = measure_music(PACKAGE_MODEL, ds_dir, args.report)
        config = json.loads((PACKAGE_MODEL / "config.json").read_text())
        (PACKAGE_MODEL / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True)
                                                    + "\n")
        write_card(PACKAGE_MODEL, config, result)
        print(f"music measured in {time.perf_counter() - t0:.0f} s")
        return 0
    model_dir = work / "model"
    training.train(ds_dir, model_dir, epochs=args.epochs, seed=SEED, max_minutes=None,
                   resume=(model_dir / "checkpoints").exists(), quiet=True, **TRAIN)
    config, tensors = load_model_dir(model_dir)
    # Provenance without this machine's paths.
    config["training"]["dataset"]["path"] = SOURCE
    config["training"]["dataset"]["name"] = "jsb_chorales/quarter"
    print(f"trained in {time.perf_counter() - t0:.0f} s")
    if args.check:
        return model_card.check_against_shipped(PACKAGE_MODEL, tensors)
    out = work / "package_model"
    if out.exists():
        shutil.rmtree(out)
    save_model_dir(out, config, tensors)
    result = evaluation.evaluate(out, ds_dir, split="test", baselines=True)
    for key in ("dataset", "model_dir"):  # paths of this machine stay out of the package
        result.pop(key, None)
    result["music"] = measure_music(out, ds_dir, args.report)
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
