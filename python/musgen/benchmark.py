"""``musgen bench``: how fast a model generates on this device, for every backend this install
has: latency per step at batch 1 (p50, p99), tokens/s at batch 1, 16, 256 and the largest batch
worth running, and the real-time factor (seconds of music made per second), with the CPU and
GPU named. Generation runs as ``generate`` runs it (the codec's grammar, sampling at T=1).

The measurements are plain functions (``device_description``, ``step_latencies``,
``tokens_per_second``, ``real_time_factor``) that ``run_benchmark`` strings together; the CLI
(``musgen.cli.bench``) only prints.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

__all__ = ["device_description", "cpu_model", "run_benchmark", "format_report",
           "step_latencies", "tokens_per_second", "real_time_factor"]

#: Batches timed on every backend; the largest worth running is searched above the last.
BATCHES = (1, 16, 256)


def cpu_model() -> str:
    """The CPU's marketing name: /proc/cpuinfo (x86 "model name"; on ARM boards such as a
    Jetson, the device-tree model and the CPU part), else the platform module's answer."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    try:
        board = Path("/proc/device-tree/model").read_text(errors="replace").strip("\x00 \n")
        if board:
            return f"{board} ({platform.machine()})"
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_description() -> dict:
    """The machine a figure belongs to: CPU model, cores, the engine's instruction set, GPU."""
    from . import _backend

    out = {"cpu": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine(),
           "engine_kernels": None, "gpu": None}
    if _backend.has_cpp():
        kernels = _backend.core().LstmEngine.available_kernels()
        out["engine_kernels"] = kernels[0] if kernels else None
        ok, why = _backend.cuda_status()
        out["gpu"] = why if ok else None
        out["cuda_status"] = why
    return out


_ARGS: dict = {}


def _generation_args(engine) -> dict:
    """What ``generate`` hands the engine for a token model: grammar, EOS, note/clock tables
    (built once per engine, outside the timed calls)."""
    from . import codec as codec_mod

    if id(engine) in _ARGS:
        return _ARGS[id(engine)]
    codec = engine.codec
    types = np.asarray(codec.token_types)
    note_types = [codec_mod.TYPE_PITCH, getattr(codec_mod, "TYPE_DRUM_PITCH",
                                                codec_mod.TYPE_PITCH)]
    _ARGS[id(engine)] = {"grammar": codec_mod.grammar(codec), "eos_id": codec.eos_id,
                         "clock_steps": np.asarray(codec.token_steps, dtype=np.int32),
                         "is_note": np.isin(types, note_types).astype(np.uint8)}
    return _ARGS[id(engine)]


def _run(engine, batch: int, steps: int, threads, seed: int = 1) -> list:
    """``steps`` tokens for each of ``batch`` streams; EOS is never allowed to end a stream
    early (eos_id None), so every stream makes exactly ``steps`` tokens."""
    args = _generation_args(engine)
    return engine.generate_tokens(batch, primer=[engine.codec.bos_id], length=steps,
                                  unit="tokens", seed=seed, grammar=args["grammar"],
                                  eos_id=None, max_tokens=steps, threads=threads)


def step_latencies(engine, *, samples: int, threads=1) -> np.ndarray:
    """Seconds per generation step at batch 1, one sample per call of one step (the primer
    token in, one token sampled): what an application streaming token by token waits, call
    overhead included. One thread by default: a call on several threads starts a team of
    threads, which a one-token call would mostly time."""
    _run(engine, 1, 1, threads)
    out = np.empty(samples)
    for i in range(samples):
        t0 = time.perf_counter()
        _run(engine, 1, 1, threads, seed=i)
        out[i] = time.perf_counter() - t0
    return out


def tokens_per_second(engine, batch: int, *, seconds: float, threads=None) -> float:
    """Tokens/s of ``batch`` streams (median of 3 runs of about ``seconds`` / 3 each)."""
    _run(engine, batch, 2, threads)
    t0 = time.perf_counter()
    _run(engine, batch, 8, threads)
    per_step = max((time.perf_counter() - t0) / 8, 1e-7)
    steps = int(min(4096, max(8, seconds / 3 / per_step)))
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        _run(engine, batch, steps, threads)
        times.append(time.perf_counter() - t0)
    return batch * steps / float(np.median(times))


def real_time_factor(model, backend: str, batch: int, *, beats: int, threads=None) -> float:
    """Seconds of music made per second of generating ``batch`` pieces of ``beats`` beats
    (``generate`` end to end: sampling, decoding to Scores; music timed through each piece's
    tempo map)."""
    from .generation import generate

    generate(model, n=batch, length="4 beats", seed=0, backend=backend, threads=threads)
    t0 = time.perf_counter()
    scores = generate(model, n=batch, length=f"{beats} beats", seed=1, backend=backend,
                      threads=threads)
    wall = time.perf_counter() - t0
    return sum(s.duration_seconds for s in scores) / wall


def _largest_batch(engine, start: int, best: float, *, seconds: float, threads, cap: int,
                   report) -> tuple[int, float]:
    """Double the batch past ``start`` while tokens/s still grows by 5% or more (and the
    machine has memory for it): the largest batch worth running."""
    batch, rate = start, best
    while batch * 2 <= cap:
        try:
            r = tokens_per_second(engine, batch * 2, seconds=seconds, threads=threads)
        except MemoryError:
            break
        report(f"batch {batch * 2}: {r:,.0f} tok/s")
        if r < 1.05 * rate:
            break
        batch, rate = batch * 2, r
    return batch, rate


def _backends(requested) -> list[str]:
    from . import _backend

    have = ["python"]
    if _backend.has_cpp():
        have.insert(0, "cpp")
        if _backend.cuda_status()[0]:
            have.insert(0, "cuda")
    if requested:
        missing = [b for b in requested if b not in have]
        if missing:
            from .errors import BackendUnavailableError

            raise BackendUnavailableError(f"backend {missing[0]!r} is not available in this "
                                          f"install (available: {', '.join(have)})")
        return list(requested)
    return have


def run_benchmark(model=None, *, backends=None, threads=None, quick: bool = False,
                  batches=BATCHES, max_batch: int | None = None,
                  report=lambda text: None) -> dict:
    """Measure every backend; ``report`` gets a line as each figure is known.

    ``batches`` are timed on every backend (the NumPy one: the first two), then the batch is
    doubled past the last while tokens/s grows by 5% or more, up to ``max_batch`` (default
    4096 on the CPU, 1024 with ``quick``, 16384 on a GPU).

    Returns a dict: ``model``, ``device`` (``device_description``), and per backend
    ``latency_p50_ms``, ``latency_p99_ms``, ``tokens_per_s`` {batch: rate},
    ``largest_batch``, ``rtf`` {batch: real-time factor}.
    """
    from .engine import load
    from .modelzoo import default_model_dir, resolve_model

    path = resolve_model(model) if model is not None else default_model_dir()
    seconds = 0.3 if quick else 2.0
    result = {"model": str(path), "device": device_description(), "quick": quick,
              "backends": {}}
    for name in _backends(backends):
        engine = load(path, backend=name)
        if engine.kind != "lstm_lm":
            raise ValueError(f"musgen bench: the model is of kind {engine.kind!r}; it times "
                             "token models (kind 'lstm_lm')")
        slow = name == "python"  # the NumPy reference: a few small batches only
        row: dict = {"tokens_per_s": {}, "rtf": {}}
        lat = step_latencies(engine, samples=20 if (quick or slow) else 300,
                             threads=threads or 1)
        row["latency_p50_ms"] = float(np.percentile(lat, 50) * 1e3)
        row["latency_p99_ms"] = float(np.percentile(lat, 99) * 1e3)
        report(f"{name}: step latency at batch 1: p50 {row['latency_p50_ms']:.3f} ms, "
               f"p99 {row['latency_p99_ms']:.3f} ms")
        for batch in (batches[:2] if slow else batches):
            rate = tokens_per_second(engine, batch, seconds=seconds / (3 if slow else 1),
                                     threads=threads)
            row["tokens_per_s"][batch] = rate
            report(f"{name}: batch {batch}: {rate:,.0f} tok/s")
        last = max(row["tokens_per_s"])
        if not slow:
            cap = max_batch or (16384 if name == "cuda" else (1024 if quick else 4096))
            big, rate = _largest_batch(engine, last, row["tokens_per_s"][last], seconds=seconds,
                                       threads=threads, cap=cap, report=lambda t, n=name:
                                       report(f"{n}: {t}"))
            row["tokens_per_s"][big] = rate
            row["largest_batch"] = big
        else:
            row["largest_batch"] = last
        beats = 8 if (quick or slow) else 32
        for batch in sorted({1, row["largest_batch"]}):
            row["rtf"][batch] = real_time_factor(engine, name, batch, beats=beats,
                                                 threads=threads)
            report(f"{name}: real-time factor at batch {batch}: {row['rtf'][batch]:,.1f}x")
        result["backends"][name] = row
    return result


def format_report(result: dict) -> str:
    """The table ``musgen bench`` prints."""
    d = result["device"]
    lines = [f"model: {result['model']}",
             (f"CPU: {d['cpu']} ({d['cores']} cores, {d['machine']}; engine kernels "
             f"{d['engine_kernels'] or 'none (pure Python)'})"),
             f"GPU: {d['gpu'] or 'none used (' + d.get('cuda_status', 'no C++ extension') + ')'}"]
    batches = sorted({b for r in result["backends"].values() for b in r["tokens_per_s"]})
    head = (f"{'backend':<8} {'p50 ms':>8} {'p99 ms':>8} "
            + " ".join(f"{'b=' + str(b) + ' tok/s':>14}" for b in batches)
            + f" {'largest':>8} {'RTF b=1':>9} {'RTF max':>9}")
    lines += ["", head, "-" * len(head)]
    for name, r in result["backends"].items():
        rates = " ".join(f"{r['tokens_per_s'][b]:>14,.0f}" if b in r["tokens_per_s"]
                         else f"{'-':>14}" for b in batches)
        rtf_max = r["rtf"].get(r["largest_batch"], r["rtf"][1])
        lines.append(f"{name:<8} {r['latency_p50_ms']:>8.3f} {r['latency_p99_ms']:>8.3f} "
                     f"{rates} {r['largest_batch']:>8} {r['rtf'][1]:>8.1f}x {rtf_max:>8.1f}x")
    lines.append("")
    lines.append("latency: one step (one token in, one sampled) per call at batch 1 on one "
                 "thread (--threads: that many), call overhead included; tok/s: whole sampling "
                 "loops; RTF: seconds of music per second of generate() at batch 1 and at the "
                 "largest batch")
    if result.get("quick"):
        lines.append("--quick: short runs, rough figures")
    return "\n".join(lines)
