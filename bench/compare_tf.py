"""Live TensorFlow comparison (``nox -s compare_tf``): train a small Keras LSTM for a few steps,
export it to a model directory, and compare Keras with musgen's C++ and NumPy engines.

* logits over 1000 steps: the engines' stepwise state against Keras's full-sequence forward;
* greedy generation for 1000 tokens: the engines' C++/NumPy sampling loop against a Keras
  single-step model with explicit states.

Prints the largest differences; exits 1 if a logit differs by more than 1e-4 or a greedy token
differs. Also the home of the Keras helpers that bench/bench_engine.py reuses.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOLERANCE = 1e-4


def import_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    return tf, keras


def keras_sequence_model(keras, vocab: int, emb: int, units):
    """Embedding -> LSTM x n (return_sequences) -> Dense head, named as musgen exports them."""
    inp = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocab, emb, name="embedding")(inp)
    for k, u in enumerate(units):
        x = keras.layers.LSTM(u, return_sequences=True, name=f"lstm_{k}")(x)
    return keras.Model(inp, keras.layers.Dense(vocab, name="head")(x))


def keras_step_model(keras, vocab: int, emb: int, units, batch: int | None = None):
    """One token per call with explicit (h, c) states: the model inference tools run stepwise.

    Inputs: tokens int32 [B, 1], then h_0, c_0, h_1, c_1, ...; outputs: logits [B, vocab], then
    the new states in the same order.
    """
    tok = keras.Input((1,), dtype="int32", batch_size=batch, name="token")
    states = []
    for k, u in enumerate(units):
        states += [keras.Input((u,), batch_size=batch, name=f"h_{k}"),
                   keras.Input((u,), batch_size=batch, name=f"c_{k}")]
    x = keras.layers.Embedding(vocab, emb, name="embedding")(tok)
    outs = []
    for k, u in enumerate(units):
        # unroll: one step needs no while loop (faster everywhere, and LiteRT can freeze it)
        x, h, c = keras.layers.LSTM(u, return_sequences=True, return_state=True, unroll=True,
                                    name=f"lstm_{k}")(x, initial_state=states[2 * k:2 * k + 2])
        outs += [h, c]
    logits = keras.layers.Dense(vocab, name="head")(keras.layers.Reshape((units[-1],))(x))
    return keras.Model([tok] + states, [logits] + outs)


def export_tensors(model, units) -> dict:
    """Keras weights -> musgen.modeldir tensor names (the Keras layout is the format)."""
    t = {"embedding/embeddings": model.get_layer("embedding").get_weights()[0]}
    for k in range(len(units)):
        w, u, b = model.get_layer(f"lstm_{k}").get_weights()
        t[f"lstm_{k}/kernel"], t[f"lstm_{k}/recurrent_kernel"], t[f"lstm_{k}/bias"] = w, u, b
    t["head/kernel"], t["head/bias"] = model.get_layer("head").get_weights()
    return {k: np.asarray(v, np.float32) for k, v in t.items()}


def load_tensors_into(model, tensors: dict, units) -> None:
    model.get_layer("embedding").set_weights([tensors["embedding/embeddings"]])
    for k in range(len(units)):
        model.get_layer(f"lstm_{k}").set_weights([tensors[f"lstm_{k}/kernel"],
                                                  tensors[f"lstm_{k}/recurrent_kernel"],
                                                  tensors[f"lstm_{k}/bias"]])
    model.get_layer("head").set_weights([tensors["head/kernel"], tensors["head/bias"]])


def save_lm_dir(path, tensors: dict, vocab: int, emb: int, units, note: str) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    from musgen.modeldir import save_model_dir

    config = {"model": {"kind": "lstm_lm", "vocab_size": vocab, "embedding_dim": emb,
                        "lstm_units": list(units), "dropout": 0.0},
              "training": {"source": note}}
    return save_model_dir(path, config, tensors)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000, help="sequence length compared")
    ap.add_argument("--units", default="64,64", help="LSTM units per layer")
    ap.add_argument("--vocab", type=int, default=120)
    ap.add_argument("--embedding", type=int, default=32)
    args = ap.parse_args(argv)
    units = [int(u) for u in args.units.split(",")]
    tf, keras = import_keras()
    from musgen import _backend, engine

    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    V, E = args.vocab, args.embedding
    model = keras_sequence_model(keras, V, E, units)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = (np.cumsum(rng.integers(1, 5, size=(256, 65)), axis=1) % V).astype(np.int32)
    t0 = time.perf_counter()
    model.fit(data[:, :-1], data[:, 1:], epochs=4, batch_size=32, verbose=0)
    print(f"trained {len(units)}x{units[0]} LSTM (vocab {V}, embedding {E}) for 32 steps in "
          f"{time.perf_counter() - t0:.1f}s")
    tensors = export_tensors(model, units)
    backends = ["python"] + (["cpp"] if _backend.has_cpp() else [])
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        mdir = save_lm_dir(Path(tmp) / "model", tensors, V, E, units, "bench/compare_tf.py")
        tokens = rng.integers(0, V, size=(2, args.steps)).astype(np.int32)
        want = np.asarray(model(tokens, training=False), np.float32)
        for b in backends:
            got = engine.load(mdir, backend=b).logits(tokens)
            diff = float(np.max(np.abs(got - want)))
            where = np.unravel_index(np.argmax(np.abs(got - want)), got.shape)
            ok = diff <= TOLERANCE
            failed |= not ok
            print(f"logits  {b:6s}: max |engine - Keras| = {diff:.3g} at (stream, step, token) "
                  f"{tuple(int(i) for i in where)} over {args.steps} steps "
                  f"[{'ok' if ok else 'FAIL'} <= {TOLERANCE:g}]")
        # Keras greedy, stepwise with explicit states.
        step = keras_step_model(keras, V, E, units, batch=1)
        load_tensors_into(step, tensors, units)
        run = tf.function(lambda *xs: step(list(xs), training=False))
        states = [np.zeros((1, u), np.float32) for u in units for _ in range(2)]
        tok = np.array([[int(tokens[0, 0])]], np.int32)
        keras_greedy = []
        t0 = time.perf_counter()
        for _ in range(args.steps - 1):
            out = run(tok, *states)
            logits, states = out[0].numpy(), [s.numpy() for s in out[1:]]
            nxt = int(np.argmax(logits[0]))
            keras_greedy.append(nxt)
            tok = np.array([[nxt]], np.int32)
        print(f"Keras greedy: {args.steps - 1} tokens in {time.perf_counter() - t0:.1f}s")
        for b in backends:
            eng = engine.load(mdir, backend=b)
            got = eng.generate_tokens(1, primer=tokens[0, :1], length=args.steps - 1,
                                      temperature=0.0, seed=0)[0]
            same = np.asarray(got) == np.asarray(keras_greedy)
            first = int(np.argmin(same)) if not same.all() else None
            failed |= first is not None
            print(f"greedy  {b:6s}: {int(same.sum())}/{len(same)} tokens equal to Keras"
                  + ("" if first is None else f", first difference at step {first}"))
    print("FAIL" if failed else "OK: engines match Keras")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
