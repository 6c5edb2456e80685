"""Train the LSTM language model (or the seed paper's regression preset) with Keras, with
checkpoints that resume a killed run bit for bit, and export the model directory.

TensorFlow and Keras are imported only inside the functions that need them, so importing
``musgen.training`` (and exporting a checkpoint) works without TensorFlow installed.

Checkpoint layout (``MODEL_DIR/checkpoints/``):

* ``epoch-NNNN.npz``: every Keras model variable (weights *and* dropout seed-generator state)
  and every optimizer variable (iteration, learning rate, Adam moments) after epoch NNNN,
  keyed ``model/NNN/<variable path>`` and ``optimizer/NNN/<variable path>``;
* ``best.npz``: a copy of the checkpoint with the lowest validation loss;
* ``state.json``: the run (hyper-parameters, model section, codec, dataset provenance), the
  last complete epoch, the history, and the learning-rate/early-stopping counters.

Every file is written to a temporary name and renamed, and ``state.json`` is written last, so
a run killed at any instant (SIGKILL included) leaves ``state.json`` pointing at a complete
checkpoint. The data order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run
replays exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ._version import __version__
from .dataset import piece_field
from .errors import ModelFormatError, MusgenError
from .modeldir import atomic_write_bytes, save_model_dir

__all__ = ["TrainConfig", "PRESETS", "train", "export", "epoch_windows", "paper_windows",
           "build_keras_model"]

CHECKPOINT_DIR = "checkpoints"
STATE_NAME = "state.json"
BEST_NAME = "best.npz"
STATE_FORMAT = "musgen.checkpoint"


@dataclass
class TrainConfig:
    """Hyper-parameters of a run; the defaults are the ``default`` preset.

    The default (2 x 256 LSTM, 128-token windows, 25-minute budget) reaches a good model on a
    chorale- or folk-sized corpus (10^5-10^6 tokens) on a 2-core CPU within 30 minutes.
    """

    preset: str = "default"
    epochs: int = 60
    batch_size: int = 32
    window: int = 128
    stride: int = 64
    units: int = 256
    layers: int = 2
    embedding_dim: int = 64
    dropout: float = 0.2
    learning_rate: float = 2e-3
    seed: int = 0
    patience: int = 6          # epochs without validation improvement before stopping
    lr_patience: int = 2       # epochs without improvement before halving the learning rate
    lr_factor: float = 0.5
    min_learning_rate: float = 1e-5
    max_minutes: float | None = 25.0
    transpose: int = 0         # random transposition of each piece by up to +-N semitones
    dense_units: list = field(default_factory=list)   # paper preset only
    clipnorm: float = 1.0


PRESETS: dict = {
    "default": {},
    # The seed paper: 2 stacked LSTMs returning sequences, dense layers, MSE on the per-note
    # float features (pitch, velocity, time delta), Adam, 30 epochs.
    "paper": {"epochs": 30, "units": 128, "layers": 2, "dense_units": [64], "window": 32,
              "stride": 16, "batch_size": 32, "dropout": 0.2, "learning_rate": 1e-3,
              "embedding_dim": 0, "transpose": 0},
}


# ----------------------------------------------------------------------------- data

def epoch_windows(dataset, split: str, *, window: int, stride: int, seed: int, epoch: int,
                  shuffle: bool = True, transpose: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """All windows of one epoch, in training order -> ``(inputs, targets)`` int32 ``[N, window]``.

    The batches of ``musgen.pipeline.numpy_batches`` concatenated (PAD-filled tails; the loss
    ignores PAD targets). Their order and transpositions depend only on ``(seed, epoch)``, so a
    resumed epoch sees exactly the data the uninterrupted run saw.
    """
    from .pipeline import numpy_batches

    xs, ys = [], []
    for x, y in numpy_batches(dataset, split, window=window, stride=stride, batch_size=4096,
                              shuffle=shuffle, seed=seed, epoch=epoch, transpose=transpose):
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _paper_piece(dataset, i) -> np.ndarray:
    """The ``[n_notes, 3]`` float32 paper features (pitch, velocity, seconds since the previous
    onset) of piece ``i``."""
    start = int(np.asarray(dataset.piece_note_offsets)[int(i)])
    n = int(piece_field(dataset.pieces[int(i)], "n_notes"))
    return np.asarray(dataset.paper_features[start:start + n], dtype=np.float32)


def paper_windows(dataset, split: str, *, window: int, stride: int, seed: int, epoch: int,
                  mean: np.ndarray, std: np.ndarray, shuffle: bool = True):
    """Windows of normalized paper features -> ``(inputs, targets, weights)``.

    ``inputs``/``targets`` float32 ``[N, window, 3]`` (targets are the next note's features);
    ``weights`` float32 ``[N, window]`` is 0 on padding. Order depends only on (seed, epoch).
    """
    rng = np.random.default_rng([int(seed), int(epoch)])
    xs, ys, ws = [], [], []
    for i in dataset.split_indices(split):
        f = (_paper_piece(dataset, i) - mean) / std
        n = len(f)
        if n < 2:
            continue
        for s in range(0, n - 1, stride):
            w = f[s:s + window + 1]
            m = len(w) - 1
            x = np.zeros((window, 3), np.float32)
            y = np.zeros((window, 3), np.float32)
            wt = np.zeros(window, np.float32)
            x[:m], y[:m], wt[:m] = w[:-1], w[1:], 1.0
            xs.append(x)
            ys.append(y)
            ws.append(wt)
            if s + window + 1 >= n:
                break
    if not xs:
        raise MusgenError(f"dataset {getattr(dataset, 'path', '?')}: split {split!r} has no "
                          "piece with at least 2 notes")
    x, y, w = np.stack(xs), np.stack(ys), np.stack(ws)
    if shuffle:
        order = rng.permutation(len(x))
        x, y, w = x[order], y[order], w[order]
    return x, y, w


def paper_normalization(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation of the train split's paper features."""
    feats = [_paper_piece(dataset, i) for i in dataset.split_indices("train")]
    allf = np.concatenate(feats) if feats else np.zeros((0, 3), np.float32)
    if len(allf) < 2:
        raise MusgenError("paper preset: the train split has fewer than 2 notes")
    mean = allf.mean(axis=0).astype(np.float32)
    std = allf.std(axis=0).astype(np.float32)
    std[std < 1e-6] = 1.0  # a constant feature (e.g. fixed velocity) stays as is
    return mean, std


# ----------------------------------------------------------------------------- model
def model_section(cfg: TrainConfig, vocab_size: int | None, norm=None) -> dict:
    """The ``config["model"]`` section of the model directory for this run."""
    units = [int(cfg.units)] * int(cfg.layers)
    if cfg.preset == "paper":
        mean, std = norm
        return {"kind": "paper", "n_features": 3, "lstm_units": units,
                "dense_units": [int(d) for d in cfg.dense_units], "dense_activation": "relu",
                "dropout": float(cfg.dropout),
                "features": ["pitch", "velocity", "time_delta_seconds"],
                "feature_mean": [float(v) for v in mean],
                "feature_std": [float(v) for v in std],
                "normalization": "inputs and outputs are (feature - feature_mean) / feature_std"}
    return {"kind": "lstm_lm", "vocab_size": int(vocab_size),
            "embedding_dim": int(cfg.embedding_dim), "lstm_units": units,
            "dropout": float(cfg.dropout)}


def build_keras_model(model: dict, *, seed: int = 0):
    """The Keras model of a ``config["model"]`` section (layer names match the tensor names)."""
    import keras

    units = model["lstm_units"]
    rate = float(model.get("dropout", 0.0))
    if model["kind"] == "lstm_lm":
        inp = keras.Input(shape=(None,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(model["vocab_size"], model["embedding_dim"],
                                   name="embedding")(inp)
    else:
        inp = keras.Input(shape=(None, model["n_features"]), dtype="float32", name="features")
        x = inp
    for k, u in enumerate(units):
        x = keras.layers.LSTM(u, return_sequences=True, name=f"lstm_{k}")(x)
        if rate > 0:
            # Dropout between layers (not inside the cell) keeps the fused LSTM kernel usable.
            x = keras.layers.Dropout(rate, seed=seed + 1 + k, name=f"dropout_{k}")(x)
    if model["kind"] == "lstm_lm":
        out = keras.layers.Dense(model["vocab_size"], name="head")(x)
    else:
        dense = list(model.get("dense_units", []))
        for j, d in enumerate(dense):
            x = keras.layers.Dense(d, activation=model.get("dense_activation", "relu"),
                                   name=f"dense_{j}")(x)
        out = keras.layers.Dense(model["n_features"], name=f"dense_{len(dense)}")(x)
    return keras.Model(inp, out, name=f"musgen_{model['kind']}")


def _tensor_name(path: str) -> str | None:
    """Keras variable path -> model-directory tensor name (None for non-weights)."""
    parts = path.split("/")
    if "seed_generator_state" in parts[-1]:
        return None
    layer, leaf = parts[0], parts[-1]
    return f"{layer}/{leaf}"


# ----------------------------------------------------------------------------- checkpoints
def _save_npz(path: Path, arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _snapshot(model, optimizer) -> dict:
    arrays = {}
    for i, v in enumerate(model.variables):
        arrays[f"model/{i:03d}/{v.path}"] = np.asarray(v.numpy())
    for i, v in enumerate(optimizer.variables):
        arrays[f"optimizer/{i:03d}/{v.path}"] = np.asarray(v.numpy())
    return arrays


def _restore(model, optimizer, path: Path) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    for prefix, variables in (("model", model.variables), ("optimizer", optimizer.variables)):
        keys = sorted(k for k in arrays if k.startswith(prefix + "/"))
        if len(keys) != len(variables):
            raise ModelFormatError(f"{path}: {len(keys)} {prefix} variables, the model built "
                                   f"from state.json has {len(variables)}")
        for key, v in zip(keys, variables):
            value = arrays[key]
            if tuple(value.shape) != tuple(v.shape):
                raise ModelFormatError(f"{path}: {key} has shape {list(value.shape)}, the "
                                       f"variable {v.path} needs {list(v.shape)}")
            v.assign(value)


def read_state(ckpt_dir) -> dict:
    path = Path(ckpt_dir) / STATE_NAME
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read the checkpoint state ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ModelFormatError(f"{path}: not a musgen checkpoint state (format "
                               f"{state.get('format') if isinstance(state, dict) else None!r}, "
                               f"expected {STATE_FORMAT!r})")
    return state


def _write_state(ckpt_dir: Path, state: dict) -> None:
    atomic_write_bytes(ckpt_dir / STATE_NAME,
                       (json.dumps(state, indent=2, sort_keys=True) + "\n").encode())


# ----------------------------------------------------------------------------- strategy
def _make_strategy(strategy):
    import tensorflow as tf

    if strategy is None or strategy == "default":
        return tf.distribute.get_strategy(), True
    if isinstance(strategy, tf.distribute.Strategy):
        s = strategy
    elif strategy == "mirrored":
        s = tf.distribute.MirroredStrategy()
    elif strategy == "multiworker":
        s = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        raise ValueError(f"strategy={strategy!r}: expected 'default', 'mirrored' or "
                         "'multiworker'")
    resolver = getattr(s, "cluster_resolver", None)
    chief = True
    if resolver is not None and getattr(resolver, "task_type", None) is not None:
        chief = resolver.task_type == "chief" or (
            resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in resolver.cluster_spec().as_dict())
    return s, chief


class _DistributedLoop:
    """Train/validation steps under a tf.distribute strategy (MirroredStrategy on several
    GPUs, MultiWorkerMirroredStrategy across processes or machines).

    Keras 3's ``fit`` cannot run under MultiWorkerMirroredStrategy on this stack (it all-reduces
    the input tuple and the scalar logs along a missing axis), so the steps are written out:
    each replica computes the masked loss sum of its share of the global batch, the loss that is
    differentiated is that sum divided by the global number of real targets, and the optimizer
    all-reduces (sums) the gradients across replicas. Every global batch is split across the
    workers by DATA sharding, so the data order is still fixed by (seed, epoch). The last
    partial batch is dropped so that every replica runs the same number of steps.
    """

    def __init__(self, model, optimizer, strategy, *, paper: bool, pad_id, batch_size: int):
        import tensorflow as tf

        self.tf = tf
        self.model, self.optimizer, self.strategy = model, optimizer, strategy
        self.batch_size = int(batch_size)

        def per_example(x, y, w, training):
            pred = model(x, training=training)
            if paper:
                err = tf.reduce_mean(tf.square(tf.cast(y, pred.dtype) - pred), axis=-1)
                mask = tf.cast(w, err.dtype)
            else:
                err = tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=tf.cast(y, tf.int32), logits=pred)
                mask = tf.cast(tf.not_equal(y, pad_id), err.dtype)
            return tf.reduce_sum(err * mask), tf.reduce_sum(mask)

        def train_step(x, y, w, total):
            with tf.GradientTape() as tape:
                s, c = per_example(x, y, w, True)
                loss = s / total
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return s, c

        def test_step(x, y, w, total):
            return per_example(x, y, w, False)

        def wrap(step):
            @tf.function
            def run(x, y, w, total):
                s, c = strategy.run(step, args=(x, y, w, total))
                sum_ = tf.distribute.ReduceOp.SUM
                return strategy.reduce(sum_, s, axis=None), strategy.reduce(sum_, c, axis=None)
            return run

        self._train, self._test = wrap(train_step), wrap(test_step)
        self.paper, self.pad_id = paper, pad_id

    def run_epoch(self, x, y, w, *, train: bool) -> float:
        """One pass over ``(x, y[, w])`` in order -> mean loss per real target."""
        tf = self.tf
        if w is None:
            w = np.ones(y.shape[:2], np.float32)
        n = (len(x) // self.batch_size) * self.batch_size
        if n == 0:
            raise MusgenError(f"distributed training: fewer windows ({len(x)}) than one "
                              f"global batch ({self.batch_size})")
        # Real targets per global batch: each replica divides its loss sum by this.
        real = w[:n] if self.paper else (y[:n] != self.pad_id)
        totals = real.reshape(n // self.batch_size, -1).sum(axis=1).astype(np.float32)
        d = tf.data.Dataset.from_tensor_slices((x[:n], y[:n], w[:n])).batch(self.batch_size)
        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dist = self.strategy.experimental_distribute_dataset(d.with_options(opts))
        step = self._train if train else self._test
        s_all = c_all = 0.0
        for b, (xb, yb, wb) in enumerate(dist):
            s, c = step(xb, yb, wb, tf.constant(max(float(totals[b]), 1.0)))
            s_all += float(s)
            c_all += float(c)
        return s_all / max(c_all, 1.0)


# ----------------------------------------------------------------------------- train
def _dataset_provenance(dataset) -> dict:
    info = dict(getattr(dataset, "info", {}) or {})
    path = getattr(dataset, "path", None)
    return {"path": str(path) if path is not None else None,
            "name": Path(path).name if path is not None else None,
            "seed": info.get("seed"),
            "splits": info.get("splits"),
            "format_version": info.get("format_version")}


def train(dataset, output, *, preset: str = "default", epochs: int | None = None,
          batch_size: int | None = None, window: int | None = None, stride: int | None = None,
          units: int | None = None, layers: int | None = None,
          embedding_dim: int | None = None, dropout: float | None = None,
          learning_rate: float | None = None, seed: int = 0, resume: bool = False,
          patience: int | None = None, tensorboard=None, strategy=None, quiet: bool = False,
          max_minutes: float | None | str = "preset", transpose: int | None = None,
          dense_units: list | None = None) -> Path:
    """Train a model on ``dataset`` and export the best epoch to the model directory ``output``.

    Parameters
    ----------
    dataset : musgen.dataset.Dataset or str or path
        A prepared dataset (``musgen prepare``) or its folder.
    output : str or path
        Model directory; checkpoints go to ``output/checkpoints``.
    preset : "default" or "paper"
        ``default``: token LSTM language model (embedding -> LSTM stack -> dense head, sparse
        cross-entropy, PAD targets ignored). ``paper``: the seed paper's regression model
        (LSTM stack -> dense layers, MSE on normalized pitch/velocity/time-delta).
    resume : bool
        Continue from the last complete checkpoint in ``output/checkpoints`` (same data order;
        bit-identical to an uninterrupted run on CPU). The saved hyper-parameters win.
    max_minutes : float or None
        Time budget: no new epoch starts once the time so far plus the last epoch's duration
        would exceed it. ``None`` = no budget.
    strategy : None, "default", "mirrored", "multiworker" or a tf.distribute.Strategy
        ``multiworker`` reads ``TF_CONFIG``; only the chief writes checkpoints and exports.

    Returns
    -------
    Path
        The model directory.
    """
    if isinstance(dataset, (str, os.PathLike)):
        from .dataset import Dataset

        dataset = Dataset.open(dataset)
    output = Path(output)
    ckpt_dir = output / CHECKPOINT_DIR

    if resume and (ckpt_dir / STATE_NAME).exists():
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
        overrides = {"epochs": epochs, "batch_size": batch_size, "window": window,
                     "stride": stride, "units": units, "layers": layers,
                     "embedding_dim": embedding_dim, "dropout": dropout,
                     "learning_rate": learning_rate, "patience": patience,
                     "transpose": transpose, "dense_units": dense_units}
        base.update({k: v for k, v in overrides.items() if v is not None})
        base["seed"] = int(seed)
        if max_minutes != "preset":
            base["max_minutes"] = max_minutes
        cfg = TrainConfig(**base)
        state = None
    if cfg.stride is None or cfg.stride <= 0:
        cfg.stride = cfg.window
    for name in ("epochs", "batch_size", "window", "units", "layers"):
        if int(getattr(cfg, name)) <= 0:
            raise ValueError(f"{name}={getattr(cfg, name)!r}: expected a positive integer")

    if tensorboard:
        from importlib.util import find_spec

        if find_spec("tensorboard") is None:  # fail now, not after the first epoch
            raise MusgenError(f"tensorboard={str(tensorboard)!r}: TensorBoard logs need the "
                              "'tensorboard' package (pip install tensorboard)")

    # TensorFlow's C++ log lines (oneDNN notices; a harmless tf.data "unknown attribute" error
    # logged every epoch by TF 2.21) would drown the progress bar. Python exceptions still
    # propagate; a user who sets the variable keeps control.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    strat, chief = _make_strategy(strategy)

    codec = dataset.codec
    paper = cfg.preset == "paper"
    if paper:
        if state is not None:
            norm = (np.asarray(state["model"]["feature_mean"], np.float32),
                    np.asarray(state["model"]["feature_std"], np.float32))
        else:
            norm = paper_normalization(dataset)
        msec = model_section(cfg, None, norm)
    else:
        norm = None
        msec = model_section(cfg, codec.vocab_size)

    with strat.scope():
        model = build_keras_model(msec, seed=cfg.seed)
        optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate,
                                          clipnorm=cfg.clipnorm)
        if paper:
            loss = keras.losses.MeanSquaredError()
            model.compile(optimizer=optimizer, loss=loss, weighted_metrics=[])
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                              ignore_class=int(codec.pad_id))
            model.compile(optimizer=optimizer, loss=loss)
        optimizer.build(model.trainable_variables)

    def data(split, epoch, shuffle):
        if paper:
            x, y, w = paper_windows(dataset, split, window=cfg.window, stride=cfg.stride,
                                    seed=cfg.seed, epoch=epoch, mean=norm[0], std=norm[1],
                                    shuffle=shuffle)
            return x, y, w
        x, y = epoch_windows(dataset, split, window=cfg.window, stride=cfg.stride,
                             seed=cfg.seed, epoch=epoch, shuffle=shuffle,
                             transpose=cfg.transpose if split == "train" else 0)
        return x, y, None

    distributed = strat.num_replicas_in_sync > 1 or strategy not in (None, "default")

    valid = data("valid", 0, False)
    if distributed:
        dist = _DistributedLoop(model, optimizer, strat, paper=paper,
                                pad_id=None if paper else int(codec.pad_id),
                                batch_size=cfg.batch_size)
    history: list = []
    start_epoch = 0
    best_val, best_epoch = math.inf, -1
    plateau_wait = stop_wait = 0
    elapsed = 0.0
    if state is not None:
        last = ckpt_dir / state["last_checkpoint"]
        _restore(model, optimizer, last)
        history = state["history"]
        start_epoch = state["epoch"] + 1
        best_val = state["best_valid_loss"]
        best_epoch = state["best_epoch"]
        plateau_wait, stop_wait = state["plateau_wait"], state["stop_wait"]
        elapsed = state["elapsed_seconds"]
        if state.get("stopped"):
            start_epoch = cfg.epochs  # the run had finished: only re-export
        if not quiet:
            print(f"resuming after epoch {state['epoch'] + 1} from {last}")
    elif chief:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    if not chief:
        ckpt_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"musgen-worker-{os.getpid()}"
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    callbacks = []
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard)))

    run_info = {"dataset": _dataset_provenance(dataset), "seed": cfg.seed,
                "preset": cfg.preset}
    stopped_reason = state.get("stop_reason") if state else None
    epoch = start_epoch
    last_duration = 0.0
    while epoch < cfg.epochs:
        if (cfg.max_minutes is not None and epoch > 0
                and elapsed + last_duration > cfg.max_minutes * 60):
            stopped_reason = f"time budget of {cfg.max_minutes} minutes"
            break
        t0 = time.perf_counter()
        x, y, w = data("train", epoch, True)
        if distributed:
            train_loss = dist.run_epoch(x, y, w, train=True)
            val_loss = dist.run_epoch(*valid, train=False)
            if not quiet:
                print(f"epoch {epoch + 1}/{cfg.epochs}: loss {train_loss:.4f} "
                      f"val_loss {val_loss:.4f}")
        else:
            fit = model.fit(x, y, sample_weight=w, batch_size=cfg.batch_size,
                            epochs=epoch + 1, initial_epoch=epoch, shuffle=False,
                            validation_data=valid if valid[2] is not None else valid[:2],
                            validation_batch_size=cfg.batch_size,
                            verbose=0 if quiet else 1, callbacks=callbacks)
            train_loss = float(fit.history["loss"][-1])
            val_loss = float(fit.history["val_loss"][-1])
        last_duration = time.perf_counter() - t0
        elapsed += last_duration
        lr = float(optimizer.learning_rate.numpy())
        history.append({"epoch": epoch + 1, "loss": train_loss, "val_loss": val_loss,
                        "learning_rate": lr, "seconds": round(last_duration, 3)})
        improved = val_loss < best_val
        if improved:
            best_val, best_epoch = val_loss, epoch
            plateau_wait = stop_wait = 0
        else:
            plateau_wait += 1
            stop_wait += 1
            if plateau_wait >= cfg.lr_patience and lr > cfg.min_learning_rate:
                # Reduce on plateau: the counter lives in state.json so a resume continues it.
                optimizer.learning_rate.assign(max(lr * cfg.lr_factor, cfg.min_learning_rate))
                plateau_wait = 0
                if not quiet:
                    print(f"learning rate -> {float(optimizer.learning_rate.numpy()):.3g}")
        done = stop_wait >= cfg.patience
        if done:
            stopped_reason = f"early stopping: no improvement for {cfg.patience} epochs"
        if chief:
            name = f"epoch-{epoch + 1:04d}.npz"
            snap = _snapshot(model, optimizer)
            _save_npz(ckpt_dir / name, snap)
            if improved:
                _save_npz(ckpt_dir / BEST_NAME, snap)
            new_state = {
                "format": STATE_FORMAT, "musgen_version": __version__,
                "train_config": asdict(cfg), "model": msec, "codec": codec.to_dict(),
                "run": run_info, "epoch": epoch, "last_checkpoint": name,
                "best_epoch": best_epoch, "best_valid_loss": best_val,
                "plateau_wait": plateau_wait, "stop_wait": stop_wait,
                "elapsed_seconds": elapsed, "history": history,
                "stopped": done, "stop_reason": stopped_reason,
            }
            _write_state(ckpt_dir, new_state)
            # Older per-epoch checkpoints are dropped only after state.json names the new one.
            for old in ckpt_dir.glob("epoch-*.npz"):
                if old.name != name:
                    old.unlink(missing_ok=True)
        epoch += 1
        if done:
            break
    if not chief:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        return output
    if not (ckpt_dir / STATE_NAME).exists():
        raise MusgenError(f"{ckpt_dir}: no epoch was trained (epochs={cfg.epochs})")
    if stopped_reason and not quiet:
        print(f"stopped: {stopped_reason}")
    state = read_state(ckpt_dir)
    state["stop_reason"] = stopped_reason
    _write_state(ckpt_dir, state)
    export(ckpt_dir, output)
    return output


# ----------------------------------------------------------------------------- export
def _find_checkpoint(path: Path) -> tuple[Path, Path]:
    """-> (state directory, checkpoint .npz) for a model dir, a checkpoints dir or a .npz."""
    if path.is_file():
        return path.parent, path
    for d in (path / CHECKPOINT_DIR, path):
        if (d / STATE_NAME).exists():
            best = d / BEST_NAME
            if best.exists():
                return d, best
            return d, d / read_state(d)["last_checkpoint"]
    raise ModelFormatError(f"{path}: no checkpoint found (expected {STATE_NAME} in {path} or "
                           f"in {path / CHECKPOINT_DIR})")


def export(checkpoint, output) -> Path:
    """Write the model directory ``output`` from a training checkpoint (no TensorFlow needed).

    ``checkpoint`` is a model directory holding ``checkpoints/``, a checkpoints directory (the
    best epoch is exported) or one ``.npz`` checkpoint file beside its ``state.json``.
    """
    ckpt_dir, npz = _find_checkpoint(Path(checkpoint))
    state = read_state(ckpt_dir)
    try:
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{npz}: cannot read the checkpoint ({exc})") from exc
    tensors = {}
    for key, value in arrays.items():
        if not key.startswith("model/"):
            continue
        name = _tensor_name(key.split("/", 2)[2])
        if name is None:
            continue
        if name in tensors:
            raise ModelFormatError(f"{npz}: two variables map to tensor {name!r}")
        tensors[name] = value.astype(np.float32)
    hist = state["history"]
    best = state["best_epoch"]
    best_row = next((h for h in hist if h["epoch"] == best + 1), hist[-1] if hist else {})
    if npz.name.startswith("epoch-"):
        best_row = next((h for h in hist if f"epoch-{h['epoch']:04d}.npz" == npz.name),
                        best_row)
    training = {
        "dataset": state["run"]["dataset"], "preset": state["run"]["preset"],
        "seed": state["run"]["seed"], "hyperparameters": state["train_config"],
        "epochs_run": len(hist), "best_epoch": best + 1,
        "exported_epoch": best_row.get("epoch"),
        "train_loss": best_row.get("loss"), "valid_loss": best_row.get("val_loss"),
        "final_train_loss": hist[-1]["loss"] if hist else None,
        "final_valid_loss": hist[-1]["val_loss"] if hist else None,
        "loss": "mse on normalized features" if state["model"]["kind"] == "paper"
        else "cross-entropy per token (nats)",
        "stop_reason": state.get("stop_reason"),
        "train_seconds": round(float(state["elapsed_seconds"]), 1),
        "musgen_version": state.get("musgen_version", __version__),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    config = {"model": state["model"], "codec": state["codec"], "training": training}
    return save_model_dir(output, config, tensors)
