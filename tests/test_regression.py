"""The shipped version-1 model keeps generating exactly the tokens it generated when the stored
sample was made (``tools/make_regression_sample.py``), on every backend: later codec versions
must not change what a version-1 model makes for the same seed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musgen import codec, engine, generate
from musgen.generation import default_model_dir

from conftest import DATA

SAMPLE = json.loads((DATA / "regression" / "default_v1_tokens.json").read_text())


def _primer(spec: str, config) -> np.ndarray:
    from musgen import midi

    name, k = spec.rsplit(":", 1)
    return codec.encode(midi.read(DATA / name), config, backend="python")[:int(k)]


def test_regression_sample_is_version_1():
    config = engine.load(default_model_dir(), backend="python").codec
    assert SAMPLE["codec_version"] == 1 and getattr(config, "version", 1) == 1
    assert config.to_dict()["format_version"] == 1


@pytest.mark.parametrize("case", SAMPLE["cases"], ids=lambda c: str(c["generate"]["seed"]))
def test_regression_default_model_same_tokens(case, backend):
    config = engine.load(default_model_dir(), backend="python").codec
    kwargs = dict(case["generate"])
    if "primer" in kwargs:
        kwargs["primer"] = _primer(kwargs["primer"], config)
        # the primer the sample was made with: the file still encodes to the same tokens
        assert kwargs["primer"].tolist() == case["tokens"][0][:len(kwargs["primer"])]
    scores = generate(backend=backend, **kwargs)
    assert len(scores) == len(case["tokens"])
    for score, tokens in zip(scores, case["tokens"]):
        want = codec.decode(np.array(tokens, np.int32), config, backend="python")
        assert score.n_notes == want.n_notes
        assert np.array_equal(score.notes, want.notes)
        # decode is one-to-one on these streams: equal notes mean equal tokens
        assert codec.encode(want, config, backend="python").tolist() == tokens
