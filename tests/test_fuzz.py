"""The fuzz corpus in ordinary test runs: every input that ever failed a C++ harness
(fuzz/regressions/<target>/) is replayed on every backend, which must agree; every damaged model
directory found so far (fuzz/regressions/modeldir/) raises ModelFormatError at load; and the
Python fuzz targets (fuzz/python_targets.py) run with a few examples (MUSGEN_FUZZ_EXAMPLES sets
how many; ``nox -s fuzz`` runs many)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import available_backends

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
sys.path.insert(0, str(FUZZ))

import python_targets as targets  # noqa: E402
import replay  # noqa: E402
from configs import CONFIGS, codec_config  # noqa: E402

EXAMPLES = int(os.environ.get("MUSGEN_FUZZ_EXAMPLES", "25"))
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
                         suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("target, path", replay.regression_inputs(),
                         ids=lambda v: v.name if isinstance(v, Path) else v)
def test_fuzz_regression_inputs_agree_on_every_backend(target, path):
    data = path.read_bytes()
    outcomes = {b: replay.REPLAY[target](data, b) for b in available_backends()
                if b != "cuda"}
    first = next(iter(outcomes.values()))
    assert all(o == first for o in outcomes.values()), outcomes
    assert first[0] in ("ok", "error")


def test_fuzz_regression_corpus_is_checked_in():
    names = {t for t, _ in replay.regression_inputs()}
    assert "grammar_walk" in names  # the Duration-first table that overflowed decode_tokens


MODELDIRS = sorted(p for p in (FUZZ / "regressions" / "modeldir").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", MODELDIRS, ids=lambda p: p.name)
def test_fuzz_damaged_model_directories_fail_at_load(folder, backend):
    from musgen import engine
    from musgen.errors import ModelFormatError

    with pytest.raises(ModelFormatError) as info:
        engine.load(folder, backend=backend)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    assert str(folder / "config.json") in message or str(folder / "weights.safetensors") in message


def test_fuzz_grammar_walk_inputs_are_fixed_points(backend):
    """The walk-mode property on the seeds the harness starts from: complete sentences of the
    grammar are fixed points of decode/encode after one round (note hygiene) on every
    backend."""
    from musgen import codec

    for index in range(len(CONFIGS)):
        config = codec_config(index)
        for seed in range(20):
            data = bytes([index]) + bytes((seed * 37 + k * 11) % 256 for k in range(64))
            tokens = replay.walk_tokens(data)
            kind, value = replay.grammar_walk(data, backend)
            assert kind == "ok", value
            if tokens.size and tokens[-1] == config.eos_id:
                assert value is True
            codec.grammar(config).walk(tokens)


# --------------------------------------------------------------------------- Python targets
@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    from musgen.engine._random import random_model_dir

    d = random_model_dir(tmp_path_factory.mktemp("fz") / "m", vocab_size=codec_config(2)
                         .vocab_size, embedding_dim=2, lstm_units=[3], seed=0,
                         codec=codec_config(2).to_dict())
    return targets.read_files(d)


@pytest.fixture(scope="module")
def dataset_files(tmp_path_factory, data_dir):
    from musgen.data import prepare

    src = tmp_path_factory.mktemp("fz") / "src"
    for split in ("train", "valid", "test"):
        (src / split).mkdir(parents=True)
        f = sorted((data_dir / "corpus_small" / split).glob("*.mid"))[0]
        shutil.copy(f, src / split / f.name)
    out = src.parent / "ds"
    prepare(src, out, quiet=True, config=codec_config(2))
    return targets.read_files(out)


@pytest.mark.parametrize("fuzz_backend", [b for b in available_backends() if b != "cuda"])
def test_fuzz_model_directory_reader(model_files, fuzz_backend):
    @FUZZ_SETTINGS
    @given(st.data())
    def run(data):
        files = data.draw(targets.damaged_files(model_files))
        with tempfile.TemporaryDirectory() as tmp:
            targets.check_model_dir(targets.write_files(Path(tmp) / "m", files), fuzz_backend)

    run()


def test_fuzz_dataset_reader(dataset_files):
    @FUZZ_SETTINGS
    @given(st.data())
    def run(data):
        files = data.draw(targets.damaged_files(dataset_files))
        with tempfile.TemporaryDirectory() as tmp:
            targets.check_dataset(targets.write_files(Path(tmp) / "ds", files))

    run()


def test_fuzz_generate_arguments(model_files):
    from hypothesis import assume

    with tempfile.TemporaryDirectory() as tmp:
        model = targets.write_files(Path(tmp) / "m", model_files)

        @FUZZ_SETTINGS
        @given(targets.generate_argv())
        def run(argv):
            assume(targets.bounded_generate(argv))
            with tempfile.TemporaryDirectory() as out:
                targets.check_generate_args(model, Path(out), argv)

        run()


def test_fuzz_codec_decode_v2_inputs_agree():
    """The codec_decode_v2 harness's inputs (walks and raw tokens) decode alike on every
    backend, and walks always decode."""
    from configs import CONFIGS_V2

    backends = [b for b in available_backends() if b != "cuda"]
    for index in range(len(CONFIGS_V2)):
        for seed in range(12):
            body = bytes((seed * 53 + k * 29) % 256 for k in range(120))
            for mode in (0x80, 0):
                data = bytes([mode | index]) + body
                outcomes = [replay.codec_decode_v2(data, b) for b in backends]
                assert all(o == outcomes[0] for o in outcomes), (index, seed, mode)
                if mode:
                    assert outcomes[0][0] == "ok", outcomes[0]
