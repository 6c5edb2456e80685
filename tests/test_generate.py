"""generate(): codec-aware sampling that always decodes, lengths in tokens/notes/beats, primers,
seeds (same pieces on every backend), the default-model error, and the ``musgen generate`` CLI."""

from __future__ import annotations

import numpy as np
import pytest

from musgen import codec, engine
from musgen.engine._random import random_model_dir
from musgen.errors import ModelFormatError
from musgen.generation import generate, generate_with_report, parse_length
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


def _ends_on_a_beat(score, beats=None):
    """Every note is released by the piece's end, which is on a beat (and at ``beats``)."""
    end = int(score.notes["end"].max())
    assert end % score.ticks_per_beat == 0
    last = int(score.notes["start"].max())
    assert (score.notes["end"][score.notes["start"] == last] == end).all()
    if beats is not None:
        assert end == beats * score.ticks_per_beat


def test_generate_pieces_decode_and_meet_note_budget(model, config, backend):
    scores = generate(model, n=3, length="40 notes", seed=1, backend=backend)
    assert len(scores) == 3
    for s in scores:
        assert len(s.notes) >= 40  # at least the budget, then to the next beat
        _ends_on_a_beat(s)
        _tokens_valid(s, config)
    assert len({s.notes.tobytes() for s in scores}) == 3  # streams differ
    legacy = generate(model, n=3, length="40 notes", seed=1, backend=backend, ending="none")
    assert [len(s.notes) for s in legacy] == [40, 40, 40]  # the budget met where it may end


def test_generate_beats_budget(model, config, backend):
    scores = generate(model, n=2, length="16 beats", seed=2, backend=backend, top_k=20)
    for s in scores:
        _ends_on_a_beat(s, 16)  # closed exactly at the budget: no time step crosses it


def test_generate_token_budget(model, config, backend):
    report = generate_with_report(model, n=2, length=100, seed=3, backend=backend)
    assert all(p.tokens >= 100 and p.ended == "as asked" for p in report.pieces)
    scores = generate(model, n=2, length=100, seed=3, backend=backend, ending="none")
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
    primer = generate(model, n=1, length="12 notes", seed=5, backend=backend, ending="none")[0]
    out = generate(model, n=2, length="10 notes", seed=6, primer=primer, backend=backend,
                   ending="none")
    for s in out:
        assert len(s.notes) == 22
        tokens = _tokens_valid(s, config)
        ptoks = codec.encode(primer, config)
        np.testing.assert_array_equal(tokens[:len(ptoks) - 1], ptoks[:-1])
    with_tokens = generate(model, n=2, length="10 notes", seed=6, backend=backend,
                           primer=codec.encode(primer, config), ending="none")
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
        assert len(got.notes) == len(want.notes) >= 20
        np.testing.assert_array_equal(got.notes["pitch"], want.notes["pitch"])
    # a primer file is continued; a folder output holds generated-000.mid
    rc = main(["generate", str(model), "-o", str(tmp_path / "dir"), "--primer", str(files[0]),
               "--length", "5 notes", "--seed", "1", "--backend", backend, "--ending", "none"])
    assert rc == 0
    cont = midi.read(tmp_path / "dir" / "generated-000.mid")
    assert len(cont.notes) == len(direct[0].notes) + 5
    out_text = capsys.readouterr().out
    assert f"wrote 1 file(s), {len(cont.notes)} notes" in out_text
    assert "seed 1\n" in out_text  # the given seed, not called drawn


def _text_event(path) -> str:
    """The first Text meta event (FF 01) of a MIDI file."""
    data = path.read_bytes()
    i = data.index(b"\xff\x01")
    n, j = 0, i + 2
    while True:
        n = (n << 7) | (data[j] & 0x7F)
        j += 1
        if not data[j - 1] & 0x80:
            break
    return data[j:j + n].decode("utf-8")


def test_generate_cli_prints_and_stores_the_seed(model, tmp_path, capsys):
    from musgen import midi
    from musgen.cli import main

    out = tmp_path / "a.mid"
    assert main(["generate", str(model), "-o", str(out), "--length", "6 beats",
                 "--key", "Eb major", "--max-voices", "3"]) == 0
    printed = capsys.readouterr().out
    seed = int(printed.split("seed ")[1].split()[0])
    assert "(drawn: --seed" in printed
    text = _text_event(out)
    assert f"seed={seed}" in text and "model=m" in text and "stream=0" in text
    assert 'key="Eb major"' in text and "max_voices=3" in text and "length=6 beats" in text
    again = tmp_path / "b.mid"
    assert main(["generate", str(model), "-o", str(again), "--length", "6 beats", "--key",
                 "Eb major", "--max-voices", "3", "--seed", str(seed), "--quiet"]) == 0
    np.testing.assert_array_equal(midi.read(out).notes, midi.read(again).notes)


def test_generate_cli_constraint_options(model, tmp_path, capsys):
    from musgen import midi
    from musgen.cli import main

    out = tmp_path / "c.mid"
    rc = main(["generate", str(model), "-o", str(out), "--n", "3", "--length", "12 beats",
               "--seed", "9", "--key", "D minor", "--pitch-range", "C4-C5", "--max-voices", "2",
               "--density", "2", "--quiet"])
    assert rc == 0
    for f in sorted(tmp_path.glob("c-*.mid")):
        notes = midi.read(f).notes
        assert notes["pitch"].min() >= 60 and notes["pitch"].max() <= 72
        assert set((notes["pitch"] % 12).tolist()) <= {2, 4, 5, 7, 9, 10, 0}
        assert notes["end"].max() == 12 * 480


@pytest.mark.parametrize("args,message", [
    (["--key", "H minor"], "argument --key"), (["--pitch-range", "90-40"], "--pitch-range"),
    (["--max-voices", "0"], "--max-voices"), (["--scale-strictness", "1.5"], "--scale-str"),
    (["--density", "-2"], "--density"), (["--ending", "bar"], None),
    (["--max-primer-tokens", "1"], "--max-primer-tokens"), (["--grace", "-1"], "--grace"),
])
def test_generate_cli_rejects_bad_constraint_values(model, tmp_path, capsys, args, message):
    from musgen.cli import main

    out = tmp_path / "x.mid"
    assert main(["generate", str(model), "-o", str(out), "--length", "4 beats", *args]) == 2
    err = capsys.readouterr().err
    if message is None:  # a choice the parser accepts but a version-1 model cannot do
        assert "musgen generate: error: ending: 'bar' needs a model whose codec has bars" in err
    else:
        assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_generate_cli_reports_pieces_that_end_early(tmp_path, config, capsys):
    from musgen.cli import main

    d = random_model_dir(tmp_path / "eager", vocab_size=config.vocab_size, embedding_dim=12,
                         lstm_units=[24, 16], seed=7, scale=1.2, codec=config.to_dict())
    cfg, t = load_model_dir(d)
    t["head/bias"][config.eos_id] = 6.0
    save_model_dir(d, cfg, t)
    rc = main(["generate", str(d), "-o", str(tmp_path / "e.mid"), "--n", "4", "--length",
               "40 notes", "--seed", "2", "--allow-early-end", "--quiet"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "asked 40 notes: the model ended it early (--allow-early-end)" in err
    assert "e-000.mid" in err or "e-001.mid" in err


def test_generate_cli_errors(model, tmp_path, capsys):
    from musgen.cli import main

    assert main(["generate", str(tmp_path / "missing"), "-o", str(tmp_path / "x.mid")]) == 2
    assert "argument model: " in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["generate", str(tmp_path / "empty"), "-o", str(tmp_path / "x.mid")]) == 1
    assert "config.json" in capsys.readouterr().err
    assert main(["generate", str(model), "-o", str(tmp_path / "x.mid"), "--n", "0"]) == 2


@pytest.mark.parametrize("text,tonic,pcs", [
    ("D minor", 2, {2, 4, 5, 7, 9, 10, 0}), ("Dm", 2, {2, 4, 5, 7, 9, 10, 0}),
    ("Bb", 10, {10, 0, 2, 3, 5, 7, 9}), ("f# dorian", 6, {6, 8, 9, 11, 1, 3, 4}),
    ("A harmonic minor", 9, {9, 11, 0, 2, 4, 5, 8}), ("C major pentatonic", 0, {0, 2, 4, 7, 9}),
])
def test_generate_parse_key(text, tonic, pcs):
    from musgen.engine.constraints import parse_key

    scale = parse_key(text)
    assert scale.tonic == tonic and scale.pitch_classes == pcs


@pytest.mark.parametrize("text,expected", [
    ("48-84", (48, 84)), ("C3-C6", (48, 84)), ("C-1..G9", (0, 127)), ("60,72", (60, 72)),
    ((40, 50), (40, 50)), ("A#3:Bb4", (58, 70)),
])
def test_generate_parse_pitch_range(text, expected):
    from musgen.engine.constraints import parse_pitch_range

    assert parse_pitch_range(text) == expected


@pytest.mark.parametrize("call,match", [
    (dict(key="H"), "key: 'H'"), (dict(pitch_range="90-40"), "low 90 is above high 40"),
    (dict(pitch_range=(128, 130)), "outside 0..127"), (dict(max_voices=0), "max_voices: 0"),
    (dict(density=0), "density: 0"), (dict(key="C", scale_strictness=2), "scale_strictness"),
    (dict(scale_strictness=0.5), "give a key too"), (dict(ending="bar"), "needs a model whose"),
    (dict(ending="sometime"), "ending: 'sometime'"), (dict(grace=-1), "grace: -1"),
    (dict(instruments=[0]), "no instrument tokens"), (dict(bpm=90), "no tempo tokens"),
    (dict(style="jazz"), "no style tokens"), (dict(max_primer_tokens=0), "max_primer_tokens"),
    (dict(key="C", pitch_range=(61, 61)), "no pitch of this codec is left"),
    (dict(max_rest=-1), "max_rest: -1"), (dict(max_rest="later"), "max_rest: 'later'"),
    (dict(max_rest=float("nan")), "max_rest: nan"),
])
def test_generate_rejects_bad_settings_before_any_work(model, call, match):
    with pytest.raises(ValueError, match=match):
        generate(model, length="4 beats", backend="python", **call)


def test_generate_conditions_of_a_codec_with_header_blocks():
    """The version-2 conditions as static masks, on a hand-made vocabulary: only the asked
    token of each header block, an exact instrument list as the primer's Program tokens."""
    from types import SimpleNamespace

    from musgen.generation import _static_arrays
    from test_engine_rules import ID, V2_NAMES, v2_tables

    tables, fake = v2_tables(), SimpleNamespace(token_names=V2_NAMES)
    (allowed, bias), prefix = _static_arrays(
        fake, tables, key="A minor", scale_strictness=1.0, pitch_range=None, style=None,
        density=None, bpm=100, instruments=[40, "drums"], allowed_instruments=None)
    ok = {V2_NAMES[i] for i in np.flatnonzero(allowed)}
    assert "Key_Am" in ok and "Key_C" not in ok
    assert "Tempo_90" in ok and "Tempo_120" not in ok  # 100 BPM: the nearer bin on a log scale
    assert not any(n.startswith("Program_") for n in ok)
    assert prefix == [ID["Program_40"], ID["Program_Drums"]]
    assert {f"Pitch_{p}" for p in (60, 62, 64, 65, 67, 69, 71)} <= ok and "Pitch_61" not in ok
    (allowed, _), prefix = _static_arrays(
        fake, tables, key=None, scale_strictness=1.0, pitch_range=None, style=None,
        density=None, bpm=None, instruments=None, allowed_instruments=[0])
    assert prefix == [] and {V2_NAMES[i] for i in np.flatnonzero(allowed)
                             if V2_NAMES[i].startswith("Program_")} == {"Program_0"}
    with pytest.raises(ValueError, match="program 41 has no token"):
        _static_arrays(fake, tables, key=None, scale_strictness=1.0, pitch_range=None,
                       style=None, density=None, bpm=None, instruments=[41],
                       allowed_instruments=None)


def _rests(score) -> float:
    """The longest span, in beats, with no note sounding after the first note."""
    n = score.notes[np.argsort(score.notes["start"], kind="stable")]
    reach = np.maximum.accumulate(n["end"])
    gaps = np.r_[n["start"][1:] - reach[:-1], int(score.notes["end"].max()) - reach[-1]]
    return max(0, int(gaps.max())) / score.ticks_per_beat


def test_generate_max_rest_auto_keeps_to_the_corpus_rests(model, tmp_path, backend):
    """``max_rest="auto"`` (the default) is the model's default, off without one; a number
    holds; None turns it off."""
    kw = dict(n=6, length="24 beats", seed=3, backend=backend)
    free = generate_with_report(model, max_rest=None, **kw)
    longest = max(_rests(s) for s in free.scores)
    assert longest > 1.0 and "max_rest" not in free.settings
    plain = generate_with_report(model, **kw)  # no default: "auto" is off
    assert all(a.equals(b) for a, b in zip(plain.scores, free.scores))
    cfg, t = load_model_dir(model)
    cfg["generation"] = {"max_rest": 0.0}
    recorded = save_model_dir(tmp_path / "rests", cfg, t)
    auto = generate_with_report(recorded, **kw)
    assert auto.settings["max_rest"] == '"0 (the model\'s)"'
    assert max(_rests(s) for s in auto.scores) == 0.0
    half = generate_with_report(recorded, max_rest=0.5, **kw)
    assert half.settings["max_rest"] == 0.5
    assert 0 < max(_rests(s) for s in half.scores) <= 0.5
    off = generate_with_report(recorded, max_rest=None, **kw)
    assert all(a.equals(b) for a, b in zip(off.scores, free.scores))


def _sounding(score, tick) -> int:
    n = score.notes
    return int(np.count_nonzero((n["start"] <= tick) & (n["end"] > tick)))


def test_generate_voice_defaults_of_the_model(model, tmp_path, backend):
    """A model's generation defaults hold for "auto" (min_voices = max_voices: exactly that
    many notes sound at every grid step after the first note), a value given overrides them,
    None turns them off."""
    cfg, t = load_model_dir(model)
    cfg["generation"] = {"max_voices": 3, "min_voices": 3}
    three = save_model_dir(tmp_path / "three", cfg, t)
    kw = dict(n=4, length="16 beats", seed=5, backend=backend)
    got = generate_with_report(three, **kw)
    assert got.settings["max_voices"] == got.settings["min_voices"] == '"3 (the model\'s)"'
    for s in got.scores:
        first, end = int(s.notes["start"].min()), int(s.notes["end"].max())
        step = s.ticks_per_beat // 12
        assert {_sounding(s, k) for k in range(first, end, step)} == {3}
    two = generate_with_report(three, max_voices=2, min_voices=None, **kw)
    assert two.settings["max_voices"] == 2 and "min_voices" not in two.settings
    for s in two.scores:
        assert max(_sounding(s, int(k)) for k in s.notes["start"]) <= 2
    off = generate_with_report(three, max_voices=None, min_voices=None, **kw)
    assert max(_sounding(s, int(k)) for s in off.scores for k in s.notes["start"]) > 3
    with pytest.raises(ValueError, match="min_voices: 3 is more than max_voices=2"):
        generate(three, max_voices=2, length="4 beats")


@pytest.mark.parametrize("section, match", [
    ([], "'generation' must be an object"),
    ({"temperature": 0.5}, "generation.temperature: not a setting a model may set"),
    ({"max_voices": 0}, r"generation.max_voices: 0, expected 1..32"),
    ({"max_rest": -1}, "generation.max_rest: -1, expected beats >= 0"),
    ({"max_voices": 2, "min_voices": 3}, "generation.min_voices 3 is more than max_voices 2"),
])
def test_generate_damaged_generation_defaults_name_the_file(model, tmp_path, section, match):
    cfg, t = load_model_dir(model)
    cfg["generation"] = section
    bad = save_model_dir(tmp_path / "bad", cfg, t)
    with pytest.raises(ModelFormatError, match=match) as info:
        generate(bad, length="4 beats")
    assert str(bad / "config.json") in str(info.value)


def test_generate_cli_max_rest(model, tmp_path, capsys):
    from musgen.cli import main
    from musgen import midi

    assert main(["generate", str(model), "-o", str(tmp_path / "a.mid"), "--length", "16 beats",
                 "--seed", "3", "--max-rest", "0", "-q"]) == 0
    assert _rests(midi.read(tmp_path / "a.mid")) == 0.0
    for bad in ("-1", "soon"):
        assert main(["generate", str(model), "-o", str(tmp_path / "b.mid"), "--max-rest",
                     bad]) == 2
        assert "expected beats >= 0, 'auto' (the model's) or 'off'" in capsys.readouterr().err
