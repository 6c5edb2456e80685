"""generate(key=...): the Key condition for keys the model knows, transposition from its best
known key of the mode for the others (musgen.keyplan)."""

import json

import numpy as np
import pytest

from musgen import codec, generation
from musgen.engine._random import random_model_dir
from musgen.engine.constraints import parse_key
from musgen.keyplan import key_plan, transpose_notes

from conftest import make_score

#: The JSB Chorales' training split, as a model directory records it.
JSB_KEYS = {"C": 104, "Cm": 76, "Gm": 20, "G": 13, "Eb": 5, "Fm": 5, "Am": 4, "F": 1}


def _config(keys=JSB_KEYS, transpose=0):
    return {"training": {"dataset": {"keys": keys},
                         "hyperparameters": {"transpose": transpose}}}


@pytest.mark.parametrize("asked, frame, shift", [
    ("D minor", "C minor", 2),
    ("A minor", "C minor", -3),          # -6..+5: the nearest way
    ("F# major", "C major", -6),
    ("B major", "C major", -1),
    ("G major", "C major", -5),          # 13 of C's 104: below a quarter of it
    ("A harmonic minor", "C harmonic minor", -3),
])
def test_keyplan_transposes_keys_the_model_hardly_saw(asked, frame, shift):
    plan = key_plan(_config(), asked)
    assert plan.transposed and plan.frame == parse_key(frame) and plan.shift == shift
    assert plan.asked == parse_key(asked)
    assert plan.describe() == f"generated in {parse_key(frame).name}, transposed {shift:+d}"


@pytest.mark.parametrize("config, asked, primer", [
    (_config(), "C major", False),                    # the model's own key
    (_config(), "C minor", False),
    (_config(), "G minor", False),                    # 20 of C minor's 76: a known key
    (_config(), "D minor", True),                     # a primer keeps its key
    (_config(), "D dorian", False),                   # no Key condition for the mode
    ({"training": {"dataset": {}}}, "D minor", False),  # no counts recorded (older models)
    ({}, "D minor", False),
    (_config(transpose=6), "D minor", False),         # augmentation covered every key
    (_config(transpose=2), "D minor", False),         # C minor +2 semitones reaches D minor
])
def test_keyplan_asks_the_condition_for_known_keys(config, asked, primer):
    plan = key_plan(config, asked, primer=primer)
    assert not plan.transposed and plan.shift == 0 and plan.frame == parse_key(asked)
    assert plan.describe() is None


def test_keyplan_augmentation_spreads_the_counts():
    # +-1 semitone: C minor reaches C# minor and B minor, not D minor
    assert not key_plan(_config(transpose=1), "C# minor").transposed
    assert key_plan(_config(transpose=1), "D minor").shift == 2


def test_keyplan_no_key_is_no_plan():
    plan = key_plan(_config(), None)
    assert plan.asked is None and plan.frame is None and not plan.transposed


def test_keyplan_transpose_notes_moves_pitched_notes_only():
    s = make_score([(0, 0, 60, 0, 1), (0, 0, 127, 0, 1), (1, 9, 36, 0, 0.5), (0, 0, 2, 1, 2)])
    out = transpose_notes(s, 3)
    pitches = sorted(zip(out.notes["channel"].tolist(), out.notes["pitch"].tolist()))
    assert pitches == [(0, 5), (0, 63), (0, 118), (9, 36)]  # 130 -> its octave below
    key = np.lexsort((out.notes["end"], out.notes["pitch"], out.notes["channel"],
                      out.notes["track"], out.notes["start"]))
    assert np.array_equal(key, np.arange(out.notes.size))  # still in the Score's order


@pytest.fixture(scope="module")
def v2_model(tmp_path_factory):
    cfg = codec.default_config(version=2, styles=("chorale",))
    d = random_model_dir(tmp_path_factory.mktemp("keys") / "m", vocab_size=cfg.vocab_size,
                         embedding_dim=12, lstm_units=[24, 24], scale=1.0, seed=5,
                         codec=cfg.to_dict())
    config = json.loads((d / "config.json").read_text())
    config["training"]["dataset"] = {"keys": JSB_KEYS}
    (d / "config.json").write_text(json.dumps(config))
    return d


def _notes(score):
    return [(int(n["start"]), int(n["end"]), int(n["pitch"]), int(n["channel"]))
            for n in score.notes]


def test_generate_transposes_a_key_the_model_hardly_saw(v2_model, backend):
    kw = {"n": 4, "length": "16 beats", "seed": 11, "backend": backend}
    # the same pieces, two semitones up (the ranges keep the random model off MIDI's edges)
    home = generation.generate_with_report(v2_model, key="C minor", pitch_range=(30, 90), **kw)
    asked = generation.generate_with_report(v2_model, key="D minor", pitch_range=(32, 92), **kw)
    assert asked.settings["key_plan"] == '"generated in C minor, transposed +2"'
    assert "key_plan" not in home.settings
    for a, b in zip(home.scores, asked.scores):
        moved = sorted((s, e, p + 2 * (c != 9), c) for s, e, p, c in _notes(a))  # drums stay
        assert a.notes.size and moved == sorted(_notes(b))
        pitched = b.notes[b.notes["channel"] != 9]
        assert pitched.size and parse_key("D minor").contains(pitched["pitch"]).all()


def test_generate_pitch_range_holds_after_the_transposition(v2_model):
    scores = generation.generate(v2_model, n=4, length="16 beats", seed=2, key="F# major",
                                 pitch_range="C4-C5")
    for s in scores:
        p = s.notes["pitch"][s.notes["channel"] != 9]
        assert p.size and p.min() >= 60 and p.max() <= 72
        assert parse_key("F# major").contains(p).all()


def test_training_records_the_key_counts_of_a_version_2_dataset(tmp_path, data_dir):
    from musgen.data import Dataset, prepare
    from musgen.training.loop import _dataset_provenance

    small = data_dir / "corpus_small"
    prepare([small], tmp_path / "v2", quiet=True)
    ds = Dataset.open(tmp_path / "v2")
    keys = _dataset_provenance(ds)["keys"]
    assert keys == ds.key_counts() and sum(keys.values()) == ds.split_indices("train").size
    plan = key_plan({"training": {"dataset": {"keys": keys}}}, "F# major")
    assert plan.frame.tonic == parse_key(next(k for k in keys if not k.endswith("m"))).tonic
    prepare([small], tmp_path / "v1", quiet=True, codec_version=1)
    assert "keys" not in _dataset_provenance(Dataset.open(tmp_path / "v1"))


# ------------------------------------------------------------------ key normalization
V2 = codec.default_config(version=2, styles=("chorale",))


def _piece(key_name, pitches):
    """Version-2 tokens of a one-part piece whose Key condition is ``key_name``, one note per
    beat on ``pitches``."""
    names = V2.token_names
    toks = [V2.bos_id, names.index("Program_0"), names.index(f"Key_{key_name}"),
            names.index("Style_chorale"), names.index("Density_2"), names.index("Tempo_16"),
            names.index("TimeSig_4_4"), names.index("Bar")]
    for i, p in enumerate(pitches):
        if i:
            toks.append(names.index("TimeShift_12"))
        toks += [names.index(f"Pitch_{p}"), names.index("Velocity_20"),
                 names.index("Duration_12")]
    return np.array(toks + [V2.eos_id], np.int32)


@pytest.mark.parametrize("key, shift, moved_to", [
    ("D", -2, "C"), ("F#", -6, "C"), ("G", 5, "C"), ("Dm", -5, "Am"), ("Cm", -3, "Am"),
    ("Am", 0, "Am"), ("Ebm", -6, "Am"),
])
def test_codec_normalize_key_moves_notes_and_condition(key, shift, moved_to):
    tokens = _piece(key, [60, 64, 67])
    assert V2.key_normalizing_shift(tokens) == shift
    out, s = V2.normalize_key(tokens)
    assert s == shift
    names = [V2.token_names[t] for t in out]
    assert f"Key_{moved_to}" in names and names.count("Bar") == 1
    assert [n for n in names if n.startswith("Pitch_")] == [
        f"Pitch_{p + shift}" for p in (60, 64, 67)]
    codec.grammar(V2).walk(out)  # still a valid piece


def test_codec_normalize_key_takes_the_other_octave_at_the_range_edge():
    out, s = V2.normalize_key(_piece("Dm", [2, 10]))  # -5 would leave 0..127: +7 instead
    assert s == 7 and V2.token_names[int(out[2])] == "Key_Am"
    assert V2.normalize_key(_piece("C", [60]))[1] == 0
    v1 = codec.default_config()
    assert v1.key_normalizing_shift(np.array([1, 60, 2])) == 0


@pytest.fixture(scope="module")
def small_v2(tmp_path_factory, data_dir):
    from musgen.data import prepare

    out = tmp_path_factory.mktemp("kn") / "ds"
    prepare([data_dir / "corpus_small"], out, quiet=True)
    return out


def test_pipeline_key_normalize_moves_every_window_to_c_or_a_minor(small_v2):
    from musgen.data import Dataset, pipeline

    ds = Dataset.open(small_v2)
    names = ds.codec.token_names
    shifts = pipeline.piece_key_shifts(ds)
    assert shifts.shape == (len(ds),) and (shifts != 0).any()
    for split in ("train", "valid"):
        for x, _ in pipeline.numpy_batches(ds, split, window=48, stride=24, batch_size=8,
                                           header_prefix=True, key_normalize=True, seed=2):
            keys = {names[t] for t in x.ravel().tolist() if names[t].startswith("Key_")}
            assert keys and keys <= {"Key_C", "Key_Am"}
    plain = pipeline.plan_epoch(ds, "train", window=48, stride=24, seed=2)
    moved = pipeline.plan_epoch(ds, "train", window=48, stride=24, seed=2, key_normalize=True)
    assert np.array_equal(plain.starts, moved.starts)  # the same windows and order
    with pytest.raises(ValueError, match="key_normalize and transpose: give one"):
        pipeline.plan_epoch(ds, "train", window=48, transpose=2, key_normalize=True)
    assert ds.key_counts(normalized=True) == {
        "C": sum(n for k, n in ds.key_counts().items() if not k.endswith("m")),
        **({"Am": n} if (n := sum(v for k, v in ds.key_counts().items() if k.endswith("m")))
           else {})}


def test_generate_key_normalized_model_continues_a_primer_in_its_own_key(tmp_path, backend):
    """A primer in D is continued moved to C (as the model was trained), then moved back: the
    primer's notes are the piece's, unchanged."""
    cfg = V2
    d = random_model_dir(tmp_path / "kn", vocab_size=cfg.vocab_size, embedding_dim=12,
                         lstm_units=[24, 24], scale=1.0, seed=5, codec=cfg.to_dict())
    config = json.loads((d / "config.json").read_text())
    config["training"].update({"dataset": {"keys": {"C": 10, "Am": 6}},
                               "hyperparameters": {"key_normalize": True}})
    (d / "config.json").write_text(json.dumps(config))
    primer = codec.decode(_piece("D", [62, 66, 69, 74]), cfg)
    got = generation.generate_with_report(d, n=3, length="8 beats", seed=4, primer=primer,
                                          backend=backend, pitch_range=(42, 92))
    # the model saw the primer moved to C: the same continuation as a C primer, moved up 2
    in_c = codec.decode(_piece("C", [60, 64, 67, 72]), cfg)
    ref = generation.generate_with_report(d, n=3, length="8 beats", seed=4, primer=in_c,
                                          backend=backend, pitch_range=(40, 90))
    for a, b in zip(got.scores, ref.scores):
        first = primer.notes.size
        assert np.array_equal(a.notes[:first], primer.notes)  # the primer, as it was
        assert a.notes.size > first
        pitched = a.notes["pitch"][first:][a.notes["channel"][first:] != 9]
        assert pitched.min() >= 42 and pitched.max() <= 92  # the range, in the piece's key
        moved = sorted((int(n["start"]), int(n["pitch"]) - 2 * (n["channel"] != 9))
                       for n in a.notes[first:])
        assert moved == sorted((int(n["start"]), int(n["pitch"])) for n in b.notes[first:])


@pytest.mark.tf
def test_train_key_normalize_records_its_keys_and_evaluate_moves_the_pieces(small_v2, tmp_path):
    from musgen import training
    from musgen.eval import evaluate

    out = training.train(small_v2, tmp_path / "m", epochs=2, seed=1, units=16, layers=1,
                         embedding_dim=8, window=48, stride=24, batch_size=8,
                         max_minutes=None, quiet=True, key_normalize=True)
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["hyperparameters"]["key_normalize"] is True
    assert set(config["training"]["dataset"]["keys"]) <= {"C", "Am"}
    plan = key_plan(config, "F# major")
    assert plan.frame == parse_key("C major") and plan.shift == -6
    result = evaluate(out, small_v2, split="test", baselines=True)
    assert "moved to C major or A minor" in result["method"]
    assert result["model"]["nll_per_token"] > 0 and result["ngram"]["nll_per_token"] > 0
    with pytest.raises(ValueError, match="key_normalize and transpose: give one"):
        training.train(small_v2, tmp_path / "bad", epochs=1, transpose=3, key_normalize=True,
                       max_minutes=None, quiet=True)
