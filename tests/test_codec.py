"""Tests of musgen.codec: representation, round trips, backend parity, configs, transposition and
the paper preset. Grammar properties live in test_codec_grammar.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musgen import CodecError, Score, codec
from musgen._backend import has_cpp
from musgen.score import NOTE_DTYPE, TEMPO_DTYPE

# Random and real scores hold long silences and notes that encode shortens (with a CodecWarning);
# the warnings themselves are tested in test_codec_limits.py.
pytestmark = pytest.mark.filterwarnings("ignore::musgen.CodecWarning")

CONFIGS = {
    "default": codec.default_config(),
    "drums": codec.default_config(keep_drums=True),
    "small": codec.CodecConfig(steps_per_beat=4, max_time_shift=3, max_duration=2,
                               pitch_range=(55, 70), velocity_bins=4, keep_drums=True,
                               drum_pitch_range=(35, 40)),
    "seconds": codec.default_config(timing="seconds"),
    "seconds_coarse": codec.default_config(timing="seconds", step_ms=50, max_time_shift=7,
                                           max_duration=5),
}

HYP = settings(max_examples=40, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture])


def make_score(rows, tpb=480, tempos=()):
    notes = np.array(rows, dtype=NOTE_DTYPE)
    order = np.lexsort((notes["end"], notes["pitch"], notes["channel"], notes["track"],
                        notes["start"]))
    return Score(notes=notes[order], ticks_per_beat=tpb,
                 tempos=np.array(list(tempos), dtype=TEMPO_DTYPE))


@st.composite
def scores(draw, max_notes=40):
    tpb = draw(st.sampled_from([480, 96, 100, 384, 1024, 7, 1]))
    n = draw(st.integers(0, max_notes))
    rows = []
    for _ in range(n):
        start = draw(st.integers(0, tpb * 24))
        length = draw(st.one_of(st.integers(0, tpb * 2), st.integers(0, tpb * 30)))
        channel = draw(st.sampled_from([0, 1, 9, 15]))
        rows.append((draw(st.integers(0, 3)), channel, draw(st.integers(0, 127)),
                     draw(st.integers(0, 127)), start, start + length))
    tempos = draw(st.lists(st.tuples(st.integers(0, tpb * 24), st.integers(1, 2_000_000)),
                           max_size=4))
    tempos.sort(key=lambda t: t[0])
    score = make_score(rows, tpb, tempos)
    if draw(st.booleans()):  # encoders must not rely on the Score order
        perm = draw(st.permutations(range(n)))
        score.notes = score.notes[list(perm)]
    return score


def first_tempo(score):
    from musgen.codec._python import first_tempo as ft

    return ft(score, None)


# ------------------------------------------------------------------ representation, by hand
def test_codec_encode_known_tokens(backend):
    cfg = CONFIGS["default"]
    s = make_score([
        (0, 0, 64, 90, 0, 240),      # chord at 0: sorted by pitch, 64 after 60
        (1, 0, 60, 100, 0, 480),
        (0, 0, 67, 10, 4800, 4810),  # 10 beats later (120 steps = 48 + 48 + 24), 10 ticks -> 1 step
        (0, 9, 36, 100, 0, 10),      # drum: dropped by default
    ])
    names = cfg.describe(codec.encode(s, cfg, backend=backend))
    assert names == ["BOS", "Pitch_60", "Velocity_25", "Duration_12",
                     "Pitch_64", "Velocity_22", "Duration_6",
                     "TimeShift_48", "TimeShift_48", "TimeShift_24",
                     "Pitch_67", "Velocity_2", "Duration_1", "EOS"]


def test_codec_encode_drums_kept_as_drum_pitch(backend):
    cfg = CONFIGS["drums"]
    s = make_score([(0, 9, 36, 100, 0, 10), (0, 0, 60, 100, 0, 480), (0, 9, 20, 100, 0, 10)])
    names = cfg.describe(codec.encode(s, cfg, backend=backend))
    # drums come after pitched notes at one onset; pitch 20 is outside the drum range
    assert names == ["BOS", "Pitch_60", "Velocity_25", "Duration_12",
                     "DrumPitch_36", "Velocity_25", "Duration_1", "EOS"]
    d = codec.decode(codec.encode(s, cfg, backend=backend), cfg, backend=backend)
    assert d.notes["channel"].tolist() == [0, 9]
    assert d.notes["pitch"].tolist() == [60, 36]


def test_codec_encode_rounds_half_up_in_integers(backend):
    cfg = codec.default_config(steps_per_beat=4)  # 16ths; 480 tpb -> 120 ticks per step
    s = make_score([(0, 0, 60, 64, 59, 180), (0, 0, 61, 64, 60, 181)])  # 59 -> 0, 60 -> 1
    names = cfg.describe(codec.encode(s, cfg, backend=backend))
    assert names == ["BOS", "Pitch_60", "Velocity_16", "Duration_2",  # end 180 -> 2 (half up)
                     "TimeShift_1", "Pitch_61", "Velocity_16", "Duration_1", "EOS"]


def test_codec_encode_merges_same_onset_and_pitch(backend):
    cfg = CONFIGS["default"]
    s = make_score([(0, 0, 60, 50, 0, 480), (1, 0, 60, 120, 0, 960), (2, 3, 60, 127, 2, 959)])
    toks = codec.encode(s, cfg, backend=backend)
    # the longest wins; of the two 24-step notes (ticks 2 and 0 round to step 0) the louder
    assert cfg.describe(toks) == ["BOS", "Pitch_60", "Velocity_31", "Duration_24", "EOS"]


def test_codec_encode_zero_length_and_out_of_range(backend):
    cfg = codec.default_config(pitch_range=(21, 108))
    s = make_score([(0, 0, 60, 1, 100, 100), (0, 0, 10, 100, 0, 480), (0, 0, 120, 100, 0, 9)])
    names = cfg.describe(codec.encode(s, cfg, backend=backend))
    assert names == ["BOS", "TimeShift_3", "Pitch_60", "Velocity_0", "Duration_1", "EOS"]


def test_codec_encode_empty_score(backend):
    cfg = CONFIGS["default"]
    toks = codec.encode(Score(), cfg, backend=backend)
    assert toks.tolist() == [cfg.bos_id, cfg.eos_id]
    assert codec.decode(toks, cfg, backend=backend).n_notes == 0


def test_codec_encode_rejects_negative_ticks(backend):
    s = make_score([(0, 0, 60, 100, -5, 10)])
    with pytest.raises(CodecError, match="negative tick -5"):
        codec.encode(s, backend=backend)


def test_codec_encode_rejects_overflowing_ticks(backend):
    s = make_score([(0, 0, 60, 100, 0, 1 << 60)])
    with pytest.raises(CodecError, match="too large"):
        codec.encode(s, backend=backend)


def test_codec_decode_velocity_bin_centres(backend):
    cfg = CONFIGS["default"]
    toks = [cfg.bos_id]
    for b in (0, 17, 31):
        toks += [cfg.token_id("Pitch_60"), cfg.token_id(f"Velocity_{b}"),
                 cfg.token_id("Duration_1"), cfg.token_id("TimeShift_1")]
    toks = toks[:-1] + [cfg.eos_id]
    d = codec.decode(toks, cfg, backend=backend)
    assert d.notes["velocity"].tolist() == [2, 70, 126]
    assert d.notes["start"].tolist() == [0, 40, 80]
    assert d.tempos.tolist() == [(0, 500000)]


# ------------------------------------------------------------------ round trips and parity
@pytest.mark.parametrize("name", sorted(CONFIGS))
@HYP
@given(score=scores())
def test_codec_roundtrip_equals_quantize(backend, name, score):
    cfg = CONFIGS[name]
    toks = codec.encode(score, cfg, backend=backend)
    assert toks.dtype == np.int32
    assert toks[0] == cfg.bos_id and toks[-1] == cfg.eos_id
    back = codec.decode(toks, cfg, backend=backend, tempo=first_tempo(score))
    expected = codec.quantize(score, cfg)
    assert back.equals(expected), (back.notes, expected.notes)


@pytest.mark.skipif(not has_cpp(), reason="parity needs the C++ extension")
@pytest.mark.parametrize("name", sorted(CONFIGS))
@HYP
@given(score=scores())
def test_codec_backends_identical_tokens(name, score):
    cfg = CONFIGS[name]
    a = codec.encode(score, cfg, backend="cpp")
    b = codec.encode(score, cfg, backend="python")
    assert a.tolist() == b.tolist()
    assert codec.decode(a, cfg, backend="cpp").equals(codec.decode(b, cfg, backend="python"))


@HYP
@given(score=scores())
def test_codec_encode_ignores_note_order(backend, score):
    cfg = CONFIGS["small"]
    ref = codec.encode(score, cfg, backend=backend)
    shuffled = Score(notes=score.notes[::-1].copy(), ticks_per_beat=score.ticks_per_beat,
                     tempos=score.tempos)
    assert codec.encode(shuffled, cfg, backend=backend).tolist() == ref.tolist()


def test_codec_encode_many_matches_encode(backend):
    rng = np.random.default_rng(3)
    scores_ = []
    for i in range(25):
        n = int(rng.integers(0, 200))
        start = np.sort(rng.integers(0, 20000, n))
        rows = [(0, int(c), int(p), int(v), int(s), int(s + d)) for c, p, v, s, d in zip(
            rng.integers(0, 16, n), rng.integers(0, 128, n), rng.integers(1, 128, n), start,
            rng.integers(0, 2000, n))]
        scores_.append(make_score(rows, tpb=int(rng.choice([96, 480, 1000]))))
    for name in ("default", "drums", "seconds"):
        cfg = CONFIGS[name]
        many = codec.encode_many(scores_, cfg, threads=3, backend=backend)
        assert [m.tolist() for m in many] == [codec.encode(s, cfg, backend=backend).tolist()
                                              for s in scores_]
    assert codec.encode_many([], CONFIGS["default"], backend=backend) == []


def test_codec_encode_many_names_the_failing_score(backend):
    good = make_score([(0, 0, 60, 100, 0, 10)])
    bad = make_score([(0, 0, 60, 100, -1, 10)])
    with pytest.raises(CodecError, match="encode_many: score 2: .*negative tick"):
        codec.encode_many([good, good, bad, good], threads=2, backend=backend)


# ------------------------------------------------------------------ seconds timing
def test_codec_seconds_mode_follows_the_tempo_map(backend):
    cfg = CONFIGS["seconds"]  # 10 ms steps
    # 480 tpb; 120 BPM for the first beat, then 60 BPM: tick 960 is at 0.5 + 1.0 = 1.5 s
    s = make_score([(0, 0, 60, 100, 0, 480), (0, 0, 62, 100, 960, 1200)], tpb=480,
                   tempos=[(0, 500_000), (480, 1_000_000)])
    names = cfg.describe(codec.encode(s, cfg, backend=backend))
    assert names == ["BOS", "Pitch_60", "Velocity_25", "Duration_50",
                     "TimeShift_100", "TimeShift_50", "Pitch_62", "Velocity_25",
                     "Duration_50", "EOS"]
    d = codec.decode(codec.encode(s, cfg, backend=backend), cfg, backend=backend)
    seconds = d.ticks_to_seconds(d.notes["start"])
    np.testing.assert_allclose(seconds, s.ticks_to_seconds(s.notes["start"]), atol=0.005)


@HYP
@given(score=scores(max_notes=20))
def test_codec_seconds_mode_keeps_onsets_within_half_a_step(backend, score):
    cfg = codec.default_config(timing="seconds", max_silence_beats=None)  # no silence shortened
    d = codec.decode(codec.encode(score, cfg, backend=backend), cfg, backend=backend)
    # every decoded onset is within half a step (+ a decoded tick) of an original onset
    orig = np.unique(score.ticks_to_seconds(score.notes["start"]))
    got = d.ticks_to_seconds(d.notes["start"])
    if got.size:
        dist = np.abs(got[:, None] - orig[None, :]).min(axis=1)
        assert dist.max() <= 0.005 + 0.5 / 480 * 0.5 + 1e-9


def test_codec_smpte_division(backend):
    s = Score(notes=np.array([(0, 0, 60, 100, 0, 50), (0, 0, 62, 100, 100, 150)],
                             dtype=NOTE_DTYPE), ticks_per_beat=0, smpte=(25, 40))
    # 25 fps x 40 ticks = 1000 ticks per second: 100 ticks = 0.1 s = 10 steps of 10 ms,
    # and in beats (120 BPM assumed) 0.1 s = 0.2 beat = 2.4 -> 2 steps of 1/12 beat
    sec = CONFIGS["seconds"]
    assert sec.describe(codec.encode(s, sec, backend=backend))[4:6] == ["TimeShift_10",
                                                                        "Pitch_62"]
    beats = CONFIGS["default"]
    assert beats.describe(codec.encode(s, beats, backend=backend))[4:6] == ["TimeShift_2",
                                                                            "Pitch_62"]


# ------------------------------------------------------------------ config
def test_codec_config_json_roundtrip():
    for cfg in CONFIGS.values():
        d = json.loads(json.dumps(cfg.to_dict()))
        assert codec.CodecConfig.from_dict(d) == cfg
        assert codec.CodecConfig.from_json(cfg.to_json()) == cfg
        assert d["vocabulary"] == cfg.token_names
        assert len(cfg.token_names) == cfg.vocab_size == d["vocab_size"]


def test_codec_config_vocabulary_layout():
    cfg = CONFIGS["default"]
    assert cfg.vocab_size == 3 + 48 + 128 + 32 + 48
    assert (cfg.pad_id, cfg.bos_id, cfg.eos_id) == (0, 1, 2)
    assert cfg.token_names[:4] == ["PAD", "BOS", "EOS", "TimeShift_1"]
    assert cfg.token_id("Pitch_60") == 3 + 48 + 60
    assert cfg.token_names[-1] == "Duration_48"
    assert len(set(cfg.token_names)) == cfg.vocab_size
    types = cfg.token_types
    assert types.dtype == np.uint8 and types.shape == (cfg.vocab_size,)
    assert types[cfg.token_id("TimeShift_7")] == codec.TYPE_TIME
    assert types[cfg.token_id("Pitch_0")] == codec.TYPE_PITCH
    assert types[cfg.token_id("Velocity_3")] == codec.TYPE_VELOCITY
    assert types[cfg.token_id("Duration_3")] == codec.TYPE_DURATION
    assert types[cfg.eos_id] == codec.TYPE_SPECIAL
    steps = cfg.token_steps
    assert steps.dtype == np.int32
    assert steps[cfg.token_id("TimeShift_7")] == 7
    assert steps[cfg.token_id("Duration_7")] == 0 and steps.sum() == 48 * 49 // 2
    drums = CONFIGS["drums"]
    assert drums.token_types[drums.token_id("DrumPitch_36")] == codec.TYPE_DRUM_PITCH
    assert drums.vocab_size == cfg.vocab_size + 61


@pytest.mark.parametrize("change, message", [
    ({"velocity_bins": 24}, "velocity_bins: expected a power of two"),
    ({"pitch_range": [80, 70]}, "pitch_range: expected 0 <= low <= high <= 127"),
    ({"pitch_range": "all"}, "pitch_range: expected a .low, high. pair"),
    ({"steps_per_beat": 0}, r"steps_per_beat: expected an int in \[1, 960\]"),
    ({"timing": "bars"}, "timing: expected one of"),
    ({"keep_drums": 1}, "keep_drums: expected a bool"),
    ({"colour": "red"}, r"unknown keys \['colour'\]"),
    ({"format": "other"}, "format is 'other'"),
    ({"format_version": 9}, "format_version 9 is not supported"),
    ({"vocab_size": 5}, "vocab_size is 5 but the parameters give 259"),
])
def test_codec_config_from_dict_rejects(change, message):
    d = codec.default_config().to_dict()
    d.update(change)
    if "vocab_size" not in change:
        d.pop("vocabulary")
        d.pop("vocab_size")
    with pytest.raises(CodecError, match=message):
        codec.CodecConfig.from_dict(d)


def test_codec_config_from_dict_checks_vocabulary():
    d = codec.default_config().to_dict()
    d["vocabulary"][111] = "Pitch_999"
    with pytest.raises(CodecError, match="token 111 is 'Pitch_999', expected 'Pitch_60'"):
        codec.CodecConfig.from_dict(d)
    with pytest.raises(CodecError, match="expected a dict"):
        codec.CodecConfig.from_dict([1, 2])
    with pytest.raises(CodecError, match="not valid JSON"):
        codec.CodecConfig.from_json("{")


def test_codec_default_config_seconds_defaults():
    cfg = codec.default_config(timing="seconds")
    assert (cfg.max_time_shift, cfg.max_duration, cfg.step_ms) == (100, 100, 10)
    assert codec.default_config(timing="seconds", max_duration=7).max_duration == 7


# ------------------------------------------------------------------ transpose
def test_codec_transpose_shifts_pitches_only(backend):
    cfg = CONFIGS["drums"]
    s = make_score([(0, 0, 60, 100, 0, 480), (0, 0, 64, 100, 0, 480), (0, 9, 36, 100, 0, 10),
                    (0, 0, 120, 100, 480, 960)])
    toks = codec.encode(s, cfg, backend=backend)
    up = cfg.transpose(toks, 7)
    assert up.dtype == np.int32
    d = codec.decode(up, cfg, backend=backend)
    assert sorted(d.notes["pitch"].tolist()) == [36, 67, 71, 127]
    assert d.notes["channel"][d.notes["pitch"] == 36].tolist() == [9]
    assert cfg.transpose(toks, 8) is None   # 120 + 8 > 127
    assert cfg.transpose(toks, -61) is None  # 60 - 61 < 0
    down = cfg.transpose(toks, -60)
    assert codec.decode(down, cfg, backend=backend).notes["pitch"].min() == 0
    assert cfg.transpose(toks, 0).tolist() == toks.tolist()
    batch = cfg.transpose(np.stack([toks, toks]), 1)
    assert batch.shape == (2, toks.size) and (batch[0] == cfg.transpose(toks, 1)).all()


# ------------------------------------------------------------------ paper preset
def test_codec_paper_features_values():
    s = make_score([(0, 0, 64, 90, 480, 960), (0, 0, 60, 100, 0, 480), (0, 0, 67, 80, 480, 500),
                    (0, 9, 36, 100, 100, 110)], tpb=480, tempos=[(0, 1_000_000)])
    f = codec.paper_features(s)
    assert f.dtype == np.float32 and f.shape == (3, 3)
    np.testing.assert_allclose(f, [[60, 100, 0.0], [64, 90, 1.0], [67, 80, 0.0]])
    assert codec.paper_features(s, keep_drums=True).shape == (4, 3)
    assert codec.paper_features(Score()).shape == (0, 3)


def test_codec_paper_decode_durations():
    f = np.array([[60, 100, 0.0], [64, 90.4, 0.5], [67, 300, 0.0], [69, 0, 0.01], [70, 64, 9.0]],
                 dtype=np.float32)
    s = codec.paper_decode(f, ticks_per_beat=480, tempo=500_000)  # 0.5 s = 480 ticks
    n = s.notes
    assert n["start"].tolist() == [0, 480, 480, 490, 9130]
    assert n["pitch"].tolist() == [60, 64, 67, 69, 70]
    assert n["velocity"].tolist() == [100, 90, 127, 1, 64]
    # until the next later onset, at least a 16th (120), at most 4 beats; the last: one beat
    assert (n["end"] - n["start"]).tolist() == [480, 120, 120, 1920, 480]
    assert s.tempos.tolist() == [(0, 500_000)]
    back = codec.paper_features(s)
    np.testing.assert_allclose(back[:, 2], [0, 0.5, 0, 10 / 960, 8640 / 960], rtol=1e-6)
    with pytest.raises(CodecError, match="shape"):
        codec.paper_decode(np.zeros((3, 2)))
    with pytest.raises(CodecError, match="NaN"):
        codec.paper_decode(np.full((1, 3), np.nan))


@pytest.mark.skipif(not has_cpp(), reason="parity needs the C++ extension")
@HYP
@given(data=st.data())
def test_codec_backends_identical_on_huge_ticks(data):
    """Ticks far beyond 32 bits take the C++ encoder's 64-bit path; it must agree too."""
    # up to 2**29 ticks: the 64-bit path with a long (but bounded) first gap; beyond that
    # mostly refusals (too many tokens or overflow), which must agree too
    base = data.draw(st.one_of(st.integers(0, 1 << 29), st.integers(0, 1 << 44)))
    n = data.draw(st.integers(1, 12))
    rows = [(0, 0, data.draw(st.integers(0, 127)), 64, base + s, base + s + d)
            for s, d in zip(data.draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n)),
                            data.draw(st.lists(st.integers(0, 10**5), min_size=n, max_size=n)))]
    score = make_score(rows, tpb=data.draw(st.sampled_from([96, 480, 960])),
                       tempos=[(0, 400_000), (base + 1000, 900_000)])
    for cfg in (CONFIGS["default"], CONFIGS["seconds"]):
        outcomes = []
        for b in ("cpp", "python"):
            try:
                outcomes.append(codec.encode(score, cfg, backend=b).tolist())
            except CodecError as exc:  # past 2**61 tick x tempo: the same refusal
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1]
        if base < 1 << 29:
            assert isinstance(outcomes[0], list)


def test_codec_encode_refuses_too_many_tokens(backend):
    # one note 2**30 beats late: 2**30 * 12 / 48 TimeShift tokens
    # (with the silence limit off: by default the gap is shortened to 16 beats)
    cfg = codec.default_config(max_silence_beats=None)
    s = make_score([(0, 0, 60, 100, 480 << 30, (480 << 30) + 10)])
    with pytest.raises(CodecError, match=f"more than {codec.MAX_TOKENS} tokens"):
        codec.encode(s, cfg, backend=backend)
    # just under the limit: 2**25 - 5 tokens = BOS, gap tokens, Pitch, Velocity, Duration, EOS
    gap = (codec.MAX_TOKENS - 5) * 48
    s = make_score([(0, 0, 60, 100, gap * 40, gap * 40 + 40)])
    assert codec.encode(s, cfg, backend=backend).size == codec.MAX_TOKENS
    s = make_score([(0, 0, 60, 100, (gap + 48) * 40, (gap + 48) * 40 + 40)])
    with pytest.raises(CodecError, match="more than"):
        codec.encode(s, cfg, backend=backend)


def test_codec_decode_at_another_resolution(backend):
    cfg = CONFIGS["default"]
    toks = [cfg.bos_id, cfg.token_id("TimeShift_5"), cfg.token_id("Pitch_60"),
            cfg.token_id("Velocity_3"), cfg.token_id("Duration_7"), cfg.eos_id]
    s = codec.decode(toks, cfg, backend=backend, ticks_per_beat=100, tempo=600_000)
    # 5 steps = 5/12 beat = 41.67 -> 42 ticks; end 12/12 beat = 100 ticks
    assert (s.notes["start"].tolist(), s.notes["end"].tolist()) == ([42], [100])
    assert s.ticks_per_beat == 100 and s.tempos.tolist() == [(0, 600_000)]
