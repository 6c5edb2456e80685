"""Memorization: matching statistics against a brute-force search, copy rates and longest runs
on hand-made sets, runs never crossing two training pieces, transposition invariance."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_score
from hypothesis import given, settings
from hypothesis import strategies as st

from musgen.eval.memorization import CopyIndex, _suffix_array, memorization, pitch_sequence


def brute_force(train, query) -> list:
    out = []
    for i in range(len(query)):
        best = 0
        for t in train:
            for j in range(len(t)):
                k = 0
                while i + k < len(query) and j + k < len(t) and query[i + k] == t[j + k]:
                    k += 1
                best = max(best, k)
        out.append(best)
    return out


sequences = st.lists(st.integers(0, 3), max_size=25)


@settings(max_examples=60, deadline=None)
@given(st.lists(sequences, min_size=1, max_size=4), st.lists(sequences, min_size=1, max_size=3))
def test_matching_statistics_equal_brute_force(train, queries):
    index = CopyIndex(train)
    got = index.matching_statistics(queries)
    for q, ms in zip(queries, got):
        assert ms.tolist() == brute_force(train, q)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=60))
def test_suffix_array_sorts_the_suffixes(text):
    text = np.array(text + [9], np.int64)  # a unique last symbol: every suffix differs
    want = sorted(range(text.size), key=lambda i: text[i:].tolist())
    assert _suffix_array(text).tolist() == want


def test_runs_never_cross_two_training_pieces():
    index = CopyIndex([[1, 2, 3], [4, 5, 6]])
    (ms,) = index.matching_statistics([[2, 3, 4, 5]])
    assert ms.tolist() == [2, 1, 2, 1]


def test_copy_rates_and_longest_runs():
    train = [list(range(40, 70)), list(range(80, 100))]
    copied = list(range(40, 60)) + [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]  # 20 notes copied
    fresh = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]                  # nothing copied
    out = memorization([copied, fresh], CopyIndex(train))
    # 8-grams: copied has 23 (13 inside the copy), fresh has 3; 16-grams: 15 (5 inside) + 0
    assert out["copy_rate_8"] == pytest.approx(13 / 26)
    assert out["copy_rate_12"] == pytest.approx(9 / 19)
    assert out["copy_rate_16"] == pytest.approx(5 / 15)
    assert out["longest_run"] == [20, 0]
    assert out["longest_run_max"] == 20 and out["longest_run_median"] == 10.0
    assert out["n_pieces"] == 2


def test_short_pieces_have_no_ngrams():
    out = memorization([[40, 41, 42]], CopyIndex([[40, 41, 42]]))
    assert out["copy_rate_8"] is None and out["longest_run_max"] == 3


def test_transposition_invariant_copies():
    melody = [60, 62, 64, 65, 67, 65, 64, 62, 60, 59, 60, 64, 67]
    up = [p + 5 for p in melody]
    as_pitches = memorization([up], CopyIndex([melody]))
    assert as_pitches["copy_rate_8"] == 0.0 and as_pitches["longest_run_max"] == 3  # 67 65 64
    steps = CopyIndex([np.diff(melody)])
    out = memorization([np.diff(up)], steps, intervals=True)
    # 13 notes copied as intervals: 12 steps, counted as 13 notes; 6 of 6 8-note n-grams
    assert out["longest_run_max"] == 13 and out["copy_rate_8"] == 1.0


def test_pitch_sequence_orders_chords_low_to_high_without_drums():
    s = make_score([(0, 0, 67, 0, 1), (0, 0, 60, 0, 1), (0, 0, 64, 0, 1), (1, 9, 36, 0, 1),
                    (0, 0, 62, 1, 2)])
    assert pitch_sequence(s).tolist() == [60, 64, 67, 62]
    assert pitch_sequence(s, intervals=True).tolist() == [4, 3, -5]


def test_index_rejects_bad_input():
    with pytest.raises(ValueError, match="no training sequence"):
        CopyIndex([])
    with pytest.raises(ValueError, match="outside -255..255"):
        CopyIndex([[1000]])
