"""``train``: fit the LSTM language model (or the seed paper's regression preset) with Keras,
checkpoint every epoch so that a killed run resumes bit for bit (``checkpoints``), and export
the best epoch as a model directory (``export``).

TensorFlow and Keras are imported only inside ``train``, so importing ``musgen.training`` (and
exporting a checkpoint) works without TensorFlow installed. The data order of epoch ``e``
depends only on ``(seed, e)``, so a resumed run replays exactly the batches the uninterrupted
run would have seen.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .._version import __version__
from ..errors import MusgenError
from .checkpoints import (
    BEST_NAME,
    CHECKPOINT_DIR,
    STATE_FORMAT,
    STATE_NAME,
    read_state,
    restore,
    save_npz,
    snapshot,
    write_state,
)
from .config import PRESETS, TrainConfig
from .distributed import DistributedLoop, make_strategy
from .export import export
from .model import build_keras_model, model_section, tensor_name
from .progress import epoch_bar_callback, losses_text
from .sizing import size_model
from .windows import epoch_windows, paper_normalization, paper_windows

__all__ = ["train"]


def _dataset_provenance(dataset, key_normalize: bool = False) -> dict:
    info = dict(getattr(dataset, "info", {}) or {})
    path = getattr(dataset, "path", None)
    out = {"path": str(path) if path is not None else None,
           "name": Path(path).name if path is not None else None,
           "seed": info.get("seed"),
           "splits": info.get("splits"),
           "format_version": info.get("format_version")}
    counts = getattr(dataset, "key_counts", None)
    keys = counts("train", normalized=key_normalize) if counts is not None else {}
    if keys:  # codec version 2: the Key conditions the model learns from (generation's key plan)
        out["keys"] = keys
    profile = getattr(dataset, "rest_profile", None)
    rests = profile("train") if profile is not None else {}
    if rests:  # how the corpus rests: generate's max_rest="auto" keeps to it
        out["rests"] = rests
    return out


def _run_config(ckpt_dir: Path, *, resume: bool, preset: str, overrides: dict, seed: int,
                max_minutes, epochs) -> tuple[TrainConfig, dict | None]:
    """The run's hyper-parameters and, when resuming, its saved state (whose settings win)."""
    if resume:
        if not (ckpt_dir / STATE_NAME).exists():
            raise MusgenError(f"resume: no checkpoint to resume in {ckpt_dir} (no {STATE_NAME}); "
                              "train without resume to start a fresh run")
        state = read_state(ckpt_dir)
        cfg = TrainConfig(**state["train_config"])
        if epochs is not None:
            cfg.epochs = int(epochs)
    else:
        if preset not in PRESETS:
            raise ValueError(f"preset={preset!r}: expected one of {sorted(PRESETS)}")
        base = asdict(TrainConfig())
        base.update(PRESETS[preset])
        base["preset"] = preset
        base.update({k: v for k, v in overrides.items() if v is not None})
        if epochs is not None:
            base["epochs"] = epochs
        base["seed"] = int(seed)
        if max_minutes != "preset":
            base["max_minutes"] = max_minutes
        cfg = TrainConfig(**base)
        state = None
    if cfg.stride is None or cfg.stride <= 0:
        cfg.stride = cfg.window
    _check_config(cfg)
    return cfg, state


def _check_config(cfg: TrainConfig) -> None:
    """Every hyper-parameter in its range before any work (a negative learning rate or a
    one-token window trains without an error but learns nothing)."""
    for name in ("epochs", "batch_size", "window", "stride", "units", "layers", "patience"):
        value = getattr(cfg, name)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name}={value!r}: expected a positive integer")
    if cfg.window < 2:
        raise ValueError(f"window={cfg.window!r}: expected at least 2 tokens (an LSTM window "
                         "learns from a sequence)")
    if cfg.preset != "paper" and int(cfg.embedding_dim) <= 0:
        raise ValueError(f"embedding_dim={cfg.embedding_dim!r}: expected a positive integer")
    if not 0.0 <= float(cfg.dropout) < 1.0:
        raise ValueError(f"dropout={cfg.dropout!r}: expected a number in [0, 1)")
    # 0 is allowed here (it freezes the weights, which tests of the stopping rules use); the
    # command line asks for > 0.
    if not (math.isfinite(float(cfg.learning_rate)) and float(cfg.learning_rate) >= 0):
        raise ValueError(f"learning_rate={cfg.learning_rate!r}: expected a finite number >= 0")
    if not (math.isfinite(float(cfg.weight_decay)) and float(cfg.weight_decay) >= 0):
        raise ValueError(f"weight_decay={cfg.weight_decay!r}: expected a finite number >= 0")
    if not 0 <= int(cfg.transpose) <= 127:
        raise ValueError(f"transpose={cfg.transpose!r}: expected 0 to 127 semitones")
    if cfg.key_normalize and int(cfg.transpose):
        raise ValueError("key_normalize and transpose: give one (key normalization moves every "
                         "piece to C major or A minor; transposition moves them at random)")
    vbs = cfg.validation_batch_size
    if vbs is not None and (not isinstance(vbs, (int, np.integer)) or isinstance(vbs, bool)
                            or vbs <= 0):
        raise ValueError(f"validation_batch_size={vbs!r}: expected a positive integer or None")


#: The settings ``_fit_to_corpus`` chooses when they are left unset.
SIZED = ("layers", "units", "embedding_dim", "batch_size", "dropout")


def _train_tokens(dataset) -> int:
    return int(sum(len(dataset.piece_tokens(int(i))) for i in dataset.split_indices("train")))


def _fit_to_corpus(cfg: TrainConfig, dataset, overrides: dict) -> None:
    """Size a default-preset model to the corpus and the time budget (``sizing``) for the
    settings the caller left unset; explicit settings always win, and the others follow from
    them (dropout from the parameters per token of the architecture actually trained)."""
    unset = [k for k in SIZED if overrides.get(k) is None]
    if cfg.preset != "default" or not unset:
        return
    tokens = _train_tokens(dataset)
    given = {k: getattr(cfg, k) for k in SIZED if k not in unset and k != "dropout"}
    sized = size_model(tokens, int(dataset.codec.vocab_size), cfg.max_minutes,
                       window=cfg.window, stride=cfg.stride, **given)
    for key in unset:
        setattr(cfg, key, sized[key])
    cfg.sizing = {"sized": unset, "train_tokens": tokens, "parameters": sized["parameters"],
                  "budget_steps": sized["budget_steps"], "budget_epochs": sized["budget_epochs"],
                  "rule": sized["reason"], "chosen": {k: getattr(cfg, k) for k in SIZED}}


def sizing_line(cfg: TrainConfig) -> str | None:
    """The training log's line on how the model was sized, or None."""
    s = cfg.sizing
    if not s:
        return None
    chosen = ", ".join(f"{k} {s['chosen'][k]:g}" for k in SIZED if k in s["sized"])
    return (f"model sized to the corpus: {chosen} ({s['train_tokens']} training tokens, "
            f"{s['parameters'] / 1e6:.2f} M parameters; "
            + ("no time budget" if s["budget_steps"] is None else
               f"the budget affords ~{s['budget_steps']} steps") + "; set "
            + "/".join(f"--{k.replace('_', '-')}" for k in s["sized"]) + " to choose)")


def _start_weights(init_from, cfg: TrainConfig, codec) -> tuple:
    """The tensors of the model a warm start begins from, and its provenance; checked against
    this run (same codec, same architecture) before TensorFlow is imported."""
    from ..modeldir import load_model_dir
    from ..modelzoo import resolve_model

    path = resolve_model(init_from)
    config, tensors = load_model_dir(path)
    model = config["model"]
    if config.get("codec") != codec.to_dict():
        raise MusgenError(f"init_from {path}: its codec is not the dataset's; a warm start "
                          "needs the same vocabulary")
    want = {"kind": "lstm_lm", "embedding_dim": cfg.embedding_dim,
            "lstm_units": [cfg.units] * cfg.layers}
    got = {k: model.get(k) for k in want}
    if cfg.preset == "paper" or got != want:
        raise MusgenError(f"init_from {path}: its architecture {got} is not this run's {want}; "
                          "give --units/--layers/--embedding-dim of that model")
    training = config.get("training") or {}
    source = {"weights_sha256": config.get("weights_sha256"),
              "epochs_run": training.get("epochs_run"), "valid_loss": training.get("valid_loss"),
              "hyperparameters": training.get("hyperparameters")}
    return tensors, source


def _check_splits(dataset) -> None:
    """Training needs pieces in train and valid; say so before TensorFlow is even imported."""
    split_indices = getattr(dataset, "split_indices", None)
    if split_indices is None:
        return
    for split in ("train", "valid"):
        if len(split_indices(split)) == 0:
            raise MusgenError(f"dataset {getattr(dataset, 'path', '?')}: the {split} split has "
                              "no pieces; training needs both train and valid (put files under "
                              "train/ and valid/ folders, or prepare with a seeded split)")


def _check_tensorboard(tensorboard) -> None:
    if tensorboard:
        from importlib.util import find_spec

        if find_spec("tensorboard") is None:  # fail now, not after the first epoch
            raise MusgenError(f"tensorboard={str(tensorboard)!r}: TensorBoard logs need the "
                              "'tensorboard' package (pip install tensorboard)")


class _Run:
    """One training run: the model and optimizer, the data of each epoch, the counters that
    decide learning-rate drops and early stopping, and the checkpoint written after each
    epoch (everything a resumed run needs is in ``state.json``)."""

    def __init__(self, dataset, cfg: TrainConfig, state: dict | None, ckpt_dir: Path, *,
                 strategy, quiet: bool, tensorboard):
        import keras

        self.dataset, self.cfg, self.quiet = dataset, cfg, quiet
        self.ckpt_dir = ckpt_dir
        self.strat, self.chief = make_strategy(strategy)
        self.codec = dataset.codec
        self.paper = cfg.preset == "paper"
        if self.paper:
            self.norm = ((np.asarray(state["model"]["feature_mean"], np.float32),
                          np.asarray(state["model"]["feature_std"], np.float32))
                         if state is not None else paper_normalization(dataset))
            self.msec = model_section(cfg, None, self.norm)
        else:
            self.norm = None
            self.msec = model_section(cfg, self.codec.vocab_size)
        self._build(keras)
        self.distributed = (self.strat.num_replicas_in_sync > 1
                            or strategy not in (None, "default"))
        self.valid = self.data("valid", 0, False)
        self.dist = (DistributedLoop(self.model, self.optimizer, self.strat, paper=self.paper,
                                     pad_id=None if self.paper else int(self.codec.pad_id),
                                     batch_size=cfg.batch_size)
                     if self.distributed else None)
        self.callbacks = ([keras.callbacks.TensorBoard(log_dir=str(tensorboard))]
                          if tensorboard else [])
        self.run_info = {"dataset": _dataset_provenance(dataset, cfg.key_normalize),
                         "seed": cfg.seed, "preset": cfg.preset}
        self._start(state)

    def _build(self, keras) -> None:
        cfg = self.cfg
        with self.strat.scope():
            self.model = build_keras_model(self.msec, seed=cfg.seed)
            # Decoupled weight decay (Loshchilov & Hutter): Keras' Adam with weight_decay is AdamW.
            self.optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate,
                                                   clipnorm=cfg.clipnorm,
                                                   weight_decay=cfg.weight_decay or None)
            # No XLA: slower on CPUs (bench/bench_train.py), and Keras disables it under the op
            # determinism a bit-identical resume needs.
            jit = False
            if self.paper:
                self.model.compile(optimizer=self.optimizer,
                                   loss=keras.losses.MeanSquaredError(), weighted_metrics=[],
                                   jit_compile=jit)
            else:
                self.model.compile(optimizer=self.optimizer,
                                   loss=keras.losses.SparseCategoricalCrossentropy(
                                       from_logits=True, ignore_class=int(self.codec.pad_id)),
                                   jit_compile=jit)
            self.optimizer.build(self.model.trainable_variables)

    def warm_start(self, tensors: dict, source: dict) -> None:
        """Begin a fresh run from the weights of another model (``train(init_from=...)``)."""
        for var in self.model.weights:
            name = tensor_name(var.path)
            if name is None:
                continue
            value = tensors.get(name)
            if value is None or tuple(value.shape) != tuple(var.shape):
                raise MusgenError(f"init_from: tensor {name} is missing or has another shape "
                                  f"than this run's {tuple(var.shape)}")
            var.assign(value)
        self.run_info["init_from"] = source

    def _start(self, state: dict | None) -> None:
        """Fresh counters, or the ones saved after the last complete epoch (weights too)."""
        self.history: list = []
        self.epoch = 0
        self.best_val, self.best_epoch = math.inf, -1
        self.plateau_wait = self.stop_wait = 0
        self.elapsed = 0.0
        self.stop_reason = state.get("stop_reason") if state else None
        if state is not None:
            last = self.ckpt_dir / state["last_checkpoint"]
            restore(self.model, self.optimizer, last)
            self.history = state["history"]
            self.epoch = state["epoch"] + 1
            self.best_val, self.best_epoch = state["best_valid_loss"], state["best_epoch"]
            self.plateau_wait, self.stop_wait = state["plateau_wait"], state["stop_wait"]
            self.elapsed = state["elapsed_seconds"]
            if state.get("stopped"):
                self.epoch = self.cfg.epochs  # the run had finished: only re-export
            self.say(f"resuming after epoch {state['epoch'] + 1} from {last}")
        elif self.chief:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        if not self.chief:  # workers other than the chief keep their checkpoints apart
            self.ckpt_dir = (Path(os.environ.get("TMPDIR", "/tmp"))
                             / f"musgen-worker-{os.getpid()}")
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text)

    def data(self, split: str, epoch: int, shuffle: bool):
        """(inputs, targets, weights or None) of one epoch, in its fixed order."""
        cfg = self.cfg
        if self.paper:
            return paper_windows(self.dataset, split, window=cfg.window, stride=cfg.stride,
                                 seed=cfg.seed, epoch=epoch, mean=self.norm[0],
                                 std=self.norm[1], shuffle=shuffle)
        x, y = epoch_windows(self.dataset, split, window=cfg.window, stride=cfg.stride,
                             seed=cfg.seed, epoch=epoch, shuffle=shuffle,
                             transpose=cfg.transpose if split == "train" else 0,
                             tempo_shift=cfg.tempo_shift if split == "train" else 0,
                             header_prefix=cfg.header_prefix,
                             key_normalize=bool(cfg.key_normalize))
        return x, y, None

    # ------------------------------------------------------------------ the epoch loop
    def fit(self) -> None:
        cfg = self.cfg
        last_duration = 0.0
        while self.epoch < cfg.epochs:
            if (cfg.max_minutes is not None and self.epoch > 0
                    and self.elapsed + last_duration > cfg.max_minutes * 60):
                self.stop_reason = f"time budget of {cfg.max_minutes} minutes"
                break
            t0 = time.perf_counter()
            train_loss, val_loss = self.fit_epoch(*self.data("train", self.epoch, True))
            last_duration = time.perf_counter() - t0
            self.elapsed += last_duration
            improved, done = self.update_counters(train_loss, val_loss, last_duration)
            if self.chief:
                self.save_checkpoint(improved, done)
            self.epoch += 1
            if done:
                break

    def fit_epoch(self, x, y, w) -> tuple[float, float]:
        """Train one epoch on (x, y, w) and validate -> (train loss, validation loss)."""
        cfg = self.cfg
        if self.distributed:
            train_loss = self.dist.run_epoch(x, y, w, train=True)
            val_loss = self.dist.run_epoch(*self.valid, train=False)
            if not self.quiet:
                print(f"Epoch {self.epoch + 1}/{cfg.epochs}: {losses_text(train_loss, val_loss)}",
                      file=sys.stderr)
            return train_loss, val_loss
        steps = -(-len(x) // cfg.batch_size)
        bar = epoch_bar_callback(self.epoch, cfg.epochs, steps, quiet=self.quiet)
        valid = self.valid if self.valid[2] is not None else self.valid[:2]
        fit = self.model.fit(x, y, sample_weight=w, batch_size=cfg.batch_size,
                             epochs=self.epoch + 1, initial_epoch=self.epoch, shuffle=False,
                             validation_data=valid,
                             validation_batch_size=cfg.validation_batch_size or cfg.batch_size,
                             verbose=0, callbacks=[bar, *self.callbacks])
        return float(fit.history["loss"][-1]), float(fit.history["val_loss"][-1])

    def update_counters(self, train_loss: float, val_loss: float, seconds: float):
        """Record the epoch; reduce the learning rate on a plateau; decide early stopping.
        Returns (improved, done)."""
        cfg = self.cfg
        lr = float(self.optimizer.learning_rate.numpy())
        self.history.append({"epoch": self.epoch + 1, "loss": train_loss, "val_loss": val_loss,
                             "learning_rate": lr, "seconds": round(seconds, 3)})
        improved = val_loss < self.best_val
        if improved:
            self.best_val, self.best_epoch = val_loss, self.epoch
            self.plateau_wait = self.stop_wait = 0
        else:
            self.plateau_wait += 1
            self.stop_wait += 1
            if self.plateau_wait >= cfg.lr_patience and lr > cfg.min_learning_rate:
                # Reduce on plateau: the counter lives in state.json so a resume continues it.
                self.optimizer.learning_rate.assign(max(lr * cfg.lr_factor,
                                                        cfg.min_learning_rate))
                self.plateau_wait = 0
                self.say(f"learning rate -> {float(self.optimizer.learning_rate.numpy()):.3g}")
        done = self.stop_wait >= cfg.patience
        if done:
            self.stop_reason = f"early stopping: no improvement for {cfg.patience} epochs"
        return improved, done

    def save_checkpoint(self, improved: bool, done: bool) -> None:
        """This epoch's checkpoint (and best.npz), then state.json naming it, then the older
        per-epoch checkpoints are dropped: a kill at any point leaves a complete checkpoint."""
        name = f"epoch-{self.epoch + 1:04d}.npz"
        snap = snapshot(self.model, self.optimizer)
        save_npz(self.ckpt_dir / name, snap)
        if improved:
            save_npz(self.ckpt_dir / BEST_NAME, snap)
        write_state(self.ckpt_dir, {
            "format": STATE_FORMAT, "musgen_version": __version__,
            "train_config": asdict(self.cfg), "model": self.msec,
            "codec": self.codec.to_dict(), "run": self.run_info, "epoch": self.epoch,
            "last_checkpoint": name, "best_epoch": self.best_epoch,
            "best_valid_loss": self.best_val, "plateau_wait": self.plateau_wait,
            "stop_wait": self.stop_wait, "elapsed_seconds": self.elapsed,
            "history": self.history, "stopped": done, "stop_reason": self.stop_reason,
        })
        for old in self.ckpt_dir.glob("epoch-*.npz"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def finish(self) -> None:
        """Record why the run stopped (state.json of a complete run)."""
        if not (self.ckpt_dir / STATE_NAME).exists():
            raise MusgenError(f"{self.ckpt_dir}: no epoch was trained (epochs={self.cfg.epochs})")
        if self.stop_reason:
            self.say(f"stopped: {self.stop_reason}")
        state = read_state(self.ckpt_dir)
        state["stop_reason"] = self.stop_reason
        write_state(self.ckpt_dir, state)


def train(dataset, output, *, preset: str = "default", epochs: int | None = None,
          batch_size: int | None = None, window: int | None = None, stride: int | None = None,
          units: int | None = None, layers: int | None = None,
          embedding_dim: int | None = None, dropout: float | None = None,
          learning_rate: float | None = None, seed: int = 0, resume: bool = False,
          patience: int | None = None, tensorboard=None, strategy=None, quiet: bool = False,
          max_minutes: float | None | str = "preset", transpose: int | None = None,
          dense_units: list | None = None, tempo_shift: int | None = None,
          validation_batch_size: int | None = None,
          weight_decay: float | None = None, init_from=None,
          header_prefix: bool | None = None, key_normalize: bool | None = None) -> Path:
    """Train a model on ``dataset`` and export the best epoch to the model directory ``output``.

    Parameters
    ----------
    dataset : musgen.data.Dataset or str or path
        A prepared dataset (``musgen prepare``) or its folder.
    output : str or path
        Model directory; checkpoints go to ``output/checkpoints``.
    preset : "default" or "paper"
        ``default``: token LSTM language model (embedding -> LSTM stack -> dense head, sparse
        cross-entropy, PAD targets ignored). ``paper``: the seed paper's regression model
        (LSTM stack -> dense layers, MSE on normalized pitch/velocity/time-delta).
    resume : bool
        Continue from the last complete checkpoint in ``output/checkpoints`` (same data order;
        bit-identical to an uninterrupted run on CPU). The saved hyper-parameters win. Without
        a checkpoint there, an error (never a silent fresh run).
    max_minutes : float or None
        Time budget: no new epoch starts once the time so far plus the last epoch's duration
        would exceed it. ``None`` = no budget.
    validation_batch_size : int or None
        Windows per validation batch (default 512; validation is a forward pass only).
    weight_decay : float or None
        Decoupled weight decay (AdamW) per step, scaled by the learning rate (default 0).
    init_from : model directory (or shipped name) or None
        Warm start: a fresh run starts from this model's weights instead of random ones (same
        codec and architecture; a new optimizer). Used to continue a model with other
        settings, e.g. smaller batches once the large ones stop paying. A resumed run ignores
        it (its checkpoint holds the weights).
    header_prefix : bool or None
        Windows that start inside a piece begin with the piece's header of conditions (key,
        style, density, instruments, tempo, meter) as context without loss, so the model learns
        to follow them past a piece's first window. Default: on for a codec-version-2 dataset
        with the default preset (``musgen.data.pipeline``); version 1 has no header.
    key_normalize : bool or None
        Codec version 2: every piece, of every split, is moved to C major or A minor (notes and
        Key condition), so the model learns one key per mode; ``generate(key=...)`` reaches
        the others by transposition (``musgen.keyplan``), and ``musgen evaluate`` scores the
        pieces moved the same way. Excludes ``transpose``. Default: off.

    Other settings left as None take the preset's value (``TrainConfig``: learning rate 4e-3,
    ...; chosen by measurement, see ``bench/bench_train.py``), except that the default preset
    sizes ``units``, ``layers``, ``embedding_dim``, ``batch_size`` and ``dropout``, when left
    unset, to the training tokens and the time budget (``musgen.training.sizing``; the choice
    is printed and recorded as ``sizing`` in the exported config's hyper-parameters).
    strategy : None, "default", "mirrored", "multiworker" or a tf.distribute.Strategy
        ``multiworker`` reads ``TF_CONFIG``; only the chief writes checkpoints and exports.
    quiet : bool
        No progress bar (one bar per epoch on standard error, ``Epoch k/N``) and no messages.

    Returns
    -------
    Path
        The model directory.
    """
    if isinstance(dataset, (str, os.PathLike)):
        from ..data import Dataset

        dataset = Dataset.open(dataset)
    output = Path(output)
    ckpt_dir = output / CHECKPOINT_DIR
    overrides = {"batch_size": batch_size, "window": window, "stride": stride, "units": units,
                 "layers": layers, "embedding_dim": embedding_dim, "dropout": dropout,
                 "learning_rate": learning_rate, "patience": patience, "transpose": transpose,
                 "dense_units": dense_units, "tempo_shift": tempo_shift,
                 "validation_batch_size": validation_batch_size, "weight_decay": weight_decay,
                 "header_prefix": header_prefix, "key_normalize": key_normalize}
    cfg, state = _run_config(ckpt_dir, resume=resume, preset=preset, overrides=overrides,
                             seed=seed, max_minutes=max_minutes, epochs=epochs)
    _check_splits(dataset)
    start_weights = None
    if state is None:
        if header_prefix is None:
            cfg.header_prefix = cfg.preset != "paper" and dataset.codec.version == 2
        if cfg.key_normalize and dataset.codec.version != 2:
            raise ValueError(f"key_normalize=True: the dataset is codec version "
                             f"{dataset.codec.version}, whose pieces have no key condition "
                             "(version 2 has)")
        if header_prefix and dataset.codec.version != 2:
            raise ValueError(f"header_prefix=True: the dataset is codec version "
                             f"{dataset.codec.version}, whose pieces have no header of "
                             "conditions (version 2 has)")
        _fit_to_corpus(cfg, dataset, overrides)
        _check_config(cfg)
        if init_from is not None:
            start_weights = _start_weights(init_from, cfg, dataset.codec)
    _check_tensorboard(tensorboard)
    # TensorFlow's C++ log lines (oneDNN notices; a harmless tf.data "unknown attribute" error
    # logged every epoch by TF 2.21) would drown the progress bar. Python exceptions still
    # propagate; a user who sets the variable keeps control.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    run = _Run(dataset, cfg, state, ckpt_dir, strategy=strategy, quiet=quiet,
               tensorboard=tensorboard)
    if start_weights is not None:
        run.warm_start(*start_weights)
    if state is None and sizing_line(cfg):
        run.say(sizing_line(cfg))
    run.fit()
    if not run.chief:
        shutil.rmtree(run.ckpt_dir, ignore_errors=True)
        return output
    run.finish()
    export(ckpt_dir, output)
    return output
