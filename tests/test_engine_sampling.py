"""Sampling: Philox known answers, the stated rules (greedy, top-k, top-p, inverse CDF) checked
token by token on both backends, grammar masks and stop rules, C++/NumPy token parity, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from musgen import _backend, engine
from musgen.engine._random import random_model_dir
from musgen.engine.philox import philox4x32_10, philox_uniform
from musgen.engine.sampling import sample_token
from musgen.errors import CodecError
from musgen.modeldir import expected_tensors, save_model_dir

# Random123's published known-answer vectors for philox4x32-10: (counter, key, output).
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", PHILOX_KAT)
def test_philox_known_answers(counter, key, expected, backend):
    if backend == "cpp":
        got = tuple(_backend.core().philox4x32_10(counter, key))
    else:
        got = tuple(int(x) for x in philox4x32_10(counter, key))
    assert got == expected


def test_philox_uniform_cpp_matches_numpy():
    if not _backend.has_cpp():
        pytest.skip("parity needs the C++ extension")
    rng = np.random.default_rng(0)
    seeds = [0, 1, 2**32 - 1, 2**32, 2**64 - 1] + [int(s) for s in rng.integers(0, 2**63, 20)]
    core = _backend.core()
    for seed in seeds:
        steps = rng.integers(0, 2**32, 8)
        streams = rng.integers(0, 2**32, 8)
        want = philox_uniform(np.uint64(seed), steps, streams)
        got = [core.philox_uniform(seed, int(a), int(b)) for a, b in zip(steps, streams)]
        np.testing.assert_array_equal(got, want)
        assert np.all((want >= 0) & (want < 1))


def test_sample_token_rules_by_hand():
    logits = np.array([1.0, 3.0, 3.0, 0.0, 2.0], np.float32)
    allowed = np.ones(5, bool)
    # greedy: lowest id among the tied maxima
    assert sample_token(logits, allowed, 0.0, 0, 1.0, 0.99) == 1
    allowed_no1 = allowed.copy()
    allowed_no1[1] = False
    assert sample_token(logits, allowed_no1, 0.0, 0, 1.0, 0.5) == 2
    # top-k 1 keeps the lowest id of the tie, whatever u is
    assert sample_token(logits, allowed, 1.0, 1, 1.0, 0.999) == 1
    # top-k 3 keeps {1, 2, 4}; weights e^0, e^0, e^-1 in id order
    w = np.array([1.0, 1.0, np.exp(-1.0)])
    cdf = np.cumsum(w) / w.sum()
    assert sample_token(logits, allowed, 1.0, 3, 1.0, cdf[0] - 1e-9) == 1
    assert sample_token(logits, allowed, 1.0, 3, 1.0, cdf[0] + 1e-9) == 2
    assert sample_token(logits, allowed, 1.0, 3, 1.0, cdf[1] + 1e-9) == 4
    # top-p: sorted mass 1, 1, e^-1, e^-2, e^-3; p exactly at the first two -> keep {1, 2}
    full = np.exp(np.array([1, 3, 3, 0, 2], float) - 3)
    p_two = 2.0 / full.sum()
    assert sample_token(logits, allowed, 1.0, 0, np.float32(p_two) - 1e-6, 0.999) == 2
    assert sample_token(logits, allowed, 1.0, 0, min(1.0, p_two + 1e-3), 0.999) == 4
    # nothing allowed
    assert sample_token(logits, np.zeros(5, bool), 1.0, 0, 1.0, 0.5) == -1


def _constant_logits_model(path, logits):
    """A model whose logits are `logits` at every step: zero weights, head bias = logits."""
    V = len(logits)
    model = {"kind": "lstm_lm", "vocab_size": V, "embedding_dim": 3, "lstm_units": [4]}
    t = {k: np.zeros(s, np.float32) for k, s in expected_tensors(model).items()}
    t["head/bias"] = np.asarray(logits, np.float32)
    return save_model_dir(path, {"model": model}, t)


@pytest.mark.parametrize("settings", [
    dict(temperature=1.0, top_k=0, top_p=1.0),
    dict(temperature=0.7, top_k=4, top_p=1.0),
    dict(temperature=1.5, top_k=0, top_p=0.8),
    dict(temperature=1.0, top_k=5, top_p=0.6),
])
def test_engine_sampling_follows_stated_rules(tmp_path, backend, settings):
    logits = np.array([0.5, 2.0, -1.0, 2.0, 1.0, 0.0, 1.5, -3.0, 0.25], np.float32)
    d = _constant_logits_model(tmp_path / "c", logits)
    eng = engine.load(d, backend=backend)
    out = eng.generate_tokens(3, primer=[0], length=150, seed=[7, 7, 2**40 + 3], **settings)
    allowed = np.ones(len(logits), bool)
    seeds = [7, 7, 2**40 + 3]
    for s in range(3):
        assert len(out[s]) == 150
        u = philox_uniform(np.uint64(seeds[s]), np.arange(150), s)
        want = [sample_token(logits, allowed, settings["temperature"], settings["top_k"],
                             settings["top_p"], float(u[t])) for t in range(150)]
        np.testing.assert_array_equal(out[s], want)
    assert not np.array_equal(out[0], out[1])  # same seed, different stream index


def test_engine_sampling_frequencies_match_softmax(tmp_path, backend):
    logits = np.array([0.0, 1.0, 2.0, -1.0], np.float32)
    d = _constant_logits_model(tmp_path / "c", logits)
    eng = engine.load(d, backend=backend)
    n_tok = 20000 if backend == "cpp" else 4000
    toks = eng.generate_tokens(1, primer=[0], length=n_tok, seed=11, temperature=0.5)[0]
    p = np.exp(logits / 0.5) / np.exp(logits / 0.5).sum()
    freq = np.bincount(toks, minlength=4) / n_tok
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n_tok) + 1e-3)


def _toy_grammar(V):
    """A 3-state grammar over V tokens: state 0 (start) allows only token 0 (BOS); state 1
    allows 'even' tokens (-> state 2) and EOS; state 2 allows 'odd' tokens (-> state 1).
    EOS = V - 1, allowed only in state 1 (can_end)."""
    class G:
        pass
    g = G()
    table = np.full((3, V), -1, np.int32)
    table[0, 0] = 1
    evens = np.arange(2, V - 1, 2)
    odds = np.arange(1, V - 1, 2)
    table[1, evens] = 2
    table[1, V - 1] = 1
    table[2, odds] = 1
    g.table, g.start_state, g.can_end = table, 0, np.array([False, True, False])
    return g


def _accepts(g, tokens, primer=(0,)):
    st = g.start_state
    for t in list(primer) + list(tokens):
        st = g.table[st, t]
        if st < 0:
            return False
    return True


def _state(g, tokens, primer=(0,)):
    st = g.start_state
    for t in list(primer) + list(tokens):
        st = g.table[st, t]
    return st


@pytest.fixture(scope="module")
def lm_model(tmp_path_factory):
    return random_model_dir(tmp_path_factory.mktemp("lm") / "m", vocab_size=41, embedding_dim=8,
                            lstm_units=[19, 16], seed=1, scale=1.5)


def test_engine_grammar_mask_and_eos(lm_model, backend):
    g = _toy_grammar(41)
    eng = engine.load(lm_model, backend=backend)
    out = eng.generate_tokens(16, primer=[0], length=30, seed=3, grammar=g, eos_id=40,
                              temperature=1.5)
    for toks in out:
        assert _accepts(g, toks)
        eos = np.flatnonzero(toks == 40)
        assert eos.size == 0 or eos[0] == len(toks) - 1  # EOS ends the stream
        assert len(toks) <= 30 + 1  # stops at the first can_end point after the budget
    assert any(t[-1] == 40 for t in out) and any(len(t) >= 30 for t in out)


def test_engine_length_units(lm_model, backend):
    g = _toy_grammar(41)
    eng = engine.load(lm_model, backend=backend)
    is_note = (np.arange(41) % 2 == 0).astype(np.uint8)  # evens are "notes"
    clock = np.where(np.arange(41) % 2 == 1, np.arange(41) % 5, 0).astype(np.int32)
    notes = eng.generate_tokens(8, primer=[0], length=25, unit="notes", is_note=is_note,
                                grammar=g, seed=4)
    for t in notes:
        assert is_note[t].sum() == 25 and g.can_end[1]
    steps = eng.generate_tokens(8, primer=[0], length=40, unit="steps", clock_steps=clock,
                                grammar=g, seed=4)
    for t in steps:
        total = clock[t].sum()
        assert total >= 40 and total - clock[t[-1]] < 40  # stopped at the step crossing 40
    toks = eng.generate_tokens(6, primer=[0], length=7, grammar=g, seed=4)
    for t in toks:  # 7 tokens, then one more only if needed to reach a state that can end
        assert _state(g, t) == 1 and (len(t) == 7 or (len(t) == 8 and _state(g, t[:7]) == 2))
    assert {len(t) for t in toks} == {7, 8}
    capped = eng.generate_tokens(2, primer=[0], length=1000, max_tokens=5, seed=1)
    assert [len(t) for t in capped] == [5, 5]
    assert [len(t) for t in eng.generate_tokens(2, primer=[0], length=0, seed=1)] == [0, 0]


def test_engine_primer_checked_against_grammar(lm_model, backend):
    g = _toy_grammar(41)
    eng = engine.load(lm_model, backend=backend)
    with pytest.raises(CodecError, match="primer token 3 at position 1"):
        eng.generate_tokens(1, primer=[0, 3], length=5, grammar=g, seed=0)
    ok = eng.generate_tokens(2, primer=[[0, 2, 1], [0, 4, 3]], length=5, grammar=g, seed=0)
    assert all(_accepts(g, t, primer=(0, 2, 1)) for t in ok)


def test_engine_generate_argument_errors(lm_model, backend):
    eng = engine.load(lm_model, backend=backend)
    with pytest.raises(ValueError, match="temperature"):
        eng.generate_tokens(1, primer=[0], temperature=-1.0)
    with pytest.raises(ValueError, match="top_p"):
        eng.generate_tokens(1, primer=[0], top_p=0.0)
    with pytest.raises(ValueError, match="one per stream"):
        eng.generate_tokens(3, primer=[0], temperature=[1.0, 0.5])
    with pytest.raises(ValueError, match="seed"):
        eng.generate_tokens(2, primer=[0], seed=[1, 2, 3])
    with pytest.raises(ValueError, match="primer"):
        eng.generate_tokens(1, primer=[])
    with pytest.raises(ValueError, match="unit"):
        eng.generate_tokens(1, primer=[0], unit="bars")


def _parity_settings(n):
    rng = np.random.default_rng(n)
    return dict(temperature=rng.choice([0.0, 0.6, 1.0, 1.4], n).astype(np.float32),
                top_k=rng.choice([0, 3, 10], n), top_p=rng.choice([1.0, 0.9, 0.5], n),
                seed=[int(s) for s in rng.integers(0, 2**63, n)])


@pytest.mark.parametrize("n", [1, 32])
def test_engine_cpp_and_numpy_same_tokens(lm_model, n):
    if not _backend.has_cpp():
        pytest.skip("parity needs the C++ extension")
    g = _toy_grammar(41)
    kw = dict(primer=[0], length=2000, grammar=g, eos_id=None, **_parity_settings(n))
    a = engine.load(lm_model, backend="cpp").generate_tokens(n, **kw)
    b = engine.load(lm_model, backend="python").generate_tokens(n, **kw)
    same = sum(np.array_equal(x, y) for x, y in zip(a, b))
    assert same == n and all(len(x) >= 2000 for x in a)


def test_engine_greedy_same_on_both_backends(lm_model):
    if not _backend.has_cpp():
        pytest.skip("parity needs the C++ extension")
    kw = dict(primer=[5, 6], length=500, temperature=0.0, seed=None)
    a = engine.load(lm_model, backend="cpp").generate_tokens(4, **kw)
    b = engine.load(lm_model, backend="python").generate_tokens(4, **kw)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a[0], a[3])  # greedy ignores the seed and stream


def test_engine_threads_give_same_results(lm_model):
    if not _backend.has_cpp():
        pytest.skip("thread counts apply to the C++ engine")
    eng = engine.load(lm_model, backend="cpp")
    kw = dict(primer=[0], length=300, **_parity_settings(9))
    one = eng.generate_tokens(9, threads=1, **kw)
    for threads in (2, 4, 16):
        many = eng.generate_tokens(9, threads=threads, **kw)
        assert all(np.array_equal(x, y) for x, y in zip(one, many))
    tokens = np.random.default_rng(0).integers(0, 41, (7, 50))
    np.testing.assert_array_equal(eng._cpp.logits(tokens.astype(np.int32), threads=1),
                                  eng._cpp.logits(tokens.astype(np.int32), threads=3))


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory):
    """Layers wide enough (16 and 12 panels of 8 units) for a team of up to 3 threads to split
    each step of a small batch between them."""
    return random_model_dir(tmp_path_factory.mktemp("wide") / "m", vocab_size=41,
                            embedding_dim=8, lstm_units=[128, 96], seed=4, scale=1.5)


def test_engine_team_split_steps_match_one_thread(wide_model):
    """Fewer streams than threads: the threads split every step's panels (double-buffered
    layer rows, spin barriers); tokens, lengths and stop rules are those of one thread."""
    if not _backend.has_cpp():
        pytest.skip("thread counts apply to the C++ engine")
    eng = engine.load(wide_model, backend="cpp")
    g = _toy_grammar(41)
    for n, eos_id in [(1, None), (2, None), (3, None), (3, 40)]:
        kw = dict(primer=[0, 2, 1], length=400, grammar=g, eos_id=eos_id, **_parity_settings(n))
        one = eng.generate_tokens(n, threads=1, **kw)
        if eos_id is None:
            assert all(len(t) in (400, 401) for t in one)  # ends where the grammar can end
        for threads in (2, 3, 8):
            many = eng.generate_tokens(n, threads=threads, **kw)
            assert [len(x) for x in one] == [len(y) for y in many], (n, threads)
            assert all(np.array_equal(x, y) for x, y in zip(one, many)), (n, threads)
    seen = []
    out = eng.generate_tokens(2, primer=[0], length=150, seed=1, threads=3, progress=seen.append)
    assert sum(seen) == sum(len(t) for t in out) == 300
    if _backend.has_cpp():  # and the NumPy engine agrees with the team, greedy
        greedy = dict(primer=[5, 6], length=300, temperature=0.0)
        a = eng.generate_tokens(1, threads=3, **greedy)
        b = engine.load(wide_model, backend="python").generate_tokens(1, **greedy)
        np.testing.assert_array_equal(a[0], b[0])


def test_engine_team_reports_a_dead_grammar_state(wide_model):
    """An error in one team member's sampling ends the run for the whole team (no thread is
    left waiting at a barrier) and reaches the caller."""
    if not _backend.has_cpp():
        pytest.skip("thread counts apply to the C++ engine")
    eng = engine.load(wide_model, backend="cpp")
    dead = _toy_grammar(41)
    dead.table = dead.table.copy()
    dead.table[2, :] = -1
    dead.can_end = np.zeros(3, bool)
    for n in (1, 2):
        with pytest.raises(CodecError, match="allows no token"):
            eng.generate_tokens(n, primer=[0], length=50, grammar=dead, seed=1, threads=3)


def test_engine_concurrent_callers_match_serial(lm_model, backend):
    shared = engine.load(lm_model, backend=backend)
    engines = [shared, shared, engine.load(lm_model, backend=backend)]
    jobs = [dict(seed=s, temperature=t) for s, t in [(1, 1.0), (2, 0.8), (3, 1.2)]]
    serial = [e.generate_tokens(4, primer=[0], length=200, **j) for e, j in zip(engines, jobs)]
    results: list = [None] * 3
    errors: list = []

    def work(i):
        try:
            results[i] = engines[i].generate_tokens(4, primer=[0], length=200, **jobs[i])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, serial):
        assert all(np.array_equal(x, y) for x, y in zip(got, want))


def test_engine_progress_counts_every_token(lm_model, backend):
    eng = engine.load(lm_model, backend=backend)
    seen = []
    out = eng.generate_tokens(5, primer=[0], length=120, seed=1, progress=seen.append)
    assert sum(seen) == sum(len(t) for t in out) == 600


def test_engine_kernel_variants_agree(lm_model):
    if not _backend.has_cpp():
        pytest.skip("kernel variants are C++")
    core = _backend.core()
    from musgen.modeldir import load_model_dir

    config, tensors = load_model_dir(lm_model)
    tokens = np.random.default_rng(2).integers(0, 41, (13, 60)).astype(np.int32)
    ref = engine.load(lm_model, backend="python").logits(tokens)
    names = core.LstmEngine.available_kernels()
    assert "generic" in names
    for name in names:
        e = core.LstmEngine("lstm_lm", [19, 16], tensors, "relu", name)
        assert e.kernels == name
        for rows in (tokens, tokens[:1]):  # matrix-matrix and matrix-vector paths
            assert np.max(np.abs(e.logits(rows) - ref[:len(rows)])) < 1e-5


def test_engine_cpp_stream_results_independent_of_batch(lm_model):
    """Each stream's arithmetic is the same whatever batch or thread chunk it runs in (the
    matrix-vector path accumulates in the matrix-matrix kernel's order), on every kernel set."""
    if not _backend.has_cpp():
        pytest.skip("the C++ kernels' batch independence")
    from musgen.modeldir import load_model_dir

    _, tensors = load_model_dir(lm_model)
    tokens = np.random.default_rng(3).integers(0, 41, (13, 40)).astype(np.int32)
    core = _backend.core()
    for name in core.LstmEngine.available_kernels():
        e = core.LstmEngine("lstm_lm", [19, 16], tensors, "relu", name)
        whole = e.logits(tokens, threads=1)
        for b in (0, 5, 12):
            np.testing.assert_array_equal(e.logits(tokens[b:b + 1]), whole[b:b + 1])
        for b0, b1 in ((2, 9), (3, 5), (4, 7)):  # 7 rows, and the 2- and 3-row kernels
            np.testing.assert_array_equal(e.logits(tokens[b0:b1], threads=1), whole[b0:b1])
