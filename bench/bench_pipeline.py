"""Benchmark: tokens per second the training input pipeline delivers (NumPy iterator and
tf.data, with shuffling and transposition) against what a Keras 2 x 256 LSTM train step
consumes on this machine, measured in one run. The pipeline must never be the bottleneck.

Data: POP909 from $MUSGEN_DATA (default ../shared/data), prepared into a temporary dataset.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MUSGEN_DATA", ROOT.parent / "shared" / "data"))
REPEATS = int(os.environ.get("MUSGEN_BENCH_REPEATS", "3"))
WINDOW, BATCH, TRANSPOSE = 256, 64, 6


def rate(batches, n_batches: int) -> float:
    """Tokens per second over ``n_batches`` batches (median of REPEATS passes)."""
    rates = []
    for _ in range(REPEATS):
        it = batches()
        t0 = time.perf_counter()
        tokens = 0
        for _, (x, _y) in zip(range(n_batches), it):
            tokens += int(x.shape[0]) * int(x.shape[1])
        rates.append(tokens / (time.perf_counter() - t0))
    return statistics.median(rates)


def lstm_rate(vocab: int, ds) -> float:
    """Tokens per second of a 2 x 256 LSTM language model's train step (Keras, this CPU)."""
    import tensorflow as tf
    from musgen.data import pipeline

    inputs = tf.keras.Input((WINDOW,), dtype="int32")
    h = tf.keras.layers.Embedding(vocab, 256, name="embedding")(inputs)
    h = tf.keras.layers.LSTM(256, return_sequences=True, name="lstm_0")(h)
    h = tf.keras.layers.LSTM(256, return_sequences=True, name="lstm_1")(h)
    out = tf.keras.layers.Dense(vocab, name="head")(h)
    model = tf.keras.Model(inputs, out)
    model.compile(optimizer="adam",
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = next(pipeline.numpy_batches(ds, window=WINDOW, batch_size=BATCH, seed=0))
    w = pipeline.target_weights(y)
    for _ in range(2):  # trace and warm up
        model.train_on_batch(x, y, sample_weight=w)
    rates = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        steps = 3
        for _ in range(steps):
            model.train_on_batch(x, y, sample_weight=w)
        rates.append(steps * x.size / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from musgen.data import pipeline
    from musgen.data import Dataset, prepare

    corpus = DATA / "corpora" / "pop909"
    if not corpus.is_dir():
        print(f"bench_pipeline: {corpus} is missing; set MUSGEN_DATA", file=sys.stderr)
        return 1
    print(f"bench_pipeline: window {WINDOW}, batch {BATCH}, transposition +-{TRANSPOSE}, "
          f"medians of {REPEATS}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="musgen-bench-") as tmp:
        prepare(corpus, Path(tmp) / "pop909", quiet=True)
        ds = Dataset.open(Path(tmp) / "pop909")
        n = pipeline.batches_per_epoch(ds, "train", window=WINDOW, batch_size=BATCH)
        print(f"POP909 train: {len(ds.split_indices('train'))} pieces, {n} batches per epoch")
        kw = dict(window=WINDOW, batch_size=BATCH, seed=0, transpose=TRANSPOSE, epochs=None)
        np_rate = rate(lambda: pipeline.numpy_batches(ds, "train", **kw), n)
        print(f"numpy_batches: {np_rate:,.0f} tokens/s")
        tf_rate = rate(lambda: iter(pipeline.tf_dataset(ds, "train", **kw)), n)
        print(f"tf_dataset:    {tf_rate:,.0f} tokens/s")
        model_rate = lstm_rate(ds.codec.vocab_size, ds)
        print(f"Keras 2x256 LSTM train step (vocab {ds.codec.vocab_size}): "
              f"{model_rate:,.0f} tokens/s")
        print(f"ratios: numpy pipeline / model = {np_rate / model_rate:,.0f}x, "
              f"tf.data pipeline / model = {tf_rate / model_rate:,.0f}x (must be > 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
