"""Engine forward pass: teacher-forced logits against an independent float64 statement of the
math, stepwise state against full-sequence, the paper regression model, and input validation."""

from __future__ import annotations

import numpy as np
import pytest

from musgen import engine
from musgen.engine._random import random_model_dir
from musgen.modeldir import load_model_dir


def _reference_logits(model_dir, tokens):
    """Keras LSTM semantics written out in float64, one stream at a time."""
    config, t = load_model_dir(model_dir)
    units = config["model"]["lstm_units"]
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    out = []
    for seq in np.atleast_2d(tokens):
        hs = [np.zeros(u) for u in units]
        cs = [np.zeros(u) for u in units]
        rows = []
        for tok in seq:
            x = t["embedding/embeddings"][tok].astype(np.float64)
            for k, u in enumerate(units):
                z = (x @ t[f"lstm_{k}/kernel"] + hs[k] @ t[f"lstm_{k}/recurrent_kernel"]
                     + t[f"lstm_{k}/bias"])
                i, f, g, o = sig(z[:u]), sig(z[u:2 * u]), np.tanh(z[2 * u:3 * u]), sig(z[3 * u:])
                cs[k] = f * cs[k] + i * g
                hs[k] = o * np.tanh(cs[k])
                x = hs[k]
            rows.append(x @ t["head/kernel"] + t["head/bias"])
        out.append(rows)
    return np.array(out)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    return random_model_dir(tmp_path_factory.mktemp("m") / "small", vocab_size=23,
                            embedding_dim=5, lstm_units=[7, 6], seed=3, scale=1.5)


def test_engine_logits_match_float64_reference(small_model, backend):
    tokens = np.random.default_rng(0).integers(0, 23, size=(3, 40))
    eng = engine.load(small_model, backend=backend)
    got = eng.logits(tokens)
    assert got.dtype == np.float32 and got.shape == (3, 40, 23)
    ref = _reference_logits(small_model, tokens)
    assert np.max(np.abs(got - ref)) < 2e-5
    assert np.std(ref) > 0.05  # the weights really exercise the cells


def test_engine_logits_one_dimensional_is_one_stream(small_model, backend):
    eng = engine.load(small_model, backend=backend)
    tokens = np.arange(12) % 23
    np.testing.assert_array_equal(eng.logits(tokens), eng.logits(tokens[None]))
    assert eng.logits(tokens).shape == (1, 12, 23)


def test_engine_logits_streams_are_independent(small_model, backend):
    eng = engine.load(small_model, backend=backend)
    tokens = np.random.default_rng(1).integers(0, 23, size=(4, 17))
    batch = eng.logits(tokens)
    for b in range(4):
        np.testing.assert_allclose(batch[b], eng.logits(tokens[b])[0], rtol=0, atol=1e-6)


def test_engine_logits_rejects_bad_tokens(small_model, backend):
    eng = engine.load(small_model, backend=backend)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        eng.logits([1, 2, 23])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        eng.logits([-1])
    with pytest.raises(ValueError, match="expected integers"):
        eng.logits([0.5, 1.0])
    with pytest.raises(ValueError, match=r"expected \[B, T\]"):
        eng.logits(np.zeros((2, 2, 2), np.int32))
    assert eng.logits(np.zeros((2, 0), np.int32)).shape == (2, 0, 23)


def test_engine_paper_predict_matches_reference(tmp_path, backend):
    d = random_model_dir(tmp_path / "p", kind="paper", lstm_units=[8, 6], dense_units=[5],
                         seed=2, scale=1.5)
    config, t = load_model_dir(d)
    x = np.random.default_rng(4).standard_normal((2, 9, 3)).astype(np.float32)
    eng = engine.load(d, backend=backend)
    got = eng.predict(x)
    assert got.shape == (2, 9, 3) and got.dtype == np.float32
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    for b in range(2):
        h = [np.zeros(8), np.zeros(6)]
        c = [np.zeros(8), np.zeros(6)]
        for s in range(9):
            v = x[b, s].astype(np.float64)
            for k, u in enumerate([8, 6]):
                z = v @ t[f"lstm_{k}/kernel"] + h[k] @ t[f"lstm_{k}/recurrent_kernel"] + t[
                    f"lstm_{k}/bias"]
                c[k] = sig(z[u:2 * u]) * c[k] + sig(z[:u]) * np.tanh(z[2 * u:3 * u])
                h[k] = sig(z[3 * u:]) * np.tanh(c[k])
                v = h[k]
            v = np.maximum(v @ t["dense_0/kernel"] + t["dense_0/bias"], 0)
            v = v @ t["dense_1/kernel"] + t["dense_1/bias"]
            assert np.max(np.abs(got[b, s] - v)) < 2e-5
    with pytest.raises(TypeError, match="kind 'lstm_lm'"):
        eng.logits([1])


def test_engine_load_unknown_backend(small_model):
    with pytest.raises(ValueError, match="expected one of"):
        engine.load(small_model, backend="gpu")
