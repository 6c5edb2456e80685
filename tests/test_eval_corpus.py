"""The musical evaluation on the JSB Chorales (opt-in: MUSGEN_DATA): real music measured
against real music of the same kind must look alike, and its copies from the training split
are the honest level that generated music is compared with."""

from __future__ import annotations

import pytest

from musgen.eval.metrics import FEATURES
from musgen.eval.music import score_files

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def jsb_test_vs_train(corpus_root):
    root = corpus_root / "corpora" / "jsb_chorales" / "quarter"
    return score_files([root / "test"], [root / "train"], train=[root / "train"]).result


def test_jsb_test_split_overlaps_the_training_split_on_every_feature(jsb_test_vs_train):
    compared = [n for n, f in FEATURES.items() if f.compare]
    low = {n: jsb_test_vs_train[n]["overlap_area"] for n in compared
           if not jsb_test_vs_train[n]["overlap_area"] > 0.85}
    assert low == {}
    assert all(jsb_test_vs_train[n]["kl"] < 0.1 for n in compared)


def test_jsb_test_split_copies_about_two_percent_of_its_16_grams(jsb_test_vs_train):
    mem = jsb_test_vs_train["memorization"]
    assert 0.01 < mem["copy_rate_16"] < 0.03
    assert mem["copy_rate_8"] > mem["copy_rate_12"] > mem["copy_rate_16"]
    assert mem["longest_run_max"] >= 16


def test_jsb_bach_figures_of_harmony_and_voice_leading(jsb_test_vs_train):
    # Bach: about 91% of beats inside a triad or seventh chord, about 2% of four-voice changes
    # with parallel fifths or octaves (voices read by register), no re-struck held notes
    assert 0.88 < jsb_test_vs_train["chord_fit"]["mean"] < 0.95
    assert jsb_test_vs_train["parallel_fifths_octaves"]["mean"] < 0.04
    assert jsb_test_vs_train["restrikes"]["mean"] == 0.0
