"""Engine speed: musgen's C++ and NumPy engines against Keras (tf.function), ONNX Runtime and
LiteRT running the same weights as a single-step model, plus the machine's bounds.

For 2x256 and 2x512 LSTMs (embedding 64, vocabulary 300) it prints time per generated token at
batch 1 and tokens/s at batch 1, 16 and 256. musgen's numbers are whole sampling loops
(forward, softmax, sampling); the other tools' are the forward step alone (their best case).
Every tool runs on one thread, then musgen, ONNX Runtime and LiteRT on two (TensorFlow's thread
pools are fixed once per process, so Keras runs on one). musgen's opt-in float16 weights are
timed beside float32, and their accuracy is measured on the shipped model over real music.

Bounds, one core, best of repeats: weight bytes per step / the read bandwidth of a buffer that
size (batch 1), and FLOPs per step / the multiply-add peak (large batches), both measured by
probes in musgen's core with this CPU's best instructions; NumPy's sgemm rate is printed too.
Tool timings are medians of repeats; on a shared or throttled machine they vary run to run.
The first line names the CPU model and the instruction set the C++ kernels used, so a figure
is never quoted for another machine. ``--quick``: batch 1 and 256 of the 2x256 model, a few
steps, one repeat (checks the script works; not figures). ``--sizes``/``--batches`` pick rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

# One BLAS thread: the bounds below are per core, compared with the C++ engine on 1 thread.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

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
    """Enough steps for ~0.3 s of work at a plausible speed, at least 8 (4 with --quick)."""
    if REPEATS == 1:
        return 4
    return max(8, int(3e5 / (batch * (units / 256) ** 2)) // 100)


# ------------------------------------------------------------------------------ musgen
def bench_musgen(mdir, batch: int, steps: int, backend: str, threads=None,
                 precision: str = "float32") -> float:
    from musgen import engine

    eng = engine.load(mdir, backend=backend, precision=precision)
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
    """Bytes/s one thread reads from a warm buffer of nbytes: musgen's core probe (a vectorized
    streaming sum), or, without the extension, BLAS sgemv over a matrix that size (slower: it
    measures too low a bound)."""
    from musgen import _backend

    if _backend.has_cpp() and hasattr(_backend.core(), "probe_read_bandwidth"):
        return _backend.core().probe_read_bandwidth(nbytes, 0.5)
    cols = 1024
    a = np.ones((max(1, nbytes // 4 // cols), cols), np.float32)
    v = np.ones(cols, np.float32)
    reps = max(3, int(2e8 // max(nbytes, 1)))
    a @ v
    t = best_seconds(lambda: [a @ v for _ in range(reps)], 7)
    return a.nbytes * reps / t


def fma_peak() -> float:
    """FLOP/s of one thread's multiply-adds in registers (musgen's core probe), or the NumPy
    sgemm rate without the extension."""
    from musgen import _backend

    if _backend.has_cpp() and hasattr(_backend.core(), "probe_fma_peak"):
        return _backend.core().probe_fma_peak(0.5)
    return sgemm_rate()


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


def precision_accuracy(paths) -> dict:
    """Float16 against float32 on the shipped model, teacher-forced over real pieces: logit
    error, test NLL per token, and how often the two choose the same token (greedy, and
    sampled at temperature 1 with the same Philox uniform) under the codec's grammar."""
    from musgen import codec, engine, midi
    from musgen.engine.philox import philox_uniform
    from musgen.engine.sampling import sample_token
    from musgen.generation import default_model_dir

    d = default_model_dir()
    e32 = engine.load(d, backend="cpp")
    e16 = engine.load(d, backend="cpp", precision="float16")
    cfg = e32.codec
    g = codec.grammar(cfg)
    nll = {"float32": 0.0, "float16": 0.0}
    n = greedy = sampled = 0
    max_err = 0.0
    for path in paths:
        tok = codec.encode(midi.read(path), cfg)
        inp, target = tok[None, :-1], tok[1:]
        logits = {"float32": e32.logits(inp)[0], "float16": e16.logits(inp)[0]}
        max_err = max(max_err, float(np.max(np.abs(logits["float16"] - logits["float32"]))))
        for name, L in logits.items():
            x = L.astype(np.float64)
            lse = np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)) + x.max(1)
            nll[name] += float(np.sum(lse - x[np.arange(len(target)), target]))
        state = g.walk(tok[:1])
        for t in range(len(target)):
            allowed = g.table[state] >= 0
            if not g.can_end[state]:
                allowed[cfg.eos_id] = False
            u = float(philox_uniform(np.uint64(7), np.uint32(n), np.uint32(0)))
            a, b = (sample_token(logits[k][t], allowed, 0.0, 0, 1.0, u) for k in logits)
            greedy += a == b
            a, b = (sample_token(logits[k][t], allowed, 1.0, 0, 1.0, u) for k in logits)
            sampled += a == b
            state = g.table[state, target[t]]
            n += 1
    return dict(pieces=len(paths), tokens=n, max_logit_error=max_err,
                nll32=nll["float32"] / n, nll16=nll["float16"] / n,
                greedy_agreement=greedy / n, sampled_agreement=sampled / n)


def real_pieces() -> list:
    """The JSB Chorales test split the shipped model was scored on (the data folder:
    MUSGEN_DATA, default ../shared/data), else the five test pieces in tests/data."""
    root = Path(__file__).resolve().parents[1]
    data = Path(os.environ.get("MUSGEN_DATA", root.parent / "shared" / "data"))
    full = sorted((data / "corpora" / "jsb_chorales" / "quarter" / "test").glob("*.mid"))
    return full or sorted((root / "tests" / "data" / "corpus_small" / "test").glob("*.mid"))


def main(argv=None) -> int:
    global SIZES, BATCHES, REPEATS
    from musgen import _backend
    from musgen.benchmark import cpu_model
    from musgen.engine._random import random_model_dir
    from musgen.modeldir import load_model_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="2x256 at batch 1 and 256, few steps, one repeat")
    parser.add_argument("--sizes", default=None, help="LSTM sizes, e.g. 256,512")
    parser.add_argument("--batches", default=None, help="batches, e.g. 1,16,256")
    args = parser.parse_args(argv)
    if args.quick:
        SIZES, BATCHES, REPEATS = [256], [1, 256], 1
    if args.sizes:
        SIZES = [int(v) for v in args.sizes.split(",")]
    if args.batches:
        BATCHES = [int(v) for v in args.batches.split(",")]
    tf, keras = import_keras()
    has_cpp = _backend.has_cpp()
    sgemm = sgemm_rate()
    peak = fma_peak()
    cores = os.cpu_count()
    kernels = _backend.core().LstmEngine.available_kernels()[0] if has_cpp else "n/a"
    print(f"CPU: {cpu_model()}; {cores} cores; C++ engine kernels: {kernels} "
          f"(instruction set used); load average {os.getloadavg()[0]:.1f}")
    print(f"musgen engine benchmark: vocabulary {VOCAB}, embedding {EMB}; "
          f"multiply-add peak {peak / 1e9:.1f} GFLOP/s, NumPy sgemm {sgemm / 1e9:.1f} GFLOP/s "
          f"(one thread)")
    if has_cpp and not args.quick:
        acc = precision_accuracy(real_pieces())
        print(f"\nfloat16 weights on the shipped model, {acc['pieces']} JSB test pieces "
              f"({acc['tokens']} tokens, teacher-forced): max |logit error| "
              f"{acc['max_logit_error']:.2e}; NLL/token {acc['nll16']:.5f} vs float32 "
              f"{acc['nll32']:.5f}; same token as float32: greedy "
              f"{acc['greedy_agreement']:.2%}, sampled (T=1, same uniforms) "
              f"{acc['sampled_agreement']:.2%}")
    with tempfile.TemporaryDirectory() as tmp:
        for u in SIZES:
            units = [u, u]
            mdir = random_model_dir(Path(tmp) / f"m{u}", vocab_size=VOCAB, embedding_dim=EMB,
                                    lstm_units=units, seed=0, scale=1.0)
            _, tensors = load_model_dir(mdir)
            wbytes, flops = model_costs(units)
            bw = read_bandwidth(wbytes)
            peak = max(peak, fma_peak())  # re-measured beside each model: a shared machine
            print(f"\n== 2x{u} LSTM: {wbytes / 2**20:.1f} MiB of weights per step, "
                  f"{flops / 1e6:.2f} MFLOP per token; read bandwidth at that size "
                  f"{bw / 1e9:.1f} GB/s")
            for batch in BATCHES:
                steps = steps_for(batch, u)
                res = {}
                if has_cpp:
                    for th in (1, 2):
                        for prec in ("float32", "float16"):
                            name = f"musgen C++ {th} thread{'s' if th > 1 else ''}" + (
                                " float16" if prec == "float16" else "")
                            res[name] = bench_musgen(mdir, batch, steps, "cpp", th, prec)
                res["musgen NumPy"] = bench_musgen(mdir, batch, max(4, steps // 10), "python")
                tools = StepTools(tf, keras, tensors, units, batch)
                res["Keras tf.function 1 thread"] = tools.time_tf(max(4, steps // 5))
                for th in (1, 2):
                    label = f"{th} thread{'s' if th > 1 else ''}"
                    try:
                        res[f"ONNX Runtime {label}"] = tools.time_onnx(max(4, steps // 2), th)
                    except Exception as exc:  # report and go on: the other rows still compare
                        print(f"  ONNX Runtime failed: {type(exc).__name__}: {exc}")
                    try:
                        t, which = tools.time_litert(max(4, steps // 2), th)
                        res[f"LiteRT ({which}) {label}"] = t
                    except Exception as exc:
                        print(f"  LiteRT failed: {type(exc).__name__}: {exc}")
                bound = (wbytes / bw) if batch == 1 else batch * flops / peak
                print(f"  batch {batch:3d} ({steps} steps)   bound {bound * 1e6:9.1f} us/step "
                      f"({'weights / bandwidth' if batch == 1 else 'FLOPs / multiply-add peak'})")
                for name, t in res.items():
                    # each row against the musgen float32 row with the same thread count
                    ref = "musgen C++ 2 threads" if "2 thread" in name else "musgen C++ 1 thread"
                    base = res.get(ref)
                    extra = ""
                    if base is not None and name != ref:
                        extra = f"  {t / base:5.2f}x the time of {ref}"
                    print(f"    {name:34s} {t * 1e6:10.1f} us/step {batch / t:12,.0f} tok/s"
                          + extra)
                base = res.get("musgen C++ 1 thread")
                if base is not None:
                    if batch == 1:
                        print(f"    C++ 1 thread / bound: {base / bound:.2f}x the bandwidth "
                              "bound (float32)")
                    else:
                        print(f"    C++ 1 thread reaches {batch * flops / base / peak:.0%} of the "
                              f"multiply-add peak, {batch * flops / base / sgemm:.0%} of NumPy "
                              "sgemm (forward + sampling)")
                for th in ("1 thread", "2 threads"):
                    ours, ort = res.get(f"musgen C++ {th}"), res.get(f"ONNX Runtime {th}")
                    if ours is not None and ort is not None:
                        goal = " (target >= 1.1)" if batch == 256 else ""
                        print(f"    ratio: musgen C++ (sampling included) / ONNX Runtime "
                              f"(forward only), {th}, 2x{u} batch {batch}: "
                              f"{ort / ours:.2f}x{goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
