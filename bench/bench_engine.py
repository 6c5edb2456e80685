"""Engine speed: musgen's C++ and NumPy engines against Keras (tf.function), ONNX Runtime and
LiteRT running the same weights as a single-step model, plus the machine's bounds.

For 2x256 and 2x512 LSTMs (embedding 64, vocabulary 300) it prints time per generated token at
batch 1 and tokens/s at batch 1, 16 and 256. musgen's numbers are whole sampling loops
(forward, softmax, sampling); the other tools' are the forward step alone (their best case).
Bounds: weight bytes per step / measured read bandwidth on a buffer of that size (batch 1), and
FLOPs per step / measured NumPy sgemm rate (large batches), both one core, best of repeats.
Tool timings are medians of repeats; on a shared or throttled machine they vary run to run.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# One BLAS thread: the bounds below are per core, compared with the C++ engine on 1 thread.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_seconds, median_seconds  # noqa: E402
from compare_tf import (  # noqa: E402
    import_keras,
    keras_step_model,
    load_tensors_into,
)

VOCAB, EMB = 300, 64
SIZES = [256, 512]
BATCHES = [1, 16, 256]
REPEATS = 3


def steps_for(batch: int, units: int) -> int:
    """Enough steps for ~0.3 s of work at a plausible speed, at least 8."""
    return max(8, int(3e5 / (batch * (units / 256) ** 2)) // 100)


# ------------------------------------------------------------------------------ musgen
def bench_musgen(mdir, batch: int, steps: int, backend: str, threads=None) -> float:
    from musgen import engine

    eng = engine.load(mdir, backend=backend)
    eng.generate_tokens(batch, primer=[0], length=2, seed=0, threads=threads)  # warm
    t = median_seconds(lambda: eng.generate_tokens(batch, primer=[0], length=steps, seed=1,
                                                threads=threads, max_tokens=steps), REPEATS)
    return t / steps


# ------------------------------------------------------------------------------ other tools
class StepTools:
    """Keras step model for one (units, batch): tf.function, ONNX Runtime, LiteRT."""

    def __init__(self, tf, keras, tensors, units, batch):
        self.tf, self.units, self.batch = tf, units, batch
        model = keras_step_model(keras, VOCAB, EMB, units, batch=batch)
        load_tensors_into(model, tensors, units)
        self.model = model
        specs = [tf.TensorSpec((batch, 1), tf.int32, name="token")]
        for k, u in enumerate(units):
            specs += [tf.TensorSpec((batch, u), tf.float32, name=f"h_{k}"),
                      tf.TensorSpec((batch, u), tf.float32, name=f"c_{k}")]
        self.specs = specs
        self.fn = tf.function(lambda *xs: model(list(xs), training=False),
                              input_signature=specs)
        self.inputs = [np.zeros((batch, 1), np.int32)] + [
            np.zeros((batch, u), np.float32) for u in units for _ in range(2)]

    def time_tf(self, steps):
        feed = [self.tf.constant(x) for x in self.inputs]

        def run():
            xs = feed
            for _ in range(steps):
                out = self.fn(*xs)
                xs = [xs[0]] + list(out[1:])
            out[0].numpy()
        run()
        return median_seconds(run, REPEATS) / steps

    def time_onnx(self, steps, threads):
        import onnxruntime as ort
        import tf2onnx

        proto, _ = tf2onnx.convert.from_function(self.fn, input_signature=self.specs, opset=17)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(proto.SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        feed = dict(zip(names, self.inputs))

        def run():
            f = dict(feed)
            for _ in range(steps):
                out = sess.run(None, f)
                for j, name in enumerate(names[1:]):
                    f[name] = out[1 + j]
        run()
        return median_seconds(run, REPEATS) / steps

    def time_litert(self, steps, threads):
        tf = self.tf
        # Through a SavedModel, so the converter freezes the Keras variables into constants.
        with tempfile.TemporaryDirectory() as tmp:
            module = tf.Module()
            module.model = self.model
            module.step = self.fn
            tf.saved_model.save(module, tmp, signatures=self.fn.get_concrete_function())
            blob = tf.lite.TFLiteConverter.from_saved_model(tmp).convert()
        try:
            from ai_edge_litert.interpreter import Interpreter
            which = "ai-edge-litert"
        except ImportError:
            Interpreter = tf.lite.Interpreter
            which = "tf.lite"
        interp = Interpreter(model_content=blob, num_threads=threads)
        interp.allocate_tensors()
        ins = interp.get_input_details()
        outs = interp.get_output_details()
        by_name = {d["name"]: d for d in ins}

        def find(prefix):
            for name, d in by_name.items():
                if prefix in name:
                    return d
            raise KeyError(prefix)
        order = [find("token")] + [find(f"{g}_{k}") for k in range(len(self.units))
                                   for g in ("h", "c")]
        # outputs: logits [B, V] and the states; the states are fed back by shape, in order
        state_outs = [d for d in outs if tuple(d["shape"]) != (self.batch, VOCAB)]
        if len(state_outs) != 2 * len(self.units):
            raise RuntimeError(f"LiteRT model has outputs {[d['shape'] for d in outs]}")

        def run():
            for d, x in zip(order, self.inputs):
                interp.set_tensor(d["index"], x)
            for _ in range(steps):
                interp.invoke()
                for d, o in zip(order[1:], state_outs):
                    interp.set_tensor(d["index"], interp.get_tensor(o["index"]))
        run()
        return median_seconds(run, REPEATS) / steps, which


# ------------------------------------------------------------------------------ bounds
def read_bandwidth(nbytes: int) -> float:
    """Bytes/s streaming a float32 matrix of nbytes through BLAS sgemv (matrix @ vector reads
    every weight once, the batch-1 engine's access pattern), caches warm, one thread."""
    cols = 1024
    a = np.ones((max(1, nbytes // 4 // cols), cols), np.float32)
    v = np.ones(cols, np.float32)
    reps = max(3, int(2e8 // max(nbytes, 1)))
    a @ v
    t = best_seconds(lambda: [a @ v for _ in range(reps)], 7)
    return a.nbytes * reps / t


def sgemm_rate() -> float:
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    b = np.random.default_rng(1).random((1024, 1024), dtype=np.float32)
    a @ b
    return 2 * 1024 ** 3 / best_seconds(lambda: a @ b, 7)


def model_costs(units):
    """(weight bytes streamed per step at batch 1, FLOPs per stream per step)."""
    floats = units[0] * 4 * units[0]  # layer 0: the embedding @ W part is a table lookup
    flops = 2 * units[0] * 4 * units[0]
    for a, b in zip(units, units[1:]):
        floats += (a + b) * 4 * b
        flops += 2 * (a + b) * 4 * b
    floats += units[-1] * VOCAB
    flops += 2 * units[-1] * VOCAB
    return floats * 4, flops


def main() -> int:
    from musgen import _backend
    from musgen.engine._random import random_model_dir
    from musgen.modeldir import load_model_dir

    tf, keras = import_keras()
    has_cpp = _backend.has_cpp()
    peak = sgemm_rate()
    cores = os.cpu_count()
    print(f"musgen engine benchmark: vocabulary {VOCAB}, embedding {EMB}; {cores} cores; "
          f"NumPy sgemm {peak / 1e9:.1f} GFLOP/s; C++ kernels "
          f"{_backend.core().LstmEngine.available_kernels()[0] if has_cpp else 'n/a'}")
    with tempfile.TemporaryDirectory() as tmp:
        for u in SIZES:
            units = [u, u]
            mdir = random_model_dir(Path(tmp) / f"m{u}", vocab_size=VOCAB, embedding_dim=EMB,
                                    lstm_units=units, seed=0, scale=1.0)
            _, tensors = load_model_dir(mdir)
            wbytes, flops = model_costs(units)
            bw = read_bandwidth(wbytes)
            peak = max(peak, sgemm_rate())  # re-measured beside each model: a shared machine
            print(f"\n== 2x{u} LSTM: {wbytes / 2**20:.1f} MiB of weights per step, "
                  f"{flops / 1e6:.2f} MFLOP per token; read bandwidth at that size "
                  f"{bw / 1e9:.1f} GB/s")
            for batch in BATCHES:
                steps = steps_for(batch, u)
                res = {}
                if has_cpp:
                    res["musgen C++ 1 thread"] = bench_musgen(mdir, batch, steps, "cpp", 1)
                    res["musgen C++ 2 threads"] = bench_musgen(mdir, batch, steps, "cpp", 2)
                res["musgen NumPy"] = bench_musgen(mdir, batch, max(4, steps // 10), "python")
                tools = StepTools(tf, keras, tensors, units, batch)
                res["Keras tf.function"] = tools.time_tf(max(4, steps // 5))
                try:
                    res["ONNX Runtime 1 thread"] = tools.time_onnx(max(4, steps // 2), 1)
                except Exception as exc:  # report and go on: the other rows still compare
                    print(f"  ONNX Runtime failed: {type(exc).__name__}: {exc}")
                try:
                    t, which = tools.time_litert(max(4, steps // 2), 1)
                    res[f"LiteRT ({which}) 1 thread"] = t
                except Exception as exc:
                    print(f"  LiteRT failed: {type(exc).__name__}: {exc}")
                bound = (wbytes / bw) if batch == 1 else batch * flops / peak
                base = res.get("musgen C++ 1 thread")
                print(f"  batch {batch:3d} ({steps} steps)   bound {bound * 1e6:9.1f} us/step "
                      f"({'weights / bandwidth' if batch == 1 else 'FLOPs / sgemm peak'})")
                for name, t in res.items():
                    extra = ""
                    if base is not None and name != "musgen C++ 1 thread":
                        extra = f"  musgen C++ is {t / base:5.2f}x faster"
                    print(f"    {name:30s} {t * 1e6:10.1f} us/step {batch / t:12,.0f} tok/s"
                          + extra)
                if base is not None:
                    if batch == 1:
                        print(f"    C++ / bound: {base / bound:.2f}x the bandwidth bound")
                    else:
                        print(f"    C++ reaches {batch * flops / base / peak:.0%} of NumPy "
                              "sgemm peak (forward + sampling)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
