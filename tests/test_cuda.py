"""CUDA backend checks that need no GPU: clear errors where no device is usable, and host runs
of the __host__ __device__ Philox and sampling code the kernels execute, compared with the
CPU engine and the NumPy statement of the rules. (Device tests: test_cuda_device.py.)"""

from __future__ import annotations

import re

import numpy as np
import pytest

from musgen import _backend, codec, engine
from musgen.cli import main
from musgen.engine._random import random_model_dir
from musgen.engine.philox import philox_uniform
from musgen.engine.sampling import sample_token
from musgen.errors import BackendUnavailableError, CodecError
from musgen.generation import generate

CUDA_OK, CUDA_WHY = _backend.cuda_status()
no_device = pytest.mark.skipif(CUDA_OK, reason="a usable CUDA device is present: the "
                               "no-device error path cannot occur here")
HAS_SHARED = _backend.has_cpp() and hasattr(_backend.core(), "cuda_sample_reference")
needs_cuda_build = pytest.mark.skipif(not HAS_SHARED, reason="this build has no CUDA backend "
                                      "(the shared device code is compiled only with CUDA)")


@pytest.fixture(scope="module")
def lm_model(tmp_path_factory):
    config = codec.default_config()
    return random_model_dir(tmp_path_factory.mktemp("cuda") / "m", vocab_size=config.vocab_size,
                            embedding_dim=8, lstm_units=[16, 12], seed=3, scale=1.2,
                            codec=config.to_dict())


def test_cuda_status_gives_a_reason():
    ok, why = _backend.cuda_status()
    assert isinstance(ok, bool) and isinstance(why, str) and len(why) > 10
    if _backend.has_cpp() and _backend.core().HAS_CUDA:
        assert tuple(_backend.core().cuda_runtime_status()) == (ok, why)


@no_device
def test_cuda_load_raises_with_the_reason(lm_model):
    with pytest.raises(BackendUnavailableError, match=re.escape(CUDA_WHY)):
        engine.load(lm_model, backend="cuda")


@no_device
def test_cuda_env_backend_raises_with_the_reason(lm_model, monkeypatch):
    monkeypatch.setenv("MUSGEN_BACKEND", "cuda")
    with pytest.raises(BackendUnavailableError, match="CUDA backend is not available"):
        engine.load(lm_model)


@no_device
def test_cuda_generate_raises_with_the_reason(lm_model):
    with pytest.raises(BackendUnavailableError, match=re.escape(CUDA_WHY)):
        generate(lm_model, n=1, length="8 tokens", seed=1, backend="cuda")


@no_device
def test_cuda_cli_prints_the_reason(lm_model, tmp_path, capsys):
    rc = main(["generate", str(lm_model), "-o", str(tmp_path / "out.mid"), "--length", "8 tokens",
               "--backend", "cuda", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "musgen generate: error: the CUDA backend is not available" in err and CUDA_WHY in err
    assert not (tmp_path / "out.mid").exists()


@needs_cuda_build
def test_cuda_shared_philox_matches_cpu_and_numpy():
    core = _backend.core()
    rng = np.random.default_rng(5)
    seeds = [0, 1, 2**32 - 1, 2**32, 2**64 - 1] + [int(s) for s in rng.integers(0, 2**63, 40)]
    for seed in seeds:
        steps = rng.integers(0, 2**32, 8, dtype=np.uint64)
        streams = rng.integers(0, 9000, 8)
        want = philox_uniform(np.uint64(seed), steps.astype(np.uint32), streams.astype(np.uint32))
        for t, s, w in zip(steps, streams, want):
            got = core.cuda_philox_uniform(seed, int(t), int(s))
            assert got == core.philox_uniform(seed, int(t), int(s)) == float(w)


def _random_case(rng, V):
    """Logits with deliberate ties (quantized values), a random grammar row, random settings."""
    logits = (rng.integers(-6, 7, V) * 0.5 + (rng.random(V) < 0.5) * rng.random(V)
              ).astype(np.float32)
    row = np.where(rng.random(V) < rng.choice([0.2, 0.7, 1.0]), 0, -1).astype(np.int32)
    eos = int(rng.integers(-1, V))
    can_end = bool(rng.random() < 0.5)
    temp = float(rng.choice([0.0, 0.3, 1.0, 1.7]))
    top_k = int(rng.choice([0, 1, 2, 5, V]))
    top_p = float(rng.choice([1.0, 0.95, 0.5, 0.1]))
    return logits, row, eos, can_end, np.float32(temp), top_k, np.float32(top_p)


@needs_cuda_build
def test_cuda_shared_sampling_rule_matches_numpy_statement():
    core = _backend.core()
    rng = np.random.default_rng(11)
    cases = none_allowed = 0
    for _ in range(3000):
        V = int(rng.choice([1, 3, 17, 130]))
        logits, row, eos, can_end, temp, top_k, top_p = _random_case(rng, V)
        u = float(rng.random())
        allowed = (row >= 0) & ((np.arange(V) != eos) | can_end)
        want = sample_token(logits, allowed, float(temp), top_k, float(top_p), u)
        got = core.cuda_sample_reference(logits, row, can_end, eos, float(temp), top_k,
                                         float(top_p), u)
        assert got == want, (V, temp, top_k, top_p, u)
        cases += 1
        none_allowed += want == -1
    assert cases == 3000 and 0 < none_allowed < 600


def _toy_grammar(V):
    """State 0 allows only BOS (0); state 1: even ids -> 2, EOS (V-1) can end; state 2: odd -> 1."""
    table = np.full((3, V), -1, np.int32)
    table[0, 0] = 1
    ids = np.arange(1, V - 1)
    table[1, ids[ids % 2 == 0]] = 2
    table[2, ids[ids % 2 == 1]] = 1
    table[1, V - 1] = 1
    return table, np.array([False, True, False])


@needs_cuda_build
def test_cuda_shared_loop_reproduces_cpu_engine(tmp_path):
    """Replay the device loop on the host: CPU logits of each stream's own prefix, the shared
    Philox and sampling code, the kernel's stop rule -> exactly the CPU engine's tokens."""
    if not hasattr(_backend.core(), "LstmEngine"):
        pytest.skip("needs the C++ CPU engine")
    core = _backend.core()
    V = 41
    d = random_model_dir(tmp_path / "m", vocab_size=V, embedding_dim=8, lstm_units=[19, 16],
                         seed=1, scale=1.5)
    eng = engine.load(d, backend="cpp")
    table, can_end = _toy_grammar(V)

    class G:
        pass

    g = G()
    g.table, g.start_state, g.can_end = table, 0, can_end
    n, length = 16, 20
    rng = np.random.default_rng(2)
    temps = rng.choice([0.0, 0.7, 1.0, 1.5], n).astype(np.float32)
    ks = rng.choice([0, 2, 6], n).astype(np.int32)
    ps = rng.choice([1.0, 0.9, 0.6], n).astype(np.float32)
    seeds = [int(s) for s in rng.integers(0, 2**63, n)]
    out = eng.generate_tokens(n, primer=[0], length=length, grammar=g, eos_id=V - 1,
                              temperature=temps, top_k=ks, top_p=ps, seed=seeds)
    for s in range(n):
        toks = out[s]
        logits = eng.logits(np.concatenate([[0], toks]).astype(np.int32))[0]
        state, replay = 1, []
        for t in range(len(toks)):
            u = core.cuda_philox_uniform(seeds[s], t, s)
            v = core.cuda_sample_reference(logits[t], table[state], bool(can_end[state]), V - 1,
                                           float(temps[s]), int(ks[s]), float(ps[s]), u)
            replay.append(v)
            state = int(table[state, v])
            if v == V - 1 or (len(replay) >= length and can_end[state]):
                break
        np.testing.assert_array_equal(replay, toks)
    assert any(t[-1] == V - 1 for t in out) and any(len(t) >= length for t in out)


@needs_cuda_build
@pytest.mark.parametrize("batch,steps", [(1, 9), (3, 9), (15, 5), (16, 5), (70, 4), (1030, 2)])
def test_cuda_emulated_kernels_match_cpu_logits(tmp_path, batch, steps):
    """The layer kernels' __host__ __device__ bodies, run for every block and thread on the host
    (warp-per-unit matvec below 16 rows, 64-row GEMM tiles below 1024, 128-row tiles above),
    on the packed weights the CUDA engine uploads -> the CPU engine's logits."""
    if not hasattr(_backend.core(), "LstmEngine"):
        pytest.skip("needs the C++ CPU engine")
    from musgen.modeldir import load_model_dir

    core = _backend.core()
    shapes = [dict(vocab_size=41, embedding_dim=8, lstm_units=[19, 16]),
              dict(vocab_size=203, embedding_dim=24, lstm_units=[130, 67, 33])]
    for i, shape in enumerate(shapes):
        d = random_model_dir(tmp_path / f"m{i}", seed=i, scale=1.2, **shape)
        config, tensors = load_model_dir(d)
        tok = np.random.default_rng(batch).integers(0, shape["vocab_size"], (batch, steps))
        tok = tok.astype(np.int32)
        want = engine.load(d, backend="cpp").logits(tok)
        got = core.cuda_emulate_logits("lstm_lm", shape["lstm_units"], tensors, tok)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
        assert np.abs(want).max() > 0.1  # the comparison is not between near-zero outputs


class _EmulatedCuda:
    """Stands in for the CUDA engine behind the Engine facade: the device loop run on the host
    (emulated layer kernels, the sampling kernel's decision and bookkeeping code)."""

    def __init__(self, config, tensors):
        self.units = [int(u) for u in config["model"]["lstm_units"]]
        self.tensors = {k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()}

    def generate(self, *args, threads=0, progress=None, rules=None):
        return _backend.core().cuda_emulate_generate("lstm_lm", self.units, self.tensors, *args,
                                                     threads=threads, progress=progress,
                                                     rules=rules)


@needs_cuda_build
def test_cuda_emulated_loop_matches_cpu_engine(tmp_path):
    if not hasattr(_backend.core(), "LstmEngine"):
        pytest.skip("needs the C++ CPU engine")
    from musgen.modeldir import load_model_dir

    V = 41
    d = random_model_dir(tmp_path / "m", vocab_size=V, embedding_dim=8, lstm_units=[19, 16],
                         seed=1, scale=1.5)
    cpu = engine.load(d, backend="cpp")
    emu = engine.load(d, backend="cpp")
    emu._cpp = _EmulatedCuda(*load_model_dir(d))
    table, can_end = _toy_grammar(V)

    class G:
        pass

    g = G()
    g.table, g.start_state, g.can_end = table, 0, can_end
    is_note = (np.arange(V) % 2 == 0).astype(np.uint8)
    clock = np.where(np.arange(V) % 2 == 1, np.arange(V) % 5, 0).astype(np.int32)
    rng = np.random.default_rng(4)
    n = 24
    mixed = dict(temperature=rng.choice([0.0, 0.6, 1.0, 1.4], n).astype(np.float32),
                 top_k=rng.choice([0, 3, 10], n), top_p=rng.choice([1.0, 0.9, 0.5], n),
                 seed=[int(s) for s in rng.integers(0, 2**63, n)])
    cases = [dict(length=30, eos_id=V - 1, temperature=1.5, seed=3),
             dict(length=25, unit="notes", is_note=is_note, seed=4),
             dict(length=40, unit="steps", clock_steps=clock, seed=5),
             dict(length=7, seed=6), dict(length=1000, max_tokens=5, seed=7),
             dict(length=0, seed=8), dict(length=150, **mixed)]
    for case in cases:
        kw = dict(primer=[0], grammar=g, **case)
        a, b = cpu.generate_tokens(n, **kw), emu.generate_tokens(n, **kw)
        assert [len(x) for x in a] == [len(y) for y in b], case
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    greedy = dict(primer=[5, 6], length=300, temperature=0.0)
    for x, y in zip(cpu.generate_tokens(2, **greedy), emu.generate_tokens(2, **greedy)):
        np.testing.assert_array_equal(x, y)
    dead = G()
    dead.table, dead.start_state, dead.can_end = table.copy(), 0, np.zeros(3, bool)
    dead.table[2, :] = -1
    with pytest.raises(CodecError, match="allows no token"):
        emu.generate_tokens(2, primer=[0], length=50, grammar=dead, seed=1)
