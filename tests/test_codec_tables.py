"""``codec.token_tables``: the per-token arrays the engines read, for both codec versions, and
the version-2 vocabulary layout and header grammar they describe."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musgen import CodecError, codec

from conftest import V1_MODEL

V1 = codec.default_config()
V2 = codec.default_config(version=2, styles=("chorale", "pop"))


def test_tables_version_1_fill_what_it_has():
    t = codec.token_tables(V1)
    V = V1.vocab_size
    for name in ("clock_steps", "is_note", "pitch", "duration", "is_bar", "bar_steps", "part",
                 "program", "tempo_bpm"):
        a = getattr(t, name)
        assert a.shape == (V,) and not a.flags.writeable, name
    assert t.clock_steps.dtype == np.int32 and t.clock_steps.tolist() == V1.token_steps.tolist()
    assert t.clock_steps[V1.token_id("TimeShift_48")] == 48
    assert t.is_note.dtype == np.uint8 and t.is_note.sum() == 128
    assert t.is_note[V1.token_id("Pitch_0")] == 1 and t.is_note[V1.token_id("Velocity_0")] == 0
    assert t.pitch.dtype == np.int16 and t.pitch[V1.token_id("Pitch_61")] == 61
    assert t.pitch[V1.eos_id] == -1 and (t.pitch >= 0).sum() == 128
    assert t.duration.dtype == np.int32 and t.duration[V1.token_id("Duration_7")] == 7
    assert t.duration.sum() == 48 * 49 // 2
    # neutral: no bars, parts, programs or tempos in version 1
    assert not t.is_bar.any() and not t.bar_steps.any() and not t.tempo_bpm.any()
    assert (t.part == -1).all() and (t.program == -1).all()
    assert t.part.dtype == np.int16 and t.program.dtype == np.int16
    assert t.tempo_bpm.dtype == np.float32 and t.bar_steps.dtype == np.int32
    assert (t.steps_per_beat, t.default_bar_steps, t.eos_id, t.bos_id) == (12, 0, 2, 1)


def test_tables_version_1_drums_are_notes_without_pitch():
    cfg = codec.default_config(keep_drums=True)
    t = codec.token_tables(cfg)
    d = cfg.token_id("DrumPitch_36")
    assert t.is_note[d] == 1 and t.pitch[d] == -1
    assert t.is_note.sum() == 128 + 61


def test_tables_version_2():
    t = codec.token_tables(V2)
    c = V2
    assert t.default_bar_steps == 48 and t.steps_per_beat == 12
    assert t.is_bar[c.token_id("Bar")] == 1 and t.is_bar.sum() == 1
    assert t.clock_steps[c.token_id("Bar")] == 0  # a Bar's advance depends on the position
    assert t.bar_steps[c.token_id("TimeSig_6_8")] == 36
    assert t.bar_steps[c.token_id("TimeSig_7_4")] == 84
    assert t.bar_steps[c.token_id("TimeSig_4_4")] == 48
    assert (t.bar_steps > 0).sum() == len(c.time_signatures)
    assert t.part[c.token_id("Part_3")] == 3 and (t.part >= 0).sum() == c.max_parts
    assert t.program[c.token_id("Program_0")] == 0
    assert t.program[c.token_id("Program_127")] == 127
    assert t.program[c.token_id("Program_Drums")] == 128 and (t.program >= 0).sum() == 129
    tempo = t.tempo_bpm[c.block("Tempo")[0]:c.block("Tempo")[1]]
    assert tempo.shape == (32,) and np.all(np.diff(tempo) > 0)
    assert tempo[c.tempo_bin(500_000)] == np.float32(120.0)
    assert 38 < tempo[0] < 41 and 240 < tempo[-1] < 252
    assert t.pitch[c.token_id("Pitch_60")] == 60 and t.pitch[c.token_id("DrumPitch_36")] == -1
    assert t.is_note[c.token_id("DrumPitch_36")] == 1 and t.is_note.sum() == 128 + 61
    assert t.clock_steps[c.token_id("TimeShift_5")] == 5
    assert t.duration[c.token_id("Duration_5")] == 5
    # tables of Key, Style, Density are neutral: they are conditions, masked by block
    for name in ("Key", "Style", "Density"):
        first, stop = c.block(name)
        sl = slice(first, stop)
        assert not t.is_note[sl].any() and (t.program[sl] == -1).all() and not t.tempo_bpm[sl].any()


def test_tables_cached_per_config():
    assert codec.token_tables(V2) is codec.token_tables(codec.default_config(
        version=2, styles=("chorale", "pop")))
    assert codec.token_tables(V1) is not codec.token_tables(V2)


def test_v2_vocabulary_blocks_are_contiguous_and_in_order():
    c = V2
    names = c.token_names
    assert names[:3] == ["PAD", "BOS", "EOS"] and len(set(names)) == c.vocab_size
    expect = [("Program", 129), ("Key", 24), ("Style", 3), ("Density", 11), ("Tempo", 32),
              ("TimeSig", 14), ("Bar", 1), ("TimeShift", 48), ("Part", 16), ("Pitch", 128),
              ("DrumPitch", 61), ("Velocity", 32), ("Duration", 48)]
    at = 3
    for name, size in expect:
        assert c.block(name) == (at, at + size), name
        assert all(n.startswith(name) for n in names[at:at + size]), name
        at += size
    assert at == c.vocab_size
    assert names[c.block("Key")[0]:c.block("Key")[0] + 3] == ["Key_C", "Key_Db", "Key_D"]
    assert c.token_id("Key_Dm") == c.key_base + 14
    assert names[c.style_base:c.style_base + 3] == ["Style_unknown", "Style_chorale",
                                                   "Style_pop"]
    assert c.token_id("Program_Drums") == c.program_base + 128
    types = c.token_types
    assert types[c.bar_id] == codec.TYPE_BAR and types[c.token_id("Part_0")] == codec.TYPE_PART
    assert types[c.token_id("Tempo_0")] == codec.TYPE_TEMPO
    with pytest.raises(CodecError, match="block 'Chord'"):
        c.block("Chord")
    # version 1 has no such blocks: empty ranges, and the ids raise
    assert V1.block("Program")[0] == V1.block("Program")[1]
    with pytest.raises(CodecError, match="version-1 codec has no Bar tokens"):
        _ = V1.bar_id


def test_v1_dict_is_exactly_the_v1_models():
    shipped = json.loads((V1_MODEL / "config.json").read_text())["codec"]
    assert V1.to_dict() == shipped
    assert codec.CodecConfig.from_dict(shipped) == V1
    # a version-1 config with a non-default new field writes it, and still reads back
    cfg = codec.default_config(max_silence_beats=None)
    d = cfg.to_dict()
    assert d["format_version"] == 1 and d["max_silence_beats"] is None
    assert codec.CodecConfig.from_dict(d) == cfg


def test_v2_dict_round_trip_and_checks():
    d = json.loads(json.dumps(V2.to_dict()))
    assert d["format_version"] == 2 and d["version"] == 2
    assert codec.CodecConfig.from_dict(d) == V2
    bad = dict(d, version=1)
    with pytest.raises(CodecError, match="does not match format_version 2"):
        codec.CodecConfig.from_dict(bad)
    with pytest.raises(CodecError, match="only exist in codec version 2"):
        codec.CodecConfig(styles=("a",))
    with pytest.raises(CodecError, match="needs timing='beats'"):
        codec.CodecConfig(version=2, timing="seconds")
    with pytest.raises(CodecError, match="label 'a b'"):
        codec.default_config(version=2, styles=("a b",))
    with pytest.raises(CodecError, match="not 'unknown'"):
        codec.default_config(version=2, styles=("unknown",))
    with pytest.raises(CodecError, match="holding '4/4'"):
        codec.default_config(version=2, time_signatures=("3/4",))
    with pytest.raises(CodecError, match="3/8 is not a whole number of steps"):
        codec.CodecConfig(version=2, steps_per_beat=1)
    assert "7/8" not in codec.default_config(version=2, steps_per_beat=1).time_signatures
    with pytest.raises(CodecError, match="density_bins"):
        codec.default_config(version=2, density_bins=(2.0, 1.0))
    with pytest.raises(CodecError, match="tempo_range"):
        codec.default_config(version=2, tempo_range=(200, 100))
    with pytest.raises(CodecError, match="format_version 3"):
        codec.CodecConfig.from_dict(dict(d, format_version=3))


def test_v2_meter_mapping():
    c = V2
    assert c.meters[c.meter_index(6, 8)] == (6, 8)
    assert c.meters[c.meter_index(4, 8)] == (2, 4)    # same bar length, first listed
    assert c.meters[c.meter_index(6, 16)] == (3, 8)   # same bar length and denominator
    assert c.meters[c.meter_index(1, 4)] == (4, 4)    # no meter of that length: 4/4
    assert c.meters[c.meter_index(8, 4)] == (4, 4)


def test_v2_grammar_header_and_bars():
    c = V2
    g = codec.grammar(c)
    ids = [c.token_id(n) for n in ("BOS", "Program_0", "Program_0", "Program_Drums", "Key_Dm",
                                   "Style_pop", "Density_3", "Tempo_19", "TimeSig_4_4", "Bar",
                                   "Pitch_60", "Velocity_3", "Duration_4", "Pitch_64",
                                   "Velocity_3", "Duration_4", "Part_2", "DrumPitch_36",
                                   "Velocity_3", "Duration_1", "TimeShift_12", "Tempo_20",
                                   "Part_0", "Pitch_62", "Velocity_3", "Duration_4", "Bar",
                                   "TimeSig_3_4", "Bar", "Pitch_50", "Velocity_3",
                                   "Duration_48", "Duration_2", "EOS")]
    assert g.walk(ids) == codec.S_END
    # the header needs at least one Program, then Key, Style, Density, Tempo, TimeSig in order
    for bad, allowed in ((["BOS", "Key_C"], "Program_0..Program_Drums"),
                         (["BOS", "Program_0", "Style_pop"], "Key_C..Key_Bm"),
                         (["BOS", "Program_0", "Key_C", "Style_pop", "Density_0", "Tempo_0",
                           "TimeSig_4_4", "Pitch_60"], "EOS, Bar"),
                         (["BOS", "Program_0", "Key_C", "Style_pop", "Density_0", "Tempo_0",
                           "TimeSig_4_4", "Bar", "Pitch_60", "Velocity_0", "Duration_1",
                           "TimeSig_3_4"], "TimeShift"),
                         (["BOS", "Program_0", "Key_C", "Style_pop", "Density_0", "Tempo_0",
                           "TimeSig_4_4", "Bar", "Part_1", "Velocity_0"], "Pitch_0"),
                         (["BOS", "Program_0", "Key_C", "Style_pop", "Density_0", "Tempo_0",
                           "TimeSig_4_4", "Bar", "Pitch_60", "Velocity_0", "Duration_1",
                           "Tempo_3"], "Part_0")):
        with pytest.raises(CodecError, match=allowed):
            g.walk([c.token_id(n) for n in bad])
    # at most max_parts Program tokens
    small = codec.default_config(version=2, max_parts=2)
    gs = codec.grammar(small)
    with pytest.raises(CodecError, match="allowed: Key_C..Key_Bm"):
        gs.walk([small.token_id(n) for n in ("BOS", "Program_0", "Program_1", "Program_2")])
    # ends: the empty piece after its header, a closing Bar, and after a note
    header = [c.token_id(n) for n in ("BOS", "Program_0", "Key_C", "Style_unknown",
                                      "Density_0", "Tempo_0", "TimeSig_4_4")]
    assert g.can_end[g.walk(header)]
    assert g.can_end[g.walk(header + [c.bar_id])]
    assert not g.can_end[g.walk(header + [c.bar_id, c.token_id("TimeSig_3_4")])]
    assert not g.can_end[g.walk(header[:4])]


def test_condition_tokens_by_value():
    c = V2
    assert c.token_names[c.density_token(2.2)] == "Density_3"   # [2, 2.5)
    assert c.token_names[c.density_token(0.3)] == "Density_0"
    assert c.token_names[c.density_token(50)] == "Density_10"
    assert c.token_names[c.tempo_token(120)] == "Tempo_19"
    assert c.token_names[c.tempo_token(90)] == f"Tempo_{c.tempo_bin(666_667)}"
    assert codec.token_tables(codec.default_config(timing="seconds")).steps_per_beat == 50
