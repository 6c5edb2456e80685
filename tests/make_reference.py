"""Make the engine's TensorFlow reference data (needs TensorFlow; the tests that read it do not).

    python tests/make_reference.py

Builds two small Keras 3 models with fixed seeds, trains each for a few steps on synthetic data
so the weights are not just their initializers, exports them to model directories under
``tests/data/engine/`` with the tensor names of ``musgen.modeldir`` (a copy: Keras layout is the
format), and saves Keras's own outputs for fixed inputs as ``.npy``:

* ``lm/``      Embedding(40, 8) -> LSTM(16) -> LSTM(16) -> Dense(40); ``lm_tokens.npy`` int32
  [3, 96] and ``lm_logits.npy`` float32 [3, 96, 40] (Keras, full sequences from a zero state).
* ``paper/``   LSTM(12) -> LSTM(10) -> Dense(8, relu) -> Dense(3) on [.., 3] features;
  ``paper_inputs.npy`` float32 [2, 50, 3] and ``paper_outputs.npy`` float32 [2, 50, 3].
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "engine"
sys.path.insert(0, str(HERE.parent / "python"))


def export_lstm_stack(model, n_layers: int) -> dict:
    """Keras layers named lstm_k -> modeldir tensors (kernel, recurrent_kernel, bias)."""
    tensors = {}
    for k in range(n_layers):
        kernel, recurrent, bias = model.get_layer(f"lstm_{k}").get_weights()
        tensors[f"lstm_{k}/kernel"] = kernel
        tensors[f"lstm_{k}/recurrent_kernel"] = recurrent
        tensors[f"lstm_{k}/bias"] = bias
    return tensors


def make_lm(keras, rng):
    vocab, emb, units = 40, 8, [16, 16]
    inp = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocab, emb, name="embedding")(inp)
    for k, u in enumerate(units):
        x = keras.layers.LSTM(u, return_sequences=True, name=f"lstm_{k}")(x)
    out = keras.layers.Dense(vocab, name="head")(x)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # Synthetic "music": rising runs with random restarts, so the LSTM learns some structure.
    seqs = (np.cumsum(rng.integers(1, 4, size=(64, 33)), axis=1) % vocab).astype(np.int32)
    model.fit(seqs[:, :-1], seqs[:, 1:], epochs=30, batch_size=16, verbose=0)
    tensors = {"embedding/embeddings": model.get_layer("embedding").get_weights()[0]}
    tensors.update(export_lstm_stack(model, len(units)))
    hk, hb = model.get_layer("head").get_weights()
    tensors["head/kernel"], tensors["head/bias"] = hk, hb
    config = {"model": {"kind": "lstm_lm", "vocab_size": vocab, "embedding_dim": emb,
                        "lstm_units": units, "dropout": 0.0},
              "training": {"source": "tests/make_reference.py", "keras": keras.__version__,
                           "steps": 120}}
    tokens = rng.integers(0, vocab, size=(3, 96)).astype(np.int32)
    logits = model(tokens, training=False)
    return config, tensors, tokens, np.asarray(logits, dtype=np.float32)


def make_paper(keras, rng):
    units, dense = [12, 10], [8]
    inp = keras.Input((None, 3), dtype="float32")
    x = inp
    for k, u in enumerate(units):
        x = keras.layers.LSTM(u, return_sequences=True, name=f"lstm_{k}")(x)
    x = keras.layers.Dense(dense[0], activation="relu", name="dense_0")(x)
    out = keras.layers.Dense(3, name="dense_1")(x)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    feats = rng.standard_normal((64, 31, 3)).astype(np.float32)
    target = np.roll(feats, -1, axis=1) * 0.5 + 0.1
    model.fit(feats, target, epochs=20, batch_size=16, verbose=0)
    tensors = export_lstm_stack(model, len(units))
    for j in range(2):
        k, b = model.get_layer(f"dense_{j}").get_weights()
        tensors[f"dense_{j}/kernel"], tensors[f"dense_{j}/bias"] = k, b
    config = {"model": {"kind": "paper", "n_features": 3, "lstm_units": units,
                        "dense_units": dense, "dense_activation": "relu"},
              "training": {"source": "tests/make_reference.py", "keras": keras.__version__}}
    x = (rng.standard_normal((2, 50, 3)) * 1.5).astype(np.float32)
    y = np.asarray(model(x, training=False), dtype=np.float32)
    return config, tensors, x, y


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from musgen.modeldir import save_model_dir

    keras.utils.set_random_seed(1234)
    rng = np.random.default_rng(1234)
    OUT.mkdir(parents=True, exist_ok=True)
    config, tensors, tokens, logits = make_lm(keras, rng)
    save_model_dir(OUT / "lm", config, tensors)
    np.save(OUT / "lm_tokens.npy", tokens)
    np.save(OUT / "lm_logits.npy", logits)
    config, tensors, x, y = make_paper(keras, rng)
    save_model_dir(OUT / "paper", config, tensors)
    np.save(OUT / "paper_inputs.npy", x)
    np.save(OUT / "paper_outputs.npy", y)
    print(f"wrote {OUT}: lm logits {logits.shape} (std {logits.std():.3f}), "
          f"paper outputs {y.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
