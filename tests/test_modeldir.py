"""The model directory format: safetensors round trip and every damaged-file error."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from musgen.errors import ModelFormatError
from musgen.modeldir import (
    expected_tensors,
    load_model_dir,
    read_safetensors,
    save_model_dir,
    write_safetensors,
)

MODEL = {"kind": "lstm_lm", "vocab_size": 11, "embedding_dim": 4, "lstm_units": [6, 5]}


def _tensors(model=MODEL, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in expected_tensors(model).items()}


def test_modeldir_safetensors_round_trip(tmp_path):
    t = _tensors()
    write_safetensors(tmp_path / "w.safetensors", t, {"note": "x"})
    back, meta = read_safetensors(tmp_path / "w.safetensors")
    assert meta == {"note": "x"}
    assert set(back) == set(t)
    for k in t:
        np.testing.assert_array_equal(back[k], t[k])


def test_modeldir_expected_shapes_keras_layout():
    s = expected_tensors(MODEL)
    assert s["lstm_0/kernel"] == (4, 24) and s["lstm_0/recurrent_kernel"] == (6, 24)
    assert s["lstm_1/kernel"] == (6, 20) and s["lstm_1/bias"] == (20,)
    assert s["head/kernel"] == (5, 11)


def test_modeldir_save_load(tmp_path):
    t = _tensors()
    save_model_dir(tmp_path / "m", {"model": MODEL}, t)
    config, back = load_model_dir(tmp_path / "m")
    assert config["format_version"] == 1
    weights = (tmp_path / "m" / "weights.safetensors").read_bytes()
    assert config["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    np.testing.assert_array_equal(back["head/bias"], t["head/bias"])


def _saved(tmp_path):
    save_model_dir(tmp_path / "m", {"model": MODEL}, _tensors())
    return tmp_path / "m"


def test_modeldir_truncated_weights(tmp_path):
    d = _saved(tmp_path)
    w = d / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-10])
    with pytest.raises(ModelFormatError, match="outside the .*data section|trailing"):
        load_model_dir(d)


def test_modeldir_header_length_lies(tmp_path):
    d = _saved(tmp_path)
    w = d / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[:8] = struct.pack("<Q", 1 << 40)
    w.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="header length .* exceeds"):
        load_model_dir(d)


def _rewrite_header(path, mutate):
    data = path.read_bytes()
    (n,) = struct.unpack_from("<Q", data)
    header = json.loads(data[8:8 + n])
    mutate(header)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + data[8 + n:])


def test_modeldir_wrong_dtype(tmp_path):
    d = _saved(tmp_path)
    _rewrite_header(d / "weights.safetensors", lambda h: h["head/bias"].update(dtype="F16"))
    with pytest.raises(ModelFormatError, match="'head/bias': dtype 'F16'"):
        load_model_dir(d)


def test_modeldir_offsets_overlap(tmp_path):
    d = _saved(tmp_path)

    def lie(h):
        b, e = h["head/bias"]["data_offsets"]
        h["head/bias"]["data_offsets"] = [b - 4, e - 4]

    _rewrite_header(d / "weights.safetensors", lie)
    with pytest.raises(ModelFormatError, match="head/bias"):
        load_model_dir(d)


def test_modeldir_config_weights_mismatch(tmp_path):
    d = _saved(tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model"]["lstm_units"] = [6, 7]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="lstm_1/kernel.*shape"):
        load_model_dir(d)


def test_modeldir_bad_config(tmp_path):
    d = _saved(tmp_path)
    (d / "config.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="config.json: not valid JSON"):
        load_model_dir(d)
    (d / "config.json").write_text(json.dumps({"format": "musgen.model", "format_version": 99,
                                               "model": MODEL}))
    with pytest.raises(ModelFormatError, match="format_version 99"):
        load_model_dir(d)


def test_modeldir_weights_checksum_is_checked_and_optional(tmp_path):
    """Flipped bits that keep the file well-formed are caught by the recorded SHA-256; a
    directory written before the checksum existed (no weights_sha256) still loads."""
    d = _saved(tmp_path)
    w = d / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-2] ^= 0x01  # a float's low mantissa bit: still finite, same layout
    w.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match=r"weights.safetensors: SHA-256 [0-9a-f]{64} "
                                               r"differs from the [0-9a-f]{64} recorded"):
        load_model_dir(d)
    config = json.loads((d / "config.json").read_text())
    del config["weights_sha256"]
    (d / "config.json").write_text(json.dumps(config))
    _, tensors = load_model_dir(d)
    assert tensors["head/bias"].dtype == np.float32
