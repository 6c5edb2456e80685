"""Musical features on hand-made pieces with known answers: a C major scale, a four-voice chord
progression with one parallel fifth and one clash, a re-struck note, rests, rhythms, keys."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_score

from musgen.eval import metrics as m
from musgen.score import Score

SCALE = [60, 62, 64, 65, 67, 69, 71, 72]


def c_major_scale(with_drums: bool = False):
    rows = [(0, 0, p, i, i + 1) for i, p in enumerate(SCALE)]
    if with_drums:  # percussion on channel 10 must change nothing
        rows += [(1, 9, 36, i, i + 0.25) for i in range(8)] + [(1, 9, 49, 9.5, 12)]
    return make_score(rows)


# (bass, tenor, alto, soprano), one chord per beat:
# C -> Dm moves bass and tenor up a step in parallel fifths (C-G to D-A); Dm -> G and G -> C are
# proper; the last beat is the clash C-E-F-G (in no triad or seventh chord).
PROGRESSION = [(48, 55, 64, 72), (50, 57, 65, 69), (43, 59, 62, 67), (48, 60, 64, 67),
               (48, 64, 65, 67)]


def progression():
    return make_score([(0, 0, p, beat, beat + 1) for beat, chord in enumerate(PROGRESSION)
                       for p in chord])


def test_scale_pitch_features():
    s = c_major_scale()
    h = m.pitch_class_histogram(s)
    want = np.zeros(12)
    want[[0, 2, 4, 5, 7, 9, 11]] = [2, 1, 1, 1, 1, 1, 1]
    np.testing.assert_allclose(h, want / 8)
    # -(2/8 log2 2/8 + 6 x 1/8 log2 1/8) = 0.5 + 2.25
    assert m.pitch_class_entropy(s) == pytest.approx(2.75)
    assert m.scale_consistency(s) == 1.0
    assert m.pitch_range(s) == 12 and m.n_pitches(s) == 8
    assert m.find_key(s)[:2] == (0, "major")
    np.testing.assert_allclose(m.key_normalized_pitch_class_histogram(s), h)


def test_scale_rhythm_and_form_features():
    s = c_major_scale()
    assert m.polyphony(s) == 1.0
    one_beat = m.DURATION_LABELS.index("1")
    np.testing.assert_allclose(m.note_length_histogram(s), np.eye(13)[one_beat])
    np.testing.assert_allclose(m.ioi_histogram(s), np.eye(13)[one_beat])
    assert m.empty_beat_rate(s) == 0.0
    np.testing.assert_allclose(m.voice_count_histogram(s), np.eye(7)[1])
    assert m.chord_fit(s) == 1.0  # a single note lies inside a chord
    assert math.isnan(m.parallel_fifths_octaves(s))  # never four voices
    assert m.restrikes(s) == 0.0 and m.longest_hold(s) == 1.0
    assert m.length_beats(s) == 8.0
    # 4/4 at 12 steps per beat: 48 steps a bar, the same onsets in bars 1 and 2; MusPy counts
    # floor(96 / 48) + 1 = 3 bars, the last empty: 4 differing steps of 2 x 48.
    assert m.groove_consistency(s) == pytest.approx(1 - 4 / 96)
    assert m.ended_early(s, 16) == 1.0 and m.ended_early(s, 8) == 0.0
    assert math.isnan(m.ended_early(s, None))


def test_drums_are_ignored():
    plain, drums = m.piece_features(c_major_scale()), m.piece_features(c_major_scale(True))
    for name in m.FEATURES:
        np.testing.assert_array_equal(plain[name], drums[name], err_msg=name)


def test_progression_parallel_fifth_and_clash():
    s = progression()
    # four changes between consecutive four-voice beats; only C -> Dm holds parallels
    assert m.parallel_fifths_octaves(s) == pytest.approx(1 / 4)
    # five sounding beats, the last (C E F G) fits no triad or seventh chord
    assert m.chord_fit(s) == pytest.approx(4 / 5)
    assert m.polyphony(s) == 4.0
    np.testing.assert_allclose(m.voice_count_histogram(s), np.eye(7)[4])
    # without the parallel beat the rest of the progression is clean
    clean = make_score([(0, 0, p, beat, beat + 1)
                        for beat, chord in enumerate(PROGRESSION[1:]) for p in chord])
    assert m.parallel_fifths_octaves(clean) == 0.0


def test_parallel_octaves_and_contrary_motion():
    # bass and soprano an octave apart move up together: parallel octaves
    up = make_score([(0, 0, p, b, b + 1) for b, chord in
                     enumerate([(48, 52, 55, 60), (50, 53, 57, 62)]) for p in chord])
    assert m.parallel_fifths_octaves(up) == 1.0
    # all four move down, bass and tenor a fifth apart before and after: parallel fifths
    down = make_score([(0, 0, p, b, b + 1) for b, chord in
                       enumerate([(48, 55, 64, 72), (43, 50, 62, 67)]) for p in chord])
    assert m.parallel_fifths_octaves(down) == 1.0
    # the same fifth (C-G to G-D) by contrary motion, bass down and tenor up: not parallel
    contrary = make_score([(0, 0, p, b, b + 1) for b, chord in
                           enumerate([(48, 55, 64, 72), (43, 62, 67, 71)]) for p in chord])
    assert m.parallel_fifths_octaves(contrary) == 0.0
    oblique = make_score([(0, 0, p, b, b + 1) for b, chord in
                          enumerate([(48, 55, 64, 72), (48, 57, 65, 69)]) for p in chord])
    assert m.parallel_fifths_octaves(oblique) == 0.0  # the bass holds: no parallel motion


def test_restrikes_and_longest_hold():
    s = make_score([(1, 0, 60, 0, 4),   # held C4 on track 1
                    (1, 0, 60, 2, 3),   # struck again while it sounds: a re-strike
                    (2, 0, 60, 1, 2),   # another instrument: not a re-strike
                    (1, 0, 60, 4, 5)])  # starts when the first ends: not a re-strike
    assert m.restrikes(s) == pytest.approx(100 * 1 / 4)
    # pitch 60 sounds without a break over [0, 4); the note at 4 is a new attack
    assert m.longest_hold(s) == 4.0
    same_onset = make_score([(1, 0, 60, 0, 2), (1, 0, 60, 0, 1)])  # doubled, not re-struck
    assert m.restrikes(same_onset) == 0.0


def test_empty_beats_are_half_open():
    # notes on [0, 1) and [3, 3.5): beats 1 and 2 are silent (MusPy would fill beat 1)
    s = make_score([(0, 0, 60, 0, 1), (0, 0, 62, 3, 3.5)])
    assert m.empty_beat_rate(s) == 0.5
    # mid-beats 0.5 .. 3.5: one voice, then none (the last note ends at 3.5)
    np.testing.assert_allclose(m.voice_count_histogram(s), [0.75, 0.25, 0, 0, 0, 0, 0])


def test_duration_histograms_bin_to_the_nearest_value():
    # onsets 0, 0.5, 1, 2, 3.5: IOIs 0.5, 0.5, 1, 1.5; lengths 1/3 (a triplet), 1/2, 1, 2, 8
    s = make_score([(0, 0, 60, 0, 1 / 3), (0, 0, 62, 0.5, 1), (0, 0, 64, 1, 2),
                    (0, 0, 65, 2, 4), (0, 0, 67, 3.5, 11.5)])
    labels = list(m.DURATION_LABELS)
    ioi = dict(zip(labels, m.ioi_histogram(s)))
    assert ioi["1/2"] == 0.5 and ioi["1"] == 0.25 and ioi["3/2"] == 0.25
    lengths = dict(zip(labels, m.note_length_histogram(s)))
    for label in ("1/3", "1/2", "1", "2", "8+"):
        assert lengths[label] == pytest.approx(0.2), label


def test_polyphony_counts_held_notes_at_each_onset():
    # a whole note under four quarter notes: 2 notes sound at every onset
    s = make_score([(0, 0, 48, 0, 4)] + [(0, 0, 60 + i, i, i + 1) for i in range(4)])
    assert m.polyphony(s) == 2.0


def test_key_finding_minor_and_transposed():
    # A natural minor with the tonic triad held longer
    a_minor = [(0, 0, p, 2 * i, 2 * i + (2 if p % 12 in (9, 0, 4) else 1))
               for i, p in enumerate([57, 59, 60, 62, 64, 65, 67, 69])]
    s = make_score(a_minor)
    assert m.find_key(s)[:2] == (9, "minor")
    h = m.pitch_class_histogram(s)
    np.testing.assert_allclose(m.key_normalized_pitch_class_histogram(s), np.roll(h, -9))
    # the scale a tritone up is F# major
    up = make_score([(0, 0, p + 6, i, i + 1) for i, p in enumerate(SCALE)])
    assert m.find_key(up)[:2] == (6, "major")
    np.testing.assert_allclose(m.key_normalized_pitch_class_histogram(up),
                               m.pitch_class_histogram(c_major_scale()))


def test_groove_consistency_of_a_steady_rhythm():
    # the same rhythm (beats 1, 2 and the 16th after 3) in three 3/4 bars, ending inside bar 3
    rows = [(0, 0, 60, bar * 3 + t, bar * 3 + t + 0.5) for bar in range(3) for t in (0, 1, 2.25)]
    s = make_score(rows, meters=[(0, 3, 4)])
    assert m.groove_consistency(s) == 1.0
    s2 = make_score(rows[:3] + [(0, 0, 60, 3, 3.5), (0, 0, 60, 8.25, 8.75)],
                    meters=[(0, 3, 4)])
    # bar 2 keeps only the downbeat (2 onsets differ from bar 1); bar 3 only the 16th after
    # beat 3 (2 differ from bar 2): 4 of 2 x 36 steps
    assert m.groove_consistency(s2) == pytest.approx(1 - 4 / 72)


def test_empty_piece_is_undefined_not_an_error():
    f = m.piece_features(Score())
    assert f["n_pitches"] == 0 and f["length_beats"] == 0
    for name in ("pitch_class_entropy", "scale_consistency", "pitch_range", "polyphony",
                 "empty_beat_rate", "groove_consistency", "chord_fit", "restrikes",
                 "longest_hold", "parallel_fifths_octaves"):
        assert math.isnan(f[name]), name
    assert np.isnan(f["pitch_class_histogram"]).all()


def test_feature_table_shapes_and_values():
    table = m.feature_table([c_major_scale(), progression()], target_beats=6)
    assert set(table) == set(m.FEATURES)
    for name, f in m.FEATURES.items():
        assert table[name].shape == ((2,) if f.size == 1 else (2, f.size)), name
    np.testing.assert_allclose(table["ended_early"], [0.0, 1.0])
    np.testing.assert_allclose(table["chord_fit"], [1.0, 0.8])


def test_piece_notes_rejects_what_is_not_a_score():
    with pytest.raises(TypeError, match="expected a musgen Score"):
        m.pitch_range([60, 62])


def test_zero_length_notes_sound_for_one_tick():
    s = make_score([(0, 0, 60, 1, 1), (0, 0, 64, 1, 2)])
    assert m.polyphony(s) == 2.0
    assert m.length_beats(s) == 2.0
