"""generate(): codec-aware sampling that always decodes, lengths in tokens/notes/beats, primers,
seeds (same pieces on every backend), the default-model error, and the ``musgen generate`` CLI."""

from __future__ import annotations

import numpy as np
import pytest

from musgen import codec, engine
from musgen.engine._random import random_model_dir
from musgen.errors import ModelFormatError
from musgen.generation import generate, parse_length
from musgen.modeldir import load_model_dir, save_model_dir


@pytest.fixture(scope="module")
def config():
    return codec.default_config()


@pytest.fixture(scope="module")
def model(tmp_path_factory, config):
    """A random model over the default vocabulary whose EOS logit is pushed down, so pieces run
    to their length budget."""
    d = random_model_dir(tmp_path_factory.mktemp("gen") / "m", vocab_size=config.vocab_size,
                         embedding_dim=12, lstm_units=[24, 16], seed=7, scale=1.2,
                         codec=config.to_dict())
    cfg, t = load_model_dir(d)
    t["head/bias"][config.eos_id] = -40.0
    return save_model_dir(d, cfg, t)


def _tokens_valid(score, config):
    tokens = codec.encode(score, config)
    codec.grammar(config).walk(tokens)  # raises CodecError on any violation
    return tokens


def test_generate_pieces_decode_and_meet_note_budget(model, config, backend):
    scores = generate(model, n=3, length="40 notes", seed=1, backend=backend)
    assert len(scores) == 3
    for s in scores:
        assert len(s.notes) == 40
        _tokens_valid(s, config)
    assert len({s.notes.tobytes() for s in scores}) == 3  # streams differ


def test_generate_beats_budget(model, config, backend):
    scores = generate(model, n=2, length="16 beats", seed=2, backend=backend, top_k=20)
    for s in scores:
        tpb = s.ticks_per_beat
        starts = s.notes["start"]
        assert starts.max() >= 16 * tpb  # the clock passed 16 beats ...
        gap = config.max_time_shift / config.steps_per_beat * tpb
        assert starts.max() <= 16 * tpb + gap  # ... by at most one TimeShift


def test_generate_token_budget(model, config, backend):
    scores = generate(model, n=2, length=100, seed=3, backend=backend)
    for s in scores:
        tokens = _tokens_valid(s, config)
        assert 100 <= len(tokens) - 2 <= 104  # BOS + 100 generated (+ completion) + EOS


def test_generate_same_seed_same_pieces_on_every_backend(model):
    from musgen import _backend

    backends = ["python"] + (["cpp"] if _backend.has_cpp() else [])
    runs = [generate(model, n=4, length=150, seed=99, temperature=[1.0, 0.8, 1.2, 0.0],
                     top_p=0.95, backend=b) for b in backends]
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a.notes, b.notes)
    again = generate(model, n=4, length=150, seed=99, temperature=[1.0, 0.8, 1.2, 0.0],
                     top_p=0.95, backend="python")
    assert all(np.array_equal(a.notes, b.notes) for a, b in zip(runs[0], again))
    other_seed = generate(model, n=1, length=150, seed=100, backend="python")
    assert not np.array_equal(other_seed[0].notes, runs[0][0].notes)


def test_generate_primer_is_continued(model, config, backend):
    primer = generate(model, n=1, length="12 notes", seed=5, backend=backend)[0]
    out = generate(model, n=2, length="10 notes", seed=6, primer=primer, backend=backend)
    for s in out:
        assert len(s.notes) == 22
        tokens = _tokens_valid(s, config)
        ptoks = codec.encode(primer, config)
        np.testing.assert_array_equal(tokens[:len(ptoks) - 1], ptoks[:-1])
    with_tokens = generate(model, n=2, length="10 notes", seed=6, backend=backend,
                           primer=codec.encode(primer, config))
    assert all(np.array_equal(a.notes, b.notes) for a, b in zip(out, with_tokens))


def test_generate_engine_instance_and_greedy(model, backend):
    eng = engine.load(model, backend=backend)
    a = generate(eng, n=2, length=80, temperature=0.0, seed=1)
    b = generate(eng, n=1, length=80, temperature=0.0, seed=12345)
    np.testing.assert_array_equal(a[0].notes, a[1].notes)
    np.testing.assert_array_equal(a[0].notes, b[0].notes)


def test_generate_without_default_model_is_a_clear_error(monkeypatch, tmp_path):
    import musgen.generation as g

    monkeypatch.setattr(g, "default_model_dir", lambda: tmp_path / "models" / "default")
    with pytest.raises(ModelFormatError, match="no default model is installed"):
        generate(n=1, length=10)


def test_generate_rejects_paper_models(tmp_path):
    d = random_model_dir(tmp_path / "p", kind="paper", lstm_units=[4])
    with pytest.raises(ValueError, match="kind 'paper'"):
        generate(d, length=10, backend="python")


@pytest.mark.parametrize("text,expected", [
    (512, (512, "tokens")), ("64 notes", (64, "notes")), ("32 beats", (32, "beats")),
    ("7", (7, "tokens")), (" 1 beat ", (1, "beats")), ("10 Tokens", (10, "tokens")),
])
def test_generate_parse_length(text, expected):
    assert parse_length(text) == expected


@pytest.mark.parametrize("bad", ["-3", "12 bars", "notes", 2.5, True, -1])
def test_generate_parse_length_rejects(bad):
    with pytest.raises(ValueError, match="length"):
        parse_length(bad)


def test_generate_cli_writes_midi_files(model, tmp_path, backend, capsys):
    from musgen import midi
    from musgen.cli import main

    out = tmp_path / "song.mid"
    rc = main(["generate", str(model), "-o", str(out), "--n", "2", "--length", "20 notes",
               "--seed", "4", "--top-p", "0.9", "--backend", backend, "--quiet"])
    assert rc == 0
    files = sorted(tmp_path.glob("song-*.mid"))
    assert [f.name for f in files] == ["song-000.mid", "song-001.mid"]
    direct = generate(model, n=2, length="20 notes", seed=4, top_p=0.9, backend=backend)
    for f, want in zip(files, direct):
        got = midi.read(f)
        assert len(got.notes) == 20
        np.testing.assert_array_equal(got.notes["pitch"], want.notes["pitch"])
    # a primer file is continued; a folder output holds generated-000.mid
    rc = main(["generate", str(model), "-o", str(tmp_path / "dir"), "--primer", str(files[0]),
               "--length", "5 notes", "--seed", "1", "--backend", backend])
    assert rc == 0
    cont = midi.read(tmp_path / "dir" / "generated-000.mid")
    assert len(cont.notes) == 25
    assert "wrote 1 file(s), 25 notes" in capsys.readouterr().out


def test_generate_cli_errors(model, tmp_path, capsys):
    from musgen.cli import main

    assert main(["generate", str(tmp_path / "missing"), "-o", str(tmp_path / "x.mid")]) == 2
    assert "argument model: " in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["generate", str(tmp_path / "empty"), "-o", str(tmp_path / "x.mid")]) == 1
    assert "config.json" in capsys.readouterr().err
    assert main(["generate", str(model), "-o", str(tmp_path / "x.mid"), "--n", "0"]) == 2
