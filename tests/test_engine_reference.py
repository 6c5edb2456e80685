"""The engines against Keras: reference outputs committed under tests/data/engine (made by
tests/make_reference.py with TensorFlow), so these tests never need TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from musgen import engine

# One table: case -> (model dir, inputs, Keras outputs, method, max |difference|).
CASES = {
    "lm_logits": ("lm", "lm_tokens.npy", "lm_logits.npy", "logits", 1e-4),
    "paper_predict": ("paper", "paper_inputs.npy", "paper_outputs.npy", "predict", 1e-5),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_engine_matches_keras_reference(case, backend, data_dir):
    folder, x_name, y_name, method, tol = CASES[case]
    ref = data_dir / "engine"
    eng = engine.load(ref / folder, backend=backend)
    x, want = np.load(ref / x_name), np.load(ref / y_name)
    got = getattr(eng, method)(x)
    assert got.shape == want.shape and got.dtype == np.float32
    diff = float(np.max(np.abs(got - want)))
    assert diff <= tol, f"{case} on {backend}: max |engine - Keras| = {diff:.3g} > {tol:g}"
    assert float(np.std(want)) > 0.05  # the reference is not trivially flat


def test_engine_stepwise_generation_state_matches_keras(backend, data_dir):
    """Greedy generation feeds tokens one at a time through the stepwise state; the logits it
    sampled from must be Keras's full-sequence logits of the same tokens."""
    ref = data_dir / "engine"
    eng = engine.load(ref / "lm", backend=backend)
    primer = np.load(ref / "lm_tokens.npy")[0, :10]
    gen = eng.generate_tokens(1, primer=primer, length=60, temperature=0.0)[0]
    seq = np.concatenate([primer, gen])
    logits = engine.load(ref / "lm", backend="python").logits(seq)[0]
    # each generated token is the argmax of the logits after the tokens before it
    np.testing.assert_array_equal(gen, np.argmax(logits[len(primer) - 1:-1], axis=1))
