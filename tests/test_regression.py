"""The version-1 model (the previous default, kept in tests/data) keeps generating exactly the tokens it generated when the stored
sample was made (``tools/make_regression_sample.py``), on every backend: later codec versions
must not change what a version-1 model makes for the same seed. Generation rules added since
(a piece runs to the asked length, closes at a beat) change what is sampled, so the sample is
replayed with the settings of its time: ``allow_early_end=True, ending="none"``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musgen import codec, engine, generate

from conftest import DATA, V1_MODEL

SAMPLE = json.loads((DATA / "regression" / "default_v1_tokens.json").read_text())


def _primer(spec: str, config) -> np.ndarray:
    from musgen import midi

    name, k = spec.rsplit(":", 1)
    return codec.encode(midi.read(DATA / name), config, backend="python")[:int(k)]


def test_regression_sample_is_version_1():
    config = engine.load(V1_MODEL, backend="python").codec
    assert SAMPLE["codec_version"] == 1 and getattr(config, "version", 1) == 1
    assert config.to_dict()["format_version"] == 1


@pytest.mark.parametrize("case", SAMPLE["cases"], ids=lambda c: str(c["generate"]["seed"]))
def test_regression_default_model_same_tokens(case, backend):
    config = engine.load(V1_MODEL, backend="python").codec
    kwargs = dict(case["generate"])
    if "primer" in kwargs:
        kwargs["primer"] = _primer(kwargs["primer"], config)
        # the primer the sample was made with: the file still encodes to the same tokens
        assert kwargs["primer"].tolist() == case["tokens"][0][:len(kwargs["primer"])]
    scores = generate(V1_MODEL, backend=backend, allow_early_end=True, ending="none", **kwargs)
    assert len(scores) == len(case["tokens"])
    for score, tokens in zip(scores, case["tokens"]):
        want = codec.decode(np.array(tokens, np.int32), config, backend="python")
        assert score.n_notes == want.n_notes
        assert np.array_equal(score.notes, want.notes)


@pytest.mark.parametrize("case", SAMPLE["cases"], ids=lambda c: str(c["generate"]["seed"]))
def test_regression_default_model_engine_tokens(case, backend):
    """The very token ids, sampled by the engine with the arguments generate() passes for a
    version-1 model (grammar, EOS, clock steps per TimeShift, notes)."""
    from musgen.generation import parse_length

    eng = engine.load(V1_MODEL, backend=backend)
    config = eng.codec
    kwargs = dict(case["generate"])
    prime = (_primer(kwargs["primer"], config) if "primer" in kwargs
             else np.array([config.bos_id], np.int32))
    amount, unit = parse_length(kwargs["length"])
    unit, budget, cap = {"beats": ("steps", amount * 12, 256 * amount + 256),
                         "notes": ("notes", amount, 32 * amount + 64),
                         "tokens": ("tokens", amount, amount + 64)}[unit]
    tables = codec.token_tables(config)
    grammar = codec.grammar(config)
    streams = eng.generate_tokens(
        kwargs["n"], primer=prime, length=budget, unit=unit,
        temperature=kwargs.get("temperature", 1.0), top_k=kwargs.get("top_k"),
        top_p=kwargs.get("top_p"), seed=kwargs["seed"], grammar=grammar, eos_id=config.eos_id,
        clock_steps=tables.clock_steps, is_note=tables.is_note, max_tokens=cap)
    for gen, tokens in zip(streams, case["tokens"]):
        got = np.concatenate([prime, gen]).tolist()
        if got[-1] != config.eos_id and grammar.can_end[grammar.walk(got)]:
            got.append(config.eos_id)
        assert got == tokens
