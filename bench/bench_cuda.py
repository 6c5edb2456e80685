"""Benchmark: batched generation speed (tokens/s) of the CUDA engine against the C++ CPU engine on
all cores and TensorFlow (Keras LSTM cells, one tf.function call per step) on the same GPU, at
batch 1, 64, 1024 and 8192, with a random-weight model over the default codec vocabulary.

The musgen engines sample under the codec grammar (masking, temperature, top-k); the TensorFlow
loop samples with tf.random.categorical without a grammar, so it does strictly less work per step.
TensorFlow's matmuls may use TF32 tensor cores (Ampere and newer, on by default); musgen computes
in full FP32 so its tokens match the CPU engine.
Targets: batch 1 per-token latency no worse than the CPU engine; batch 1024 >= 10x TensorFlow.
Without a usable CUDA device the script says why and exits 0. (The model is random, so no
MUSGEN_DATA is read.)

    python bench/bench_cuda.py [--units 512 512] [--embedding 128] [--batches 1 64 1024 8192]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


from musgen import _backend, codec, engine
from musgen.engine._random import random_model_dir
from musgen.modeldir import load_model_dir

# Generated tokens per stream for each batch size (enough work for stable timings).
STEPS = {1: 512, 64: 256, 1024: 128, 8192: 64}


def time_musgen(eng, batch: int, steps: int, repeat: int, grammar, cfg) -> float:
    """Median tokens/s of Engine.generate_tokens (whole loop inside the engine)."""
    kw = dict(primer=[cfg.bos_id], length=steps, grammar=grammar, eos_id=None,
              temperature=1.0, top_k=50, max_tokens=steps + 8)
    eng.generate_tokens(batch, seed=0, **{**kw, "length": 4, "max_tokens": 12})  # warm-up
    rates = []
    for r in range(repeat):
        t0 = time.perf_counter()
        out = eng.generate_tokens(batch, seed=r + 1, **kw)
        dt = time.perf_counter() - t0
        rates.append(sum(len(t) for t in out) / dt)
    return statistics.median(rates)


def tf_runner(model_dir: Path):
    """A stepwise Keras generator over the same weights, or (None, reason)."""
    try:
        import tensorflow as tf
    except ImportError as exc:
        return None, f"TensorFlow not installed ({exc})"
    config, tensors = load_model_dir(model_dir)
    units = config["model"]["lstm_units"]
    gpus = tf.config.list_physical_devices("GPU")
    device = "/GPU:0" if gpus else "/CPU:0"
    with tf.device(device):
        emb = tf.constant(tensors["embedding/embeddings"])
        cells = []
        in_dim = emb.shape[1]
        for k, u in enumerate(units):
            cell = tf.keras.layers.LSTMCell(u)
            cell.build((None, in_dim))
            cell.set_weights([tensors[f"lstm_{k}/kernel"], tensors[f"lstm_{k}/recurrent_kernel"],
                              tensors[f"lstm_{k}/bias"]])
            cells.append(cell)
            in_dim = u
        head_k, head_b = tf.constant(tensors["head/kernel"]), tf.constant(tensors["head/bias"])

    @tf.function(jit_compile=False)
    def step(tok, states):
        x = tf.gather(emb, tok)
        new = []
        for cell, (h, c) in zip(cells, states):
            x, (h2, c2) = cell(x, [h, c])
            new.append((h2, c2))
        logits = tf.matmul(x, head_k) + head_b
        nxt = tf.random.categorical(logits, 1, dtype=tf.int32)[:, 0]
        return nxt, new

    def run(batch: int, steps: int) -> float:
        with tf.device(device):
            tok = tf.zeros([batch], tf.int32)
            states = [(tf.zeros([batch, u]), tf.zeros([batch, u])) for u in units]
            t0 = time.perf_counter()
            for _ in range(steps):
                tok, states = step(tok, states)
            tok.numpy()  # wait for the device
            return batch * steps / (time.perf_counter() - t0)

    return run, "TensorFlow " + tf.__version__ + (" on GPU" if gpus else " on CPU (no GPU seen)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, nargs="+", default=[512, 512])
    ap.add_argument("--embedding", type=int, default=128)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024, 8192])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-tf", action="store_true", help="skip the TensorFlow baseline")
    args = ap.parse_args()

    ok, why = _backend.cuda_status()
    if not ok:
        print(f"bench_cuda: the CUDA backend is not available ({why}); nothing to measure")
        return 0
    cfg = codec.default_config()
    grammar = codec.grammar(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        model = random_model_dir(Path(tmp) / "m", vocab_size=cfg.vocab_size,
                                 embedding_dim=args.embedding, lstm_units=args.units, seed=0,
                                 scale=1.0, codec=cfg.to_dict())
        cpu = engine.load(model, backend="cpp")
        gpu = engine.load(model, backend="cuda")
        tf_run, tf_name = (None, "skipped") if args.no_tf else tf_runner(model)
        print(f"model: vocab {cfg.vocab_size}, embedding {args.embedding}, lstm {args.units}; "
              f"GPU: {getattr(gpu._cpp, 'device_name', '?')}; baseline: {tf_name}")
        print(f"{'batch':>6} {'cpu tok/s':>12} {'cuda tok/s':>12} {'tf tok/s':>12} "
              f"{'cuda/cpu':>9} {'cuda/tf':>8} {'cuda ms/tok (b=1)':>18}")
        for b in args.batches:
            steps = STEPS.get(b, 64)
            c = time_musgen(cpu, b, steps, args.repeat, grammar, cfg)
            g = time_musgen(gpu, b, steps, args.repeat, grammar, cfg)
            t = None
            if tf_run is not None:
                tf_run(b, 4)  # trace and warm up
                t = statistics.median(tf_run(b, steps) for _ in range(args.repeat))
            lat = f"{1000.0 / g:18.3f}" if b == 1 else ""
            print(f"{b:>6} {c:12.0f} {g:12.0f} {t if t is not None else float('nan'):12.0f} "
                  f"{g / c:9.2f} {(g / t if t else float('nan')):8.2f} {lat}")
            if b == 1:
                print(f"       batch-1 latency: cpu {1000.0 / c:.3f} ms/token, "
                      f"cuda {1000.0 / g:.3f} ms/token (target: cuda <= cpu)")
            if b == 1024 and t:
                print(f"       batch-1024: cuda / tf = {g / t:.1f}x (target >= 10x)")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
