"""Reproduce the default model shipped inside the package (``python/musgen/models/default``): an
LSTM on the JSB Chorales in codec version 2, with its conditions (key, style, density, tempo,
meter) and its generation defaults.

Data: the JSB Chorales in the standard Boulanger-Lewandowski (2012) split (229/76/77 pieces),
quarter-note grid, from ``corpora/jsb_chorales/quarter`` of the data folder (``--data`` or
``MUSGEN_DATA``). The music is J. S. Bach's (public domain); the MIDI rendering's source
repository states no licence (see ``README_source.md`` beside the data). Its pieces are stored
in C major and C minor: ``generate(key="D minor")`` is reached by transposition
(``musgen.keyplan``).

Steps, all seeded: ``musgen prepare`` (codec version 2, style "chorale", seed 0) -> ``musgen
train`` with ``TRAIN`` for ``EPOCHS`` epochs on one thread (no time budget, so the result does
not depend on the machine's speed; one thread, so not on its core count) -> the generation
defaults ``GENERATION`` (chosen on the validation split's music, see ``bench/results/
default_model.md``) -> ``musgen evaluate`` on the test split with the n-gram baseline, and
``musgen evaluate --music`` (200 pieces of "64 beats" at temperature 1, seed 0) on the test
split (the card) and on the validation split (what the settings were chosen on) -> the model
directory with ``metrics.json`` and ``MODEL_CARD.md`` in the package.

    python tools/train_default_model.py --data ../shared/data [--work build/default_model]
        [--trained MODEL_DIR] [--report DIR] [--check]

``--trained`` packages a model directory trained with these settings instead of training one
(the shipped weights come from such a run); ``--check`` retrains and compares with the shipped
weights; ``--report DIR`` also writes the full music report (``bench/results/
music_default_model`` is the committed one).
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
from model_card import copies_line, metrics_table, music_command, music_rows

REPO = Path(__file__).resolve().parent.parent
PACKAGE_MODEL = REPO / "python" / "musgen" / "models" / "default"
PREVIOUS_MODEL = REPO / "python" / "musgen" / "models" / "jsb-v1"
SOURCE = "corpora/jsb_chorales/quarter"
DATA_README = REPO / "tests" / "data" / "corpus_small" / "README_source.md"
SEED = 0
#: ``musgen prepare`` settings: codec version 2, the corpus labelled with its style.
PREPARE = {"seed": SEED, "codec_version": 2, "labels": "chorale"}
#: The training recipe (``musgen train`` options). The corpus is small (117k training tokens):
#: a 2 x 384 LSTM with dropout 0.4 and decoupled weight decay, 256-token windows (about 20
#: beats of four voices) prefixed with the piece's conditions, the learning rate halved on
#: plateaus. Chosen against a 2 x 256 LSTM with dropout 0.3 (validation loss 0.908 against
#: this one's, see bench/results/default_model.md).
TRAIN = {"units": 384, "layers": 2, "embedding_dim": 96, "dropout": 0.4, "weight_decay": 0.05,
         "window": 256, "stride": 128, "batch_size": 32, "learning_rate": 2e-3, "patience": 12,
         "header_prefix": True}
EPOCHS = 73
#: What ``generate`` does with this model unless told otherwise (config.json "generation"):
#: no rests (the chorales almost never rest: ``musgen train`` records it) and at most four
#: notes at once (Bach's four voices).
GENERATION = {"max_voices": 4}
#: Features quoted in the card's table (all are in metrics.json).
CARD_FEATURES = ("key_normalized_pitch_class_histogram", "scale_consistency",
                 "pitch_class_entropy", "pitch_range", "polyphony", "note_length_histogram",
                 "ioi_histogram", "voice_count_histogram", "chord_fit",
                 "parallel_fifths_octaves", "restrikes", "empty_beat_rate", "longest_hold",
                 "length_beats")


def _music_section(music: dict, previous: dict | None, report: str) -> str:
    f, b = music["features"], music["baselines"]
    rows = music_rows(music, previous, CARD_FEATURES, previous_label="jsb-v1")
    early = f["ended_early"]["mean"]
    split = music["settings"]["split"]
    return f"""## Music (`{music_command(split)}`)

{music['sets']['generated']['n_pieces']} generated pieces against the
{music['sets']['reference']['n_pieces']} {split} pieces: mean per piece and overlap area (OA, 1 is
best) of the Yang & Lerch (2018) set comparison; "jsb-v1" is the previous default model (codec
version 1) measured the same way, the n-gram and the order-3 Markov chain are Kneser-Ney
baselines sampled through the same grammar, rules and settings, "train pieces" are training
pieces (the ceiling). Every piece runs to the asked length and closes at a bar line with every
note released (the generation rules), with this model's generation defaults.

{chr(10).join(rows)}

- Ended before the asked 64 beats: {early:.0%} of the model's pieces
  ({b['ngram']['features']['ended_early']['mean']:.0%} of the n-gram's).
{copies_line(music)}

Every figure is in `metrics.json` (`{report}`).
"""


def _generation_line(config: dict) -> str:
    gen = config.get("generation") or {}
    parts = [f"`{k}={v:g}`" for k, v in sorted(gen.items())]
    return ", ".join(parts) if parts else "none"


def write_card(model_dir: Path, config: dict, result: dict) -> None:
    m = config["model"]
    t = config["training"]
    hp = t["hyperparameters"]
    splits = t["dataset"]["splits"]
    # most common first, whatever order the config was read back in (config.json sorts keys)
    keys = dict(sorted((t["dataset"].get("keys") or {}).items(), key=lambda kv: (-kv[1], kv[0])))
    previous = result.get("previous_music")
    music = _music_section(result["music"], previous, "music") if result.get("music") else ""
    valid = (_music_section(result["music_valid"], result.get("previous_music_valid"),
                            "music_valid")
             if result.get("music_valid") else "")
    card = f"""# musgen default model: JSB Chorales LSTM (codec version 2)

The model `musgen generate` and `musgen.generate()` use when no model is given.

- **Data**: the JSB Chorales (J. S. Bach, public domain), standard Boulanger-Lewandowski (2012)
  split: {splits['train']['pieces']} train / {splits['valid']['pieces']} valid /
  {splits['test']['pieces']} test pieces, rendered to MIDI on a quarter-note grid (480 ticks per
  beat, 100 BPM, velocity 80), stored in C major and C minor (key conditions of the training
  pieces, by key finding: {', '.join(f'{k} {v}' for k, v in keys.items())}). The MIDI
  rendering's source repository states no licence; the music itself is in the public domain
  (`DATA_SOURCE.md`: the source's own description).
- **Representation**: codec version 2 ({config['codec'].get('steps_per_beat')} steps per
  beat): a header of conditions (Program, Key, Style `chorale`, Density, Tempo, time
  signature), then Bar / TimeShift / Pitch / Velocity / Duration tokens; vocabulary
  {m['vocab_size']}.
- **Conditions**: `generate(key="D minor")` generates in C minor and transposes (a key the
  model hardly saw; `musgen.keyplan`), `bpm=`, `density=`, `style="chorale"`.
- **Architecture**: embedding {m['embedding_dim']} -> LSTM {' x '.join(map(str, m['lstm_units']))}
  (dropout {m['dropout']}) -> dense head over the vocabulary; float32 weights
  (`weights.safetensors`, Keras layout).
- **Training**: `musgen train` with the settings of `TRAIN` in the recipe: {t['epochs_run']}
  epochs (best epoch {t['best_epoch']}), window {hp['window']} (prefixed with the piece's
  conditions), stride {hp['stride']}, batch {hp['batch_size']}, Adam lr {hp['learning_rate']}
  halved on plateaus, weight decay {hp.get('weight_decay', 0)}, seed {t['seed']}, one thread;
  validation loss {t['valid_loss']:.4f} nats/token.
- **Generation defaults** (`config.json` "generation", used where `generate` is left at
  "auto"): {_generation_line(config)}: no rest longer than the corpus keeps to (its pieces
  almost never rest) and at most four notes at once.

## Test-split metrics (`musgen evaluate MODEL DATASET --split test`)

{metrics_table(result, config)}

NLL in nats; per note = total NLL over the test tokens / notes. These numbers are reproduced by
the test suite (`tests/test_default_model.py`) from `metrics.json`.

{music}
{valid.replace("## Music", "## Music on the validation split (what the settings were chosen on)")
 if valid else ""}
## Retrain

```bash
pip install ".[train]"
python tools/train_default_model.py --data PATH/TO/data   # the folder holding corpora/
```

It prepares the dataset (seed {SEED}), trains for {EPOCHS} epochs with seed {SEED} on one
thread, and writes this folder. `--check` retrains and compares with the shipped weights
instead.
"""
    (model_dir / "MODEL_CARD.md").write_text(card)
    # The data's source and licence statement travel with the model.
    shutil.copyfile(DATA_README, model_dir / "DATA_SOURCE.md")


def measure_music(model_dir: Path, ds_dir: Path, report, split: str, name: str) -> dict:
    """The card's music on ``split`` (see ``model_card.measure_music``)."""
    return model_card.measure_music(model_dir, ds_dir, report, split=split, model=name,
                                    dataset=f"{SOURCE}, codec version 2, seed {SEED}")


def _previous_music(ds_dir_v1: Path, split: str) -> dict | None:
    """The jsb-v1 model's music on ``split`` (its own version-1 dataset of the same pieces)."""
    if not (PREVIOUS_MODEL / "config.json").is_file():
        return None
    return measure_music(PREVIOUS_MODEL, ds_dir_v1, None, split, "musgen's jsb-v1 model")


def _with_provenance(config: dict, ds) -> dict:
    """Provenance without this machine's paths, the training split's key counts and rests
    (recorded by ``musgen train`` since it has them; added here for a run from before), and
    the generation defaults."""
    d = config["training"]["dataset"]
    d["path"], d["name"] = SOURCE, "jsb_chorales/quarter"
    d.setdefault("keys", ds.key_counts())
    d.setdefault("rests", ds.rest_profile())
    config["generation"] = {"max_rest": float(d["rests"]["longest_p95_beats"]), **GENERATION}
    return config


def package(model_dir: Path, ds_dir: Path, ds_dir_v1: Path, out: Path, report) -> Path:
    """Evaluate a trained model and write it, with its card, to ``out``."""
    from musgen import eval as evaluation
    from musgen.data import Dataset
    from musgen.modeldir import load_model_dir, save_model_dir

    config, tensors = load_model_dir(model_dir)
    config = _with_provenance(config, Dataset.open(ds_dir))
    if out.exists():
        shutil.rmtree(out)
    save_model_dir(out, config, tensors)
    result = evaluation.evaluate(out, ds_dir, split="test", baselines=True)
    for key in ("dataset", "model_dir"):  # paths of this machine stay out of the package
        result.pop(key, None)
    result["music"] = measure_music(out, ds_dir, report, "test", "musgen's default model")
    result["music_valid"] = measure_music(out, ds_dir, None, "valid", "musgen's default model")
    result["previous_music"] = _previous_music(ds_dir_v1, "test")
    result["previous_music_valid"] = _previous_music(ds_dir_v1, "valid")
    (out / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    write_card(out, config, result)
    print(evaluation.format_report(result))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("MUSGEN_DATA",
                                                     str(REPO.parent / "shared" / "data")))
    ap.add_argument("--work", default=str(REPO / "build" / "default_model"))
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--trained", default=None, metavar="MODEL_DIR",
                    help="package this model directory (trained with TRAIN) instead of training")
    ap.add_argument("--check", action="store_true", help="compare with the shipped weights")
    ap.add_argument("--report", default=None, metavar="DIR",
                    help="also write the full music report to DIR")
    args = ap.parse_args(argv)
    # One thread: the same arithmetic, in the same order, on any machine (TensorFlow reads
    # these when it starts).
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

    from musgen import data as ds_mod
    from musgen import training
    from musgen.modeldir import load_model_dir

    src = Path(args.data) / SOURCE
    if not src.is_dir():
        sys.exit(f"{src}: not found (pass --data, the folder holding corpora/)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ds_dir, ds_dir_v1 = work / "jsb", work / "jsb_v1"
    if not (ds_dir / "dataset.json").exists():
        ds_mod.prepare([src], ds_dir, quiet=True, **PREPARE)
    if not (ds_dir_v1 / "dataset.json").exists():  # the previous model's codec, same pieces
        ds_mod.prepare([src], ds_dir_v1, seed=SEED, quiet=True, codec_version=1)
    if args.trained:
        model_dir = Path(args.trained)
    else:
        model_dir = work / "model"
        training.train(ds_dir, model_dir, epochs=args.epochs, seed=SEED, max_minutes=None,
                       resume=(model_dir / "checkpoints").exists(), quiet=True, **TRAIN)
        print(f"trained in {time.perf_counter() - t0:.0f} s")
    if args.check:
        return model_card.check_against_shipped(PACKAGE_MODEL, load_model_dir(model_dir)[1])
    out = package(model_dir, ds_dir, ds_dir_v1, work / "package_model", args.report)
    if PACKAGE_MODEL.exists():
        shutil.rmtree(PACKAGE_MODEL)
    shutil.copytree(out, PACKAGE_MODEL)
    print(f"wrote {PACKAGE_MODEL.relative_to(REPO)} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
