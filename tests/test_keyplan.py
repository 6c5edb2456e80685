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
    kw = dict(n=4, length="16 beats", seed=11, backend=backend)
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
