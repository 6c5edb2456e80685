"""Primer continuation: generate(primer=Score or MIDI file) returns the primer itself (tracks,
names, programs, tempo map, meters, key signatures, every note) with the continuation added in
the primer's parts, on both codec versions; and, opt-in, POP909 song 001 as the primer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from musgen import CodecWarning, GenerationWarning, Score, codec, midi
from musgen.engine._random import random_model_dir
from musgen.generation import continue_primer, generate, generate_with_report
from musgen.modeldir import load_model_dir, save_model_dir
from musgen.score import (
    KEY_SIGNATURE_DTYPE,
    NOTE_DTYPE,
    PROGRAM_DTYPE,
    TEMPO_DTYPE,
    TIME_SIGNATURE_DTYPE,
)

V1 = codec.default_config()
V2 = codec.default_config(version=2)


def model_for(path, config):
    """A random model over ``config``'s vocabulary that does not end early."""
    d = random_model_dir(path, vocab_size=config.vocab_size, embedding_dim=12,
                         lstm_units=[24], seed=3, scale=1.2, codec=config.to_dict())
    cfg, t = load_model_dir(d)
    t["head/bias"][config.eos_id] = -40.0
    return save_model_dir(d, cfg, t)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("primer")
    return {"v1": (model_for(root / "v1", V1), V1), "v2": (model_for(root / "v2", V2), V2)}


def band(tpb=96):
    """Three tracks (melody, bass on program 33, drums), off-grid ticks, a tempo change, 3/4,
    a key signature and track names."""
    rows = []
    for k in range(12):
        rows.append((1, 0, 72 + (k % 5), 100, k * tpb + (k % 3), k * tpb + tpb // 2 + 1))
        if k % 3 == 0:
            rows.append((2, 1, 40 + k % 4, 80, k * tpb, k * tpb + 3 * tpb))
        rows.append((3, 9, 36 + 2 * (k % 2), 90, k * tpb, k * tpb + 5))
    notes = np.array(rows, NOTE_DTYPE)
    notes = notes[np.lexsort((notes["end"], notes["pitch"], notes["channel"], notes["track"],
                              notes["start"]))]
    return Score(notes=notes, ticks_per_beat=tpb,
                 tempos=np.array([(0, 652_174), (6 * tpb, 600_000)], TEMPO_DTYPE),
                 time_signatures=np.array([(0, 3, 4, 24, 8)], TIME_SIGNATURE_DTYPE),
                 key_signatures=np.array([(0, 0, 2, 0)], KEY_SIGNATURE_DTYPE),
                 programs=np.array([(0, 2, 1, 33)], PROGRAM_DTYPE),
                 track_names=["conductor", "Melody", "Bass", "Drums"], format=1)


def check_continuation(primer: Score, out: Score, n_new: int):
    """Every primer field kept; every primer note kept (ends may come earlier where the
    continuation strikes the same key); the new notes after the primer, on primer tracks."""
    assert out.ticks_per_beat == primer.ticks_per_beat and out.smpte == primer.smpte
    assert out.track_names[:len(primer.track_names)] == primer.track_names
    assert np.array_equal(out.programs, primer.programs)
    assert np.array_equal(out.key_signatures, primer.key_signatures)
    assert np.array_equal(out.tempos[:primer.tempos.size], primer.tempos)
    assert np.array_equal(out.time_signatures[:primer.time_signatures.size],
                          primer.time_signatures)
    assert out.n_notes == primer.n_notes + n_new
    fields = ["track", "channel", "pitch", "velocity", "start"]
    got = {tuple(int(x) for x in r) for r in out.notes[fields].tolist()}
    for row in primer.notes:
        key = tuple(int(row[f]) for f in fields)
        assert key in got, key
        same = out.notes[(out.notes["track"] == row["track"]) & (out.notes["pitch"] ==
                                                                 row["pitch"])
                         & (out.notes["start"] == row["start"])
                         & (out.notes["channel"] == row["channel"])]
        assert same["end"].max() <= row["end"]
    primer_keys = {tuple(int(x) for x in r) for r in primer.notes[fields].tolist()}
    new = np.array([r for r in out.notes if tuple(int(r[f]) for f in fields)
                    not in primer_keys], NOTE_DTYPE)
    assert new.size == n_new
    assert new["start"].min() >= primer.notes["start"].max() - primer.ticks_per_beat
    assert set(new["track"].tolist()) <= set(primer.notes["track"].tolist())
    return new


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_primer_score_is_kept_and_continued(models, version, backend, tmp_path):
    model, cfg = models[version]
    primer = band()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodecWarning)
        out = generate(model, n=2, length="10 notes", seed=4, primer=primer, backend=backend,
                       ending="none")
    for s in out:
        new = check_continuation(primer, s, 10)
        if version == "v2":
            # drums stay on the drum track, channel 9; the others on their part's channel
            for r in new:
                assert (r["channel"] == 9) == (r["track"] == 3)
                assert (r["track"], r["channel"]) in {(1, 0), (2, 1), (3, 9)}
        else:  # version 1: the most used melodic track, the drum track
            assert set(zip(new["track"].tolist(), new["channel"].tolist())) <= {(1, 0), (3, 9)}
        # the file written holds it all
        midi.write(s, tmp_path / "out.mid")
        back = midi.read(tmp_path / "out.mid")
        assert back.n_notes == s.n_notes and back.track_names == s.track_names
    # a MIDI path primer gives the same
    midi.write(primer, tmp_path / "primer.mid")
    again = generate(model, n=2, length="10 notes", seed=4, primer=tmp_path / "primer.mid",
                     backend=backend, ending="none")
    for a, b in zip(out, again):
        assert np.array_equal(a.notes, b.notes)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_primer_continuation_closes_at_its_ending(models, version, backend):
    """With the default ending the continuation runs to a beat (v1) or bar (v2) after the asked
    length and closes there: every new note released at the closing point, which lies on the
    grid after the primer, and the primer itself kept."""
    model, cfg = models[version]
    primer = band()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodecWarning)
        result = generate_with_report(model, n=3, length="8 beats", seed=5, primer=primer,
                                      backend=backend)
    for score, piece in zip(result.scores, result.pieces):
        assert piece.ended == "as asked" and piece.beats >= 8
        new = check_continuation(primer, score, piece.notes)
        # every new note sounding at the last onset ends at one common closing tick
        sounding = new[new["end"] > new["start"].max()]
        assert np.unique(sounding["end"]).size <= 1


def test_primer_continuation_by_hand():
    """The tick arithmetic: continuation steps go back through the primer's time base, with
    the silence encode shortened given back."""
    cfg = V1
    primer = Score(notes=np.array([(2, 3, 60, 100, 0, 96), (2, 3, 62, 100, 96 * 30, 96 * 31)],
                                  NOTE_DTYPE), ticks_per_beat=96,
                   tempos=np.array([(0, 400_000)], TEMPO_DTYPE), track_names=["", "", "x"])
    with pytest.warns(CodecWarning, match=r"\(13 beats removed\)"):
        ptoks = codec.encode(primer, cfg)[:-1]  # the 29-beat silence is kept as 16
    ids = cfg.token_id
    # one beat after the primer's last onset: a note of two beats, and C4 again
    tokens = np.concatenate([ptoks, [ids("TimeShift_12"), ids("Pitch_60"), ids("Velocity_9"),
                                     ids("Duration_24"), cfg.eos_id]]).astype(np.int32)
    out = continue_primer(primer, ptoks, tokens, cfg)
    assert out.notes.tolist() == [(2, 3, 60, 100, 0, 96), (2, 3, 62, 100, 96 * 30, 96 * 31),
                                  (2, 3, 60, 38, 96 * 31, 96 * 33)]
    assert out.tempos.tolist() == [(0, 400_000)] and out.track_names == ["", "", "x"]


def test_primer_continuation_seconds_timing(tmp_path, backend):
    cfg = codec.default_config(timing="seconds")
    model = model_for(tmp_path / "m", cfg)
    primer = Score(notes=np.array([(0, 0, 60, 100, 0, 480), (0, 0, 64, 100, 960, 1440)],
                                  NOTE_DTYPE), ticks_per_beat=480,
                   tempos=np.array([(0, 500_000), (480, 1_000_000)], TEMPO_DTYPE))
    out = generate(model, n=1, length="6 notes", seed=2, primer=primer, backend=backend,
                   ending="none")[0]
    new = check_continuation(primer, out, 6)
    # the continuation lives at the primer's 60 BPM: at most a grid step (10 ms) off when its
    # seconds are compared with the primer's tempo map
    d = codec.decode(codec.encode(out, cfg), cfg)
    secs = out.ticks_to_seconds(new["start"])
    grid = d.ticks_to_seconds(d.notes["start"])
    assert np.abs(secs[:, None] - grid[None, :]).min(axis=1).max() <= 0.011


@pytest.mark.corpus
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_primer_pop909_001_kept(corpus_root, models, version, backend):
    """The issue's case: POP909 song 001 as the primer keeps its 90 BPM tempo map, its three
    piano parts MELODY / BRIDGE / PIANO and all 1556 notes, continued in those parts."""
    path = corpus_root / "corpora" / "pop909" / "001" / "001.mid"
    primer = midi.read(path)
    assert primer.n_notes == 1556
    if version == "v1":
        from musgen.generation import default_model_dir
        model, cfg = default_model_dir(), V1
    else:
        model, cfg = models["v2"]
    # its 5000+ tokens pass max_primer_tokens: the model continues from the last ~4096, and the
    # piece returned is still the whole song with the continuation after its end
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodecWarning)
        with pytest.warns(GenerationWarning, match="max_primer_tokens=4096"):
            out = generate(model, n=1, length="32 notes", seed=1, primer=path,
                           backend=backend)[0]
    new = check_continuation(primer, out, out.n_notes - 1556)
    assert out.n_notes > 1556
    assert out.track_names == ["", "MELODY", "BRIDGE", "PIANO"]
    assert 60e6 / out.tempos["tempo"][0] == pytest.approx(90, abs=0.01)
    assert set(new["track"].tolist()) <= {1, 2, 3}
    # (a DrumPitch the model writes in a melodic part sounds on channel 9, as decode has it)
    assert set(new["channel"].tolist()) <= set(primer.notes["channel"].tolist()) | {9}
