"""Loading: damaged or mismatched model directories raise ModelFormatError on every backend,
naming the file and the tensor; the paper model's autoregressive generation on both backends."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from musgen import _backend, engine
from musgen.engine._random import random_model_dir
from musgen.errors import BackendUnavailableError, ModelFormatError


@pytest.fixture()
def model(tmp_path):
    return random_model_dir(tmp_path / "m", vocab_size=17, embedding_dim=4, lstm_units=[6, 5])


def _rewrite_header(path, edit):
    data = path.read_bytes()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    edit(header)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + data[8 + n:])


def test_engine_load_truncated_weights(model, backend):
    w = model / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-10])
    with pytest.raises(ModelFormatError, match=r"weights\.safetensors.*(truncated|outside)"):
        engine.load(model, backend=backend)


def test_engine_load_wrong_shape(model, backend):
    _rewrite_header(model / "weights.safetensors",
                    lambda h: h["lstm_1/bias"].update(shape=[5, 4]))
    with pytest.raises(ModelFormatError, match=r"'lstm_1/bias' has shape \[5, 4\]"):
        engine.load(model, backend=backend)


def test_engine_load_wrong_dtype(model, backend):
    _rewrite_header(model / "weights.safetensors", lambda h: h["head/kernel"].update(dtype="F16"))
    with pytest.raises(ModelFormatError, match=r"'head/kernel': dtype 'F16'"):
        engine.load(model, backend=backend)


def test_engine_load_offsets_lie(model, backend):
    def shift(h):
        b, e = h["embedding/embeddings"]["data_offsets"]
        h["embedding/embeddings"]["data_offsets"] = [b + 4, e + 4]
    _rewrite_header(model / "weights.safetensors", shift)
    with pytest.raises(ModelFormatError, match="embedding/embeddings"):
        engine.load(model, backend=backend)


def test_engine_load_header_length_lies(model, backend):
    w = model / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[0:8] = struct.pack("<Q", 10**12)
    w.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="header length"):
        engine.load(model, backend=backend)


def test_engine_load_config_mismatch(model, backend):
    cfg = json.loads((model / "config.json").read_text())
    cfg["model"]["lstm_units"] = [6, 7]
    (model / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="lstm_1/kernel"):
        engine.load(model, backend=backend)


def test_engine_load_missing_dir_and_garbage_config(tmp_path, model, backend):
    with pytest.raises(ModelFormatError, match="not a model directory"):
        engine.load(tmp_path / "nope", backend=backend)
    (model / "config.json").write_bytes(b"\xff\x00{")
    with pytest.raises(ModelFormatError, match="config.json"):
        engine.load(model, backend=backend)


def test_engine_load_nan_weights(model, backend):
    from musgen.modeldir import load_model_dir, write_safetensors

    _, t = load_model_dir(model)
    t["lstm_0/recurrent_kernel"][2, 3] = np.nan
    write_safetensors(model / "weights.safetensors", t)
    with pytest.raises(ModelFormatError, match="NaN"):
        engine.load(model, backend=backend)


def test_engine_cpp_rejects_mis_shaped_tensor_directly(model):
    if not _backend.has_cpp():
        pytest.skip("the C++ constructor's own checks")
    from musgen.modeldir import load_model_dir

    _, good = load_model_dir(model)
    t = dict(good, **{"lstm_0/recurrent_kernel": good["lstm_0/recurrent_kernel"][:, :-1]})
    with pytest.raises(ModelFormatError, match=r"'lstm_0/recurrent_kernel' has shape \[6, 23\]"):
        _backend.core().LstmEngine("lstm_lm", [6, 5], t)
    t = dict(good)
    del t["head/bias"]
    with pytest.raises(ModelFormatError, match="'head/bias' is missing"):
        _backend.core().LstmEngine("lstm_lm", [6, 5], t)


def test_engine_cuda_unavailable_is_a_clear_error(model):
    ok, _ = _backend.cuda_status()
    if ok:
        pytest.skip("this machine has the CUDA engine")
    with pytest.raises(BackendUnavailableError, match="CUDA"):
        engine.load(model, backend="cuda")


def test_engine_paper_generate_features(tmp_path, backend):
    d = random_model_dir(tmp_path / "p", kind="paper", lstm_units=[12, 8], dense_units=[6],
                         seed=5, scale=1.2)
    eng = engine.load(d, backend=backend)
    primer = np.random.default_rng(1).standard_normal((3, 4, 3)).astype(np.float32)
    out = eng.generate_features(primer, 20)
    assert out.shape == (3, 20, 3) and out.dtype == np.float32
    # Each generated row is the prediction after feeding back the previous ones.
    seq = np.concatenate([primer, out[:, :-1]], axis=1)
    np.testing.assert_allclose(eng.predict(seq)[:, 3:], out, rtol=0, atol=1e-5)
    py = engine.load(d, backend="python").generate_features(primer, 20)
    np.testing.assert_allclose(out, py, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="primer"):
        eng.generate_features(np.zeros((2, 0, 3), np.float32), 3)
    with pytest.raises(TypeError, match="kind 'lstm_lm'"):
        eng.generate_tokens(1, primer=[0])
