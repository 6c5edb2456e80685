"""Float16 weight storage (engine.load(..., precision="float16")): the C++ kernels compute
exactly what float32 gives on the rounded weights, both CPU backends agree, the error against
float32 is small, and values float16 cannot hold are refused with the tensor's name."""

from __future__ import annotations

import numpy as np
import pytest

from musgen import _backend, engine, generate
from musgen.engine._engine import rounded_to_float16
from musgen.engine._random import random_model_dir
from musgen.errors import ModelFormatError
from musgen.modeldir import load_model_dir, save_model_dir

CPU_BACKENDS = ["cpp", "python"] if _backend.has_cpp() else ["python"]
V = 41


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """Wide enough for the matrix-vector, matrix-matrix and team paths; a few kernel values
    planted on float16 rounding ties and in its subnormal range."""
    d = tmp_path_factory.mktemp("prec") / "m"
    random_model_dir(d, vocab_size=V, embedding_dim=8, lstm_units=[128, 96], seed=5, scale=1.5)
    config, tensors = load_model_dir(d)
    planted = [1 + 2**-11, 1 + 3 * 2**-11, -(2 + 2**-10), 3e-8, -5.96e-8, 2.5e-5, 6.1e-5]
    for name in ("lstm_0/kernel", "lstm_0/recurrent_kernel", "lstm_1/kernel", "head/kernel"):
        t = np.array(tensors[name], np.float32)
        t.flat[:len(planted)] = planted
        tensors[name] = t
    save_model_dir(d, config, tensors)
    return d


def test_rounding_is_numpy_float16():
    x = np.array([1 + 2**-11, 1 + 3 * 2**-11, 65504.0, 65519.0, 3e-8, 2**-25, -0.0, 1e-9],
                 np.float32)
    got = rounded_to_float16({"k/kernel": x, "k/bias": x})
    np.testing.assert_array_equal(got["k/kernel"], x.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(got["k/bias"], x)  # biases stay float32
    assert got["k/kernel"][0] == 1.0 and got["k/kernel"][1] == 1 + 2**-9  # ties to even


def test_cpp_float16_is_float32_on_rounded_weights(model):
    """Bit for bit, on every kernel set: the C++ rounding (ties, subnormals) is NumPy's and the
    widened half weights feed the same float32 arithmetic."""
    if not _backend.has_cpp():
        pytest.skip("the C++ kernels")
    core = _backend.core()
    config, tensors = load_model_dir(model)
    tensors = {k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()}
    rounded = rounded_to_float16(tensors)
    tokens = np.random.default_rng(0).integers(0, V, (13, 50)).astype(np.int32)
    for name in core.LstmEngine.available_kernels():
        half = core.LstmEngine("lstm_lm", [128, 96], tensors, "relu", name, "float16")
        assert half.precision == "float16"
        want = core.LstmEngine("lstm_lm", [128, 96], rounded, "relu", name).logits(tokens)
        np.testing.assert_array_equal(half.logits(tokens), want)
        np.testing.assert_array_equal(half.logits(tokens[:1]), want[:1])


def test_float16_backends_agree_and_stay_close_to_float32(model):
    tokens = np.random.default_rng(1).integers(0, V, (4, 200))
    full = engine.load(model, backend=CPU_BACKENDS[0]).logits(tokens)
    for backend in CPU_BACKENDS:
        eng = engine.load(model, backend=backend, precision="float16")
        assert eng.precision == "float16" and "float16" in repr(eng)
        half = eng.logits(tokens)
        err = np.max(np.abs(half - full))
        assert 0 < err < 2e-2, err  # rounding really happened, and it stays small
        if backend != CPU_BACKENDS[0]:
            ref = engine.load(model, backend=CPU_BACKENDS[0], precision="float16").logits(tokens)
            assert np.max(np.abs(half - ref)) < 1e-4


def test_float16_cpp_and_numpy_same_tokens(model):
    if not _backend.has_cpp():
        pytest.skip("parity needs the C++ extension")
    kw = dict(primer=[0], length=2000, seed=[11, 12], temperature=[0.0, 1.0])
    a = engine.load(model, backend="cpp", precision="float16").generate_tokens(2, **kw)
    b = engine.load(model, backend="python", precision="float16").generate_tokens(2, **kw)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    half = engine.load(model, backend="cpp", precision="float16")
    solo = dict(primer=[0], length=2000, seed=11, temperature=1.0)
    np.testing.assert_array_equal(half.generate_tokens(1, threads=1, **solo)[0],
                                  half.generate_tokens(1, threads=4, **solo)[0])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_float16_refuses_values_out_of_range(tmp_path, backend):
    d = random_model_dir(tmp_path / "m", vocab_size=V, embedding_dim=8, lstm_units=[16, 16],
                         seed=1)
    config, tensors = load_model_dir(d)
    t = np.array(tensors["lstm_1/recurrent_kernel"], np.float32)
    t[3, 5] = 7.0e4
    tensors["lstm_1/recurrent_kernel"] = t
    save_model_dir(d, config, tensors)
    with pytest.raises(ModelFormatError, match=r"lstm_1/recurrent_kernel.*float16"):
        engine.load(d, backend=backend, precision="float16")
    engine.load(d, backend=backend)  # float32 holds it


def test_precision_argument_errors(model):
    with pytest.raises(ValueError, match="precision: 'bfloat16', expected one of float32"):
        engine.load(model, precision="bfloat16")
    eng = engine.load(model, backend=CPU_BACKENDS[0])
    with pytest.raises(ValueError, match="loaded with 'float32'"):
        generate(eng, precision="float16")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_generate_cli_float16(tmp_path, backend):
    """``musgen generate --precision float16`` writes the pieces generate(precision=...) gives."""
    from musgen import codec, midi
    from musgen.cli import main

    config = codec.default_config()
    d = random_model_dir(tmp_path / "m", vocab_size=config.vocab_size, embedding_dim=12,
                         lstm_units=[24, 16], seed=7, scale=1.2, codec=config.to_dict())
    out = tmp_path / "half.mid"
    assert main(["generate", str(d), "-o", str(out), "--length", "15 notes", "--seed", "3",
                 "--precision", "float16", "--backend", backend, "--quiet"]) == 0
    want = generate(d, length="15 notes", seed=3, backend=backend, precision="float16")[0]
    np.testing.assert_array_equal(midi.read(out).notes["pitch"], want.notes["pitch"])
