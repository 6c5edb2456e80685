"""Agreement with MusPy on real files, for the features musgen defines as MusPy does
(``pitch_range``, ``n_pitches``, ``pitch_class_entropy``, ``scale_consistency``,
``groove_consistency`` at 12 steps per beat). MusPy's own values come from
``tests/data/eval/muspy_reference.json`` (made by ``tests/make_muspy_reference.py``), so these
tests need no MusPy; the big corpora's files are opt-in (MUSGEN_DATA)."""

from __future__ import annotations

import json

import pytest
from conftest import DATA

from musgen import midi
from musgen.eval import metrics as m

REFERENCE = json.loads((DATA / "eval" / "muspy_reference.json").read_text())
SHARED = ("pitch_range", "n_pitches", "pitch_class_entropy", "scale_consistency",
          "groove_consistency")
SHIPPED = sorted(k for k in REFERENCE["files"] if not k.startswith("corpus:"))
CORPUS = sorted(k for k in REFERENCE["files"] if k.startswith("corpus:"))


def check_agreement(path, want: dict) -> None:
    score = midi.read(path)
    got = m.piece_features(score)
    for name in SHARED:
        if name == "groove_consistency" and want["has_drums"]:
            continue  # MusPy's groove counts drum onsets, musgen's features never do
        if want[name] is None:
            continue  # MusPy: undefined (NaN) here
        assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), (path, name)


def test_reference_covers_the_shipped_files_with_notes():
    assert len(SHIPPED) >= 35 and REFERENCE["steps_per_beat"] == m.GROOVE_STEPS_PER_BEAT
    # every shared feature is compared on real files, not skipped everywhere
    for name in SHARED:
        assert sum(REFERENCE["files"][k][name] is not None for k in SHIPPED) >= 30, name


@pytest.mark.parametrize("key", SHIPPED)
def test_shared_features_agree_with_muspy(key, data_dir):
    check_agreement(data_dir / key, REFERENCE["files"][key])


@pytest.mark.corpus
@pytest.mark.parametrize("key", CORPUS)
def test_shared_features_agree_with_muspy_on_the_corpora(key, corpus_root):
    check_agreement(corpus_root / "corpora" / key.removeprefix("corpus:"),
                    REFERENCE["files"][key])
