"""CUDA engine on a real device: logits and tokens against the C++ CPU engine. Deselected (with
the reason) on machines without a usable CUDA device; test_cuda.py covers the rest there."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from musgen import _backend, codec, engine
from musgen.cli import main
from musgen.engine._random import random_model_dir
from musgen.errors import CodecError
from musgen.generation import generate

CUDA_OK, CUDA_WHY = _backend.cuda_status()
pytestmark = pytest.mark.skipif(not CUDA_OK, reason=f"no usable CUDA device: {CUDA_WHY}")

V = 41


def _toy_grammar(V):
    """State 0 allows only BOS (0); state 1: even ids -> 2, EOS (V-1) can end; state 2: odd -> 1."""
    class G:
        pass

    g = G()
    table = np.full((3, V), -1, np.int32)
    table[0, 0] = 1
    ids = np.arange(1, V - 1)
    table[1, ids[ids % 2 == 0]] = 2
    table[2, ids[ids % 2 == 1]] = 1
    table[1, V - 1] = 1
    g.table, g.start_state, g.can_end = table, 0, np.array([False, True, False])
    return g


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return random_model_dir(tmp_path_factory.mktemp("cu") / "s", vocab_size=V, embedding_dim=8,
                            lstm_units=[19, 16], seed=1, scale=1.5)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """Sizes that exercise partial tiles in both kernels (units not multiples of 16 or 32)."""
    return random_model_dir(tmp_path_factory.mktemp("cu") / "w", vocab_size=203,
                            embedding_dim=24, lstm_units=[130, 67, 96], seed=2, scale=1.1)


@pytest.mark.parametrize("batch", [1, 3, 15, 16, 70])  # matvec below 16 rows, tiled GEMM above
def test_cuda_logits_match_cpu(small, wide, batch):
    for model in (small, wide):
        cpu, gpu = engine.load(model, backend="cpp"), engine.load(model, backend="cuda")
        rng = np.random.default_rng(batch)
        tok = rng.integers(0, cpu.vocab_size, (batch, 37)).astype(np.int32)
        a, b = cpu.logits(tok), gpu.logits(tok)
        assert b.shape == a.shape and b.dtype == np.float32
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)


def test_cuda_greedy_2000_steps_identical(small, wide):
    for model in (small, wide):
        kw = dict(primer=[5, 6], length=2000, temperature=0.0, seed=None)
        a = engine.load(model, backend="cpp").generate_tokens(3, **kw)
        b = engine.load(model, backend="cuda").generate_tokens(3, **kw)
        for x, y in zip(a, b):
            assert len(x) == 2000
            np.testing.assert_array_equal(x, y)


def _explain_divergence(cpu, gpu, primer, tok_cpu, tok_gpu):
    """Where two sampled streams first differ, the two engines' logits must differ there too
    (sampling decisions are identical for identical logits)."""
    n = min(len(tok_cpu), len(tok_gpu))
    diff = np.flatnonzero(tok_cpu[:n] != tok_gpu[:n])
    t = int(diff[0]) if diff.size else n
    prefix = np.concatenate([primer, tok_cpu[:t]]).astype(np.int32)
    la, lb = cpu.logits(prefix)[0, -1], gpu.logits(prefix)[0, -1]
    assert not np.array_equal(la, lb), f"streams diverge at token {t} with identical logits"
    np.testing.assert_allclose(lb, la, atol=1e-4, rtol=0)


@pytest.mark.parametrize("n", [1, 64, 300])
def test_cuda_sampled_tokens_match_cpu(small, n, capsys):
    g = _toy_grammar(V)
    rng = np.random.default_rng(n)
    kw = dict(primer=[0], length=400, grammar=g, eos_id=None,
              temperature=rng.choice([0.0, 0.6, 1.0, 1.4], n).astype(np.float32),
              top_k=rng.choice([0, 3, 10], n), top_p=rng.choice([1.0, 0.9, 0.5], n),
              seed=[int(s) for s in rng.integers(0, 2**63, n)])
    cpu, gpu = engine.load(small, backend="cpp"), engine.load(small, backend="cuda")
    a, b = cpu.generate_tokens(n, **kw), gpu.generate_tokens(n, **kw)
    same = 0
    for x, y in zip(a, b):
        if np.array_equal(x, y):
            same += 1
        else:
            _explain_divergence(cpu, gpu, [0], x, y)
    with capsys.disabled():
        print(f"\n[cuda] sampled streams identical to the CPU engine: {same}/{n}")
    assert same >= 0.9 * n


def test_cuda_grammar_eos_and_length_units(small):
    g = _toy_grammar(V)
    cpu, gpu = engine.load(small, backend="cpp"), engine.load(small, backend="cuda")
    is_note = (np.arange(V) % 2 == 0).astype(np.uint8)
    clock = np.where(np.arange(V) % 2 == 1, np.arange(V) % 5, 0).astype(np.int32)
    cases = [dict(length=30, eos_id=V - 1, temperature=1.5),
             dict(length=25, unit="notes", is_note=is_note),
             dict(length=40, unit="steps", clock_steps=clock),
             dict(length=7), dict(length=1000, max_tokens=5), dict(length=0)]
    for case in cases:
        kw = dict(primer=[0], grammar=g, seed=4, **case)
        a, b = cpu.generate_tokens(16, **kw), gpu.generate_tokens(16, **kw)
        assert [len(x) for x in a] == [len(y) for y in b], case
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_cuda_primer_and_dead_grammar_errors(small):
    g = _toy_grammar(V)
    gpu = engine.load(small, backend="cuda")
    with pytest.raises(CodecError, match="primer token 3 at position 1"):
        gpu.generate_tokens(1, primer=[0, 3], length=5, grammar=g, seed=0)
    g.table = g.table.copy()
    g.table[2, :] = -1  # state 2 allows nothing: the device loop must report it
    g.can_end = np.array([False, False, False])
    with pytest.raises(CodecError, match="allows no token"):
        gpu.generate_tokens(4, primer=[0], length=50, grammar=g, seed=1)


def test_cuda_progress_and_concurrent_callers(small):
    gpu = engine.load(small, backend="cuda")
    seen = []
    out = gpu.generate_tokens(8, primer=[0], length=300, seed=9, progress=seen.append)
    assert sum(seen) == sum(len(t) for t in out) == 8 * 300
    want = [gpu.generate_tokens(4, primer=[0], length=100, seed=i) for i in range(4)]
    got = [None] * 4

    def work(i):
        got[i] = gpu.generate_tokens(4, primer=[0], length=100, seed=i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w, g_ in zip(want, got):
        for x, y in zip(w, g_):
            np.testing.assert_array_equal(x, y)


def test_cuda_generate_and_cli(tmp_path):
    config = codec.default_config()
    model = random_model_dir(tmp_path / "m", vocab_size=config.vocab_size, embedding_dim=12,
                             lstm_units=[24, 16], seed=7, scale=1.2, codec=config.to_dict())
    a = generate(model, n=2, length="40 tokens", seed=5, backend="cpp")
    b = generate(model, n=2, length="40 tokens", seed=5, backend="cuda")
    assert [len(s.notes) for s in a] == [len(s.notes) for s in b]
    assert main(["generate", str(model), "-o", str(tmp_path / "x.mid"), "--length", "40 tokens",
                 "--seed", "5", "--backend", "cuda", "--quiet"]) == 0
    assert (tmp_path / "x.mid").stat().st_size > 0


def test_cuda_paper_models_run_on_the_cpu_engine(tmp_path):
    d = random_model_dir(tmp_path / "p", kind="paper", lstm_units=[8], dense_units=[6])
    x = np.random.default_rng(0).random((2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(engine.load(d, backend="cuda").predict(x),
                                  engine.load(d, backend="cpp").predict(x))
