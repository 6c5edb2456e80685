"""Note hygiene and bounded tokens, both codec versions and both backends: re-struck notes end at
the re-strike, notes longer than ``max_note_beats`` are cut, silences longer than
``max_silence_beats`` are shortened (whole beats in version 1, whole bars in version 2), and
encode says so with a CodecWarning; a hostile file's far-away notes cost a few tokens."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

from musgen import CodecError, CodecWarning, Score, codec, midi
from musgen._backend import has_cpp
from musgen.score import NOTE_DTYPE, TIME_SIGNATURE_DTYPE

V1 = codec.default_config()
V2 = codec.default_config(version=2)
BACKENDS = ["cpp", "python"] if has_cpp() else ["python"]


def score(rows, tpb=480, sigs=()):
    notes = np.array(rows, dtype=NOTE_DTYPE)
    notes = notes[np.lexsort((notes["end"], notes["pitch"], notes["channel"], notes["track"],
                              notes["start"]))]
    return Score(notes=notes, ticks_per_beat=tpb,
                 time_signatures=np.array([(t, n, d, 24, 8) for t, n, d in sigs],
                                          TIME_SIGNATURE_DTYPE))


def quiet_encode(s, cfg, backend):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodecWarning)
        return codec.encode(s, cfg, backend=backend)


def hostile_midi() -> bytes:
    """A 59-byte file, one tick per beat, whose notes are 2^28 ticks apart and whose first note
    lasts 2^28 beats: before the limits, version 1 needed over 2^25 tokens for it."""
    far = b"\xff\xff\xff\x7f"  # the largest delta time, 0x0FFFFFFF ticks
    body = (b"\x00\x90\x3c\x40" + far + b"\x80\x3c\x40" + far + b"\x90\x3e\x40"
            + b"\x01\x80\x3e\x40" + far + b"\x90\x40\x40" + b"\x01\x80\x40\x40"
            + b"\x00\xff\x2f\x00")
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1) + b"MTrk" + struct.pack(">I", len(body))
            + body)


# ------------------------------------------------------------------ re-strikes
def test_v1_restruck_note_ends_at_the_restrike(backend):
    # C4 for 4 beats, struck again after one beat (another track: the same channel in v1)
    s = score([(0, 0, 60, 100, 0, 1920), (1, 0, 60, 100, 480, 960), (0, 0, 64, 100, 0, 1920)])
    toks = codec.encode(s, V1, backend=backend)
    assert V1.describe(toks)[1:4] == ["Pitch_60", "Velocity_25", "Duration_12"]
    d = codec.decode(toks, V1, backend=backend)
    assert d.notes[["pitch", "start", "end"]].tolist() == [(60, 0, 480), (64, 0, 1920),
                                                           (60, 480, 960)]
    assert d.equals(codec.quantize(s, V1))


def test_v1_decode_ends_restruck_notes(backend):
    c = V1
    ids = [c.bos_id] + [c.token_id(n) for n in (
        "Pitch_60", "Velocity_3", "Duration_48", "TimeShift_12", "Pitch_60", "Velocity_3",
        "Duration_4")] + [c.eos_id]
    d = codec.decode(ids, c, backend=backend)
    assert d.notes[["start", "end"]].tolist() == [(0, 480), (480, 640)]
    # the writer's file reads back with the same notes: no overlap on one key
    from musgen.midi._writer import encode as write_bytes

    assert np.array_equal(midi.read_bytes(write_bytes(d)).notes, d.notes)


def test_v2_restrike_is_per_part(backend):
    # two piano parts strike C4 in turn: each keeps its own note
    s = score([(1, 0, 60, 100, 0, 1920), (2, 1, 60, 100, 480, 960), (1, 0, 60, 100, 960, 1200)])
    d = codec.decode(codec.encode(s, V2, backend=backend), V2, backend=backend)
    assert d.notes[["track", "start", "end"]].tolist() == [(0, 0, 960), (1, 480, 960),
                                                           (0, 960, 1200)]


# ------------------------------------------------------------------ long notes
@pytest.mark.parametrize("cfg", [V1, V2], ids=["v1", "v2"])
def test_long_note_is_cut_with_a_warning(backend, cfg):
    s = score([(0, 0, 60, 100, 0, 480 * 70), (0, 0, 62, 100, 0, 480)])
    with pytest.warns(CodecWarning, match="encode: 1 note longer than 64 beats cut to 64") as rec:
        toks = codec.encode(s, cfg, backend=backend)
    assert rec[0].message.report == {"notes_capped": 1} and rec[0].message.index is None
    d = codec.decode(toks, cfg, backend=backend)
    assert sorted((d.notes["end"] - d.notes["start"]).tolist()) == [480, 480 * 64]
    assert d.equals(codec.quantize(s, cfg))


def test_decode_caps_long_notes(backend):
    c = V1
    ids = [c.bos_id, c.token_id("Pitch_60"), c.token_id("Velocity_3")]
    ids += [c.token_id("Duration_48")] * 20 + [c.eos_id]  # 80 beats
    assert (codec.decode(ids, c, backend=backend).notes["end"] == 480 * 64).all()
    off = codec.default_config(max_note_beats=None)
    assert (codec.decode(ids, off, backend=backend).notes["end"] == 480 * 80).all()


# ------------------------------------------------------------------ silences
def test_v1_silence_shortened_in_whole_beats(backend):
    # a silence of 30.5 beats after a one-beat note becomes 16.5 beats (14 whole beats out)
    s = score([(0, 0, 60, 100, 0, 480), (0, 0, 62, 100, 480 * 31 + 240, 480 * 32)])
    with pytest.warns(CodecWarning, match=r"1 silence longer than 16 beats shortened "
                                          r"\(14 beats removed\)") as rec:
        toks = codec.encode(s, V1, backend=backend)
    assert rec[0].message.report == {"silences_shortened": 1, "beats_removed": 14.0}
    d = codec.decode(toks, V1, backend=backend)
    assert d.notes["start"].tolist() == [0, 480 * 17 + 240]
    assert d.equals(codec.quantize(s, V1))
    # a held note is not silence: nothing is shortened under it
    held = score([(0, 0, 48, 100, 0, 480 * 30), (0, 0, 60, 100, 0, 480),
                  (0, 0, 62, 100, 480 * 31 + 240, 480 * 32)])
    d = codec.decode(quiet_encode(held, V1, backend), V1, backend=backend)
    assert d.notes["start"].tolist()[-1] == 480 * 31 + 240
    # the leading silence too
    late = score([(0, 0, 60, 100, 480 * 40, 480 * 41)])
    d = codec.decode(quiet_encode(late, V1, backend), V1, backend=backend)
    assert d.notes["start"].tolist() == [480 * 16]


def test_v1_silence_limit_off_and_seconds_timing(backend):
    s = score([(0, 0, 60, 100, 0, 480), (0, 0, 62, 100, 480 * 31 + 240, 480 * 32)])
    off = codec.default_config(max_silence_beats=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CodecWarning)  # nothing to warn about
        d = codec.decode(codec.encode(s, off, backend=backend), off, backend=backend)
    assert d.notes["start"].tolist() == [0, 480 * 31 + 240]
    # seconds: 16 beats are 8 s; the silence of 15.25 s loses 7.25 s (725 steps of 10 ms)
    sec = codec.default_config(timing="seconds")
    d = codec.decode(quiet_encode(s, sec, backend), sec, backend=backend)
    assert d.notes["start"].tolist() == [0, 480 * 16 + 480]


def test_v2_silence_removes_whole_bars(backend):
    # 3/4: a note in bar 0, then 12 empty bars (36 beats), then a note in bar 13, beat 2
    s = score([(0, 0, 60, 100, 0, 480), (0, 0, 62, 100, 1440 * 13 + 480, 1440 * 13 + 960)],
              sigs=[(0, 3, 4)])
    with pytest.warns(CodecWarning, match=r"1 silence longer than 16 beats shortened "
                                          r"\(18 beats removed\)"):
        toks = codec.encode(s, V2, backend=backend)
    names = V2.describe(toks)
    # bar 0, then 6 empty bars kept (18 beats >= 16), then the note's bar
    assert names.count("Bar") == 1 + 6 + 1
    d = codec.decode(toks, V2, backend=backend)
    assert d.notes["start"].tolist() == [0, 1440 * 7 + 480]
    assert d.equals(codec.quantize(s, V2))


# ------------------------------------------------------------------ bounded tokens
@pytest.mark.parametrize("cfg", [V1, V2], ids=["v1", "v2"])
def test_hostile_file_costs_a_few_tokens(tmp_path, cfg):
    data = hostile_midi()
    s = midi.read_bytes(data)
    assert s.n_notes == 3 and int(s.notes["start"].max()) == 3 * 0x0FFFFFFF + 1
    results = []
    for b in BACKENDS:
        with pytest.warns(CodecWarning) as rec:
            toks = codec.encode(s, cfg, backend=b)
        text = str(rec[0].message)
        assert "2 silences longer than 16 beats shortened" in text
        assert "1 note longer than 64 beats cut to 64" in text
        assert toks.size < 80  # header, bars, and the first note's 64 beats
        results.append(toks.tolist())
        d = codec.decode(toks, cfg, backend=b)
        assert d.n_notes == 3
        assert d.equals(codec.quantize(s, cfg))
    assert all(r == results[0] for r in results)
    # without the limits the same file is refused (as before they existed)
    off = codec.CodecConfig(**{**{k: getattr(cfg, k) for k in ("version", "keep_drums")},
                               "max_silence_beats": None, "max_note_beats": None,
                               **({"time_signatures": cfg.time_signatures}
                                  if cfg.version == 2 else {})})
    for b in BACKENDS:
        with pytest.raises(CodecError, match="more than 33554432 tokens"):
            codec.encode(s, off, backend=b)


def test_encode_many_reports_per_score(backend):
    good = score([(0, 0, 60, 100, 0, 480)])
    long = score([(0, 0, 60, 100, 0, 480 * 70)])
    with pytest.warns(CodecWarning, match=r"encode_many: score 1: 1 note longer") as rec:
        codec.encode_many([good, long, good], V1, backend=backend)
    assert [w.message.index for w in rec] == [1]
    reports: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", CodecWarning)  # reports= replaces the warnings
        codec.encode_many([good, long, good], V2, backend=backend, reports=reports)
    assert reports == [{}, {"notes_capped": 1}, {}]


def test_limits_in_the_config():
    cfg = codec.default_config(max_note_beats=4, max_silence_beats=2)
    assert (cfg.note_cap_steps, cfg.silence_steps, cfg.silence_unit) == (48, 24, 12)
    sec = codec.default_config(timing="seconds", step_ms=20)
    assert (sec.beat_steps, sec.note_cap_steps, sec.silence_unit) == (25, 1600, 1)
    with pytest.raises(CodecError, match="max_note_beats: expected an int"):
        codec.default_config(max_note_beats=0)
    d = codec.default_config(max_note_beats=None).to_dict()
    assert d["max_note_beats"] is None and "max_silence_beats" not in d
