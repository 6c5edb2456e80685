"""The batch around the sampling loop: finished streams leave it (results unchanged per seed,
every stepped row useful), outputs grow with the tokens made (memory bounded by them, not by
the length asked), long primers are capped and warmed up layer by layer with the same numbers
as stepping them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from musgen import _backend, codec
from musgen.engine._random import random_model_dir
from musgen.errors import GenerationWarning
from musgen.generation import generate, generate_with_report, token_tables
from musgen.modeldir import load_model_dir, save_model_dir

from conftest import engine_on, loop_backends

CPP = _backend.has_cpp() and hasattr(_backend.core(), "LstmEngine")
needs_cpp = pytest.mark.skipif(not CPP, reason="needs the C++ engine")


@pytest.fixture(scope="module")
def config():
    return codec.default_config()


def _model(path, config, eos_bias, units=(24, 16), seed=7):
    d = random_model_dir(path, vocab_size=config.vocab_size, embedding_dim=12,
                         lstm_units=list(units), seed=seed, scale=1.2, codec=config.to_dict())
    cfg, t = load_model_dir(d)
    t["head/bias"][config.eos_id] = eos_bias
    return save_model_dir(d, cfg, t)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, config):
    """A model whose pieces end at very different lengths (EOS is likely but not certain)."""
    return _model(tmp_path_factory.mktemp("batch") / "mixed", config, 1.5)


def _streams(path, backend, config, n, **kw):
    eng = engine_on(path, backend)
    rng = np.random.default_rng(5)
    kw.setdefault("seed", [int(s) for s in rng.integers(0, 2**63, n)])
    kw.setdefault("temperature", rng.choice([0.0, 0.8, 1.0, 1.3], n).astype(np.float32))
    return eng.generate_tokens(n, primer=[config.bos_id], length=400, unit="tokens",
                               grammar=codec.grammar(config), eos_id=config.eos_id,
                               max_tokens=400, **kw)


@needs_cpp
def test_batch_finished_streams_leave_with_results_unchanged(mixed, config):
    """Mixed lengths: the C++ loop (one batch of 30, two threads' batches, a thread team for
    3 streams) and the emulated CUDA loop drop finished streams; every stream's tokens equal
    the NumPy loop's, which keeps them all to the end."""
    n = 30
    want = _streams(mixed, "python", config, n)
    lengths = sorted(len(t) for t in want)
    assert lengths[0] < 40 and lengths[-1] > 4 * lengths[0]  # lengths do differ
    runs = {"one thread": _streams(mixed, "cpp", config, n, threads=1),
            "two threads": _streams(mixed, "cpp", config, n, threads=2)}
    if "cuda-emulation" in loop_backends():
        runs["cuda emulation"] = _streams(mixed, "cuda-emulation", config, n)
    for name, got in runs.items():
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b, err_msg=name)
        np.testing.assert_array_equal(want.reasons, got.reasons)
    few = _streams(mixed, "python", config, 3, seed=[1, 2, 3], temperature=1.0)
    team = _streams(mixed, "cpp", config, 3, seed=[1, 2, 3], temperature=1.0, threads=4)
    for a, b in zip(few, team):
        np.testing.assert_array_equal(a, b)


@needs_cpp
def test_batch_every_stepped_row_makes_a_kept_token(mixed, config):
    """After the warm-up (whose logits give each stream's first token), each step computes only
    running streams: rows stepped = tokens - n exactly, on one thread, two, and a team."""
    for threads, n in ((1, 30), (2, 30), (4, 3)):
        out = _streams(mixed, "cpp", config, n, threads=threads)
        made = sum(len(t) for t in out)
        assert out.rows_stepped == made - n, threads
    if "cuda-emulation" in loop_backends():
        out = _streams(mixed, "cuda-emulation", config, 30)
        made = sum(len(t) for t in out)
        # the device steps whole 32-step chunks and gathers when a quarter of a batch is done
        assert made - 30 <= out.rows_stepped <= 2 * made


@pytest.mark.skipif(sys.platform != "linux", reason="address-space limits are set with "
                    "resource.setrlimit on Linux")
@pytest.mark.parametrize("length", ["1000000000 tokens", "200000000 notes"])
def test_batch_memory_follows_the_tokens_made(tmp_path, config, backend, length):
    """A huge length with a model that soon ends: the run fits an address space of 1.5 GB
    above what the loaded model takes (an output buffer sized by the length asked would take
    4 to 24 GB)."""
    model = _model(tmp_path / "short", config, 8.0)
    script = textwrap.dedent(f"""
        import resource, warnings
        import musgen
        from musgen import engine
        eng = engine.load({str(model)!r}, backend={backend!r})
        musgen.generate(eng, n=1, length="4 tokens", seed=1, allow_early_end=True)  # warm
        with open("/proc/self/status") as f:
            vm = [int(l.split()[1]) for l in f if l.startswith("VmSize")][0] * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + (3 << 29), resource.RLIM_INFINITY))
        r = musgen.generation.generate_with_report(eng, n=2, length={length!r}, seed=3,
                                                   allow_early_end=True)
        print([p.ended for p in r.pieces], [p.tokens for p in r.pieces])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "['early', 'early']" in done.stdout


# ---------------------------------------------------------------------------- primers
@pytest.fixture(scope="module")
def plain(tmp_path_factory, config):
    return _model(tmp_path_factory.mktemp("batch") / "plain", config, -40.0, seed=2)


def _long_primer(config, notes=150):
    """A primer of many onsets (Pitch, Velocity, Duration, TimeShift each)."""
    rng = np.random.default_rng(0)
    toks = [config.bos_id]
    for _ in range(notes):
        toks += [config.pitch_base + int(rng.integers(50, 80)), config.velocity_base + 10,
                 config.duration_base + 5, config.time_base + int(rng.integers(0, 12))]
    return np.array(toks, np.int32)


def test_batch_long_primer_continued_from_its_end(plain, config, backend):
    primer = _long_primer(config)
    with pytest.warns(GenerationWarning, match=r"primer: 601 tokens, more than "
                      r"max_primer_tokens=100: continuing from its last \d+ tokens"):
        report = generate_with_report(plain, n=2, length="10 notes", seed=4, primer=primer,
                                      max_primer_tokens=100, backend=backend, ending="none")
    # the kept primer: BOS, then the tokens from the first onset that fits
    cut = primer.size - 99
    while config.token_types[primer[cut]] != codec.TYPE_PITCH:
        cut += 1
    kept = np.concatenate([[config.bos_id], primer[cut:]])
    assert kept.size <= 100 and "primer" in report.primer_note
    again = generate(plain, n=2, length="10 notes", seed=4, primer=kept, backend=backend,
                     ending="none")
    for a, b in zip(report.scores, again):
        np.testing.assert_array_equal(a.notes, b.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # under the cap: used whole, no warning
        generate(plain, n=1, length="4 notes", seed=4, primer=primer, backend=backend,
                 max_primer_tokens=None)
    with pytest.raises(ValueError, match="max_primer_tokens: 1"):
        generate(plain, primer=primer, max_primer_tokens=1, backend=backend)


def test_batch_primer_cap_keeps_bars_and_parts():
    """A codec with bars: the cut is at a Bar, the header stays, and a cut whose first note
    would land in another part than it was in is passed over."""
    from musgen.generation import _cap_primer
    from test_engine_rules import ID, V2_NAMES, v2_grammar, v2_tables

    tables, grammar = v2_tables(), v2_grammar()
    header = [ID["BOS"], ID["Program_0"], ID["Program_40"], ID["Key_C"], ID["Tempo_90"],
              ID["TimeSig_4_4"]]
    bar_a = [ID["Bar"], ID["Part_1"], ID["Pitch_62"], ID["Duration_2"], ID["TimeShift_4"],
             ID["Pitch_64"], ID["Duration_1"]]  # ends in part 1
    bar_b = [ID["Bar"], ID["Pitch_60"], ID["Duration_2"], ID["TimeShift_8"], ID["Part_0"],
             ID["Pitch_65"], ID["Duration_1"]]  # starts in part 1 without a Part token
    tokens = np.array(header + bar_a * 5 + bar_b + bar_a, np.int32)
    grammar_tokens = [V2_NAMES[v] for v in tokens]
    assert grammar_tokens[len(header)] == "Bar"
    kept, dropped, beats = _cap_primer(tokens, 20, tables, grammar)
    assert kept.tolist()[:len(header)] == header and kept[len(header)] == ID["Bar"]
    # bar_b's Bar is passed over (its first note would fall in part 0): the cut is at bar_a
    assert kept.tolist()[len(header):] == bar_a and kept.size <= 20 and dropped > 0
    with pytest.raises(ValueError, match="no cut point"):
        _cap_primer(tokens, 8, tables, grammar)


@needs_cpp
@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_batch_warm_up_equals_stepping(tmp_path, precision):
    """The layer-by-layer warm-up (input projections as one product per time block) gives
    the very logits of stepping token by token, on every kernel set, with several time
    blocks, for distinct and for shared primers."""
    core = _backend.core()
    units = [40, 24, 300]  # a layer whose rows pass the kernels' K blocking
    d = random_model_dir(tmp_path / "m", vocab_size=60, embedding_dim=12, lstm_units=units,
                         seed=1, scale=1.3)
    _, tensors = load_model_dir(d)
    weights = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    rng = np.random.default_rng(0)
    for kernels in core.LstmEngine.available_kernels():
        eng = core.LstmEngine("lstm_lm", units, weights, "relu", kernels, precision)
        for batch, steps in ((1, 7), (1, 9), (3, 50), (4, 300)):
            tok = rng.integers(0, 60, (batch, steps)).astype(np.int32)
            want = eng.logits(tok)[:, -1]
            for block_floats in (0, 100, 5000):
                got = eng.warm_up_logits(tok, 2, block_floats)
                np.testing.assert_array_equal(got, want, err_msg=f"{kernels} {block_floats}")
            same = np.repeat(tok[:1], 3, axis=0)
            np.testing.assert_array_equal(eng.warm_up_logits(same), eng.logits(same)[:, -1])


def test_batch_long_primer_same_tokens_on_every_backend(plain, config):
    """A 600-token primer (the warm-up's batched path) continued on every implementation."""
    primer = _long_primer(config)
    runs = [generate_with_report(plain, n=3, length="12 notes", seed=8, primer=primer,
                                 backend=b) for b in ("python", "cpp") if b != "cpp" or CPP]
    for other in runs[1:]:
        for a, b in zip(runs[0].scores, other.scores):
            np.testing.assert_array_equal(a.notes, b.notes)
    assert token_tables(config).steps_per_beat == 12


@needs_cpp
def test_batch_long_primer_in_a_thread_team(tmp_path, config):
    """Fewer streams than threads (a team shares each step; layers of 8 panels or more) starts
    from the layer-by-layer warm-up of a long primer: the same tokens as one thread stepping
    alone, for one stream and for streams sharing the primer."""
    from musgen import engine

    wide = _model(tmp_path / "wide", config, -40.0, units=(64, 72), seed=4)
    eng = engine.load(wide, backend="cpp")
    primer = _long_primer(config, notes=60)
    for n in (1, 2):
        kw = dict(primer=primer, length=60, grammar=codec.grammar(config),
                  eos_id=config.eos_id, seed=[5, 6][:n], max_tokens=200)
        alone = eng.generate_tokens(n, threads=1, **kw)
        team = eng.generate_tokens(n, threads=4, **kw)
        for a, b in zip(alone, team):
            np.testing.assert_array_equal(a, b)
        assert all(len(t) >= 60 for t in alone)
