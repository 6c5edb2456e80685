"""musgen.midi writing: both writers give the same bytes, files read back as
``without_overlaps(score)``, note hygiene, the text event, write_many, atomic files, errors.

Every behaviour test runs on each backend (the ``backend`` fixture picks the writer and the
reader); the byte-for-byte comparison of the two writers runs on every shipped file here and on
the big corpora in test_midi_corpus.py (opt-in).
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from musgen import MidiError, MidiWarning, Score, _backend, midi
from musgen.score import NOTE_DTYPE, TEMPO_DTYPE

MIDI = Path(__file__).resolve().parent / "data" / "midi"
JAZZ = MIDI / "jazzsoft_test_midi_files"
FIELDS = ("notes", "tempos", "time_signatures", "key_signatures", "programs")

needs_cpp = pytest.mark.skipif(not _backend.has_cpp(), reason="parity needs the C++ backend")


def note_rows(score: Score) -> list[tuple]:
    return [tuple(int(x) for x in r) for r in score.notes]


def notes_of(rows) -> np.ndarray:
    return np.array([tuple(r) for r in rows], dtype=NOTE_DTYPE)


def readable_files() -> list[tuple[Path, Score]]:
    out = []
    for path in sorted(p for p in MIDI.rglob("*.mid") if "corrupt" not in p.parts
                       and "malformed" not in p.parts):
        try:
            with warnings.catch_warnings():  # recovered files are written too
                warnings.simplefilter("ignore", MidiWarning)
                out.append((path, midi.read(path, backend="python")))
        except MidiError:
            continue
    return out


def same_fields(a: Score, b: Score) -> bool:
    return (all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)
            and list(a.track_names) == list(b.track_names)
            and (a.ticks_per_beat, a.smpte) == (b.ticks_per_beat, b.smpte))


def key_events(data: bytes):
    """Per track, the note events in file order as (tick, 'on'|'off', channel, pitch), from an
    independent parser (mido)."""
    mido = pytest.importorskip("mido")
    import io

    mf = mido.MidiFile(file=io.BytesIO(data))
    tracks = []
    for track in mf.tracks:
        tick, events = 0, []
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                events.append((tick, "on", msg.channel, msg.note))
            elif msg.type in ("note_on", "note_off"):
                events.append((tick, "off", msg.channel, msg.note))
        tracks.append(events)
    return mf, tracks


# ----------------------------------------------------------------------------- both writers
@needs_cpp
def test_write_backends_give_identical_bytes_on_every_shipped_file():
    files = readable_files()
    assert len(files) >= 55
    for path, score in files:
        for text in (None, "seed=7 temperature=0.9"):
            py = midi.encode(score, text=text, backend="python")
            cpp = midi.encode(score, text=text, backend="cpp")
            assert py == cpp, (path, text)


def test_write_round_trip_shipped_files(backend, tmp_path):
    checked = 0
    for path, score in readable_files():
        out = tmp_path / "out.mid"
        midi.write(score, out, backend=backend)
        back = midi.read(out, backend=backend)
        expected = midi.without_overlaps(score)
        assert same_fields(back, expected), path
        assert back.format == 1
        # a written file holds no overlaps: writing it again changes nothing
        assert midi.without_overlaps(back) is back
        assert midi.encode(back, backend=backend) == out.read_bytes(), path
        checked += 1
    assert checked >= 55


def test_write_same_tick_ordering(backend, tmp_path):
    # a note ending where the next same-key note starts, a zero-length note at that tick, notes
    # on another track and key: FIFO pairing must reproduce all of them exactly
    rows = [(0, 0, 60, 10, 0, 96), (1, 9, 36, 99, 0, 0), (0, 0, 60, 20, 96, 96),
            (0, 0, 60, 30, 96, 200), (1, 0, 61, 40, 96, 300), (0, 0, 60, 50, 200, 200)]
    score = Score(notes=notes_of(sorted(rows, key=lambda r: (r[4], r[0], r[1], r[2], r[5]))),
                  ticks_per_beat=96, track_names=["a", "b"])
    assert midi.without_overlaps(score) is score
    midi.write(score, tmp_path / "x.mid", backend=backend)
    back = midi.read(tmp_path / "x.mid", backend=backend)
    assert note_rows(back) == note_rows(score)
    assert back.track_names == ["a", "b"]
    _, tracks = key_events((tmp_path / "x.mid").read_bytes())
    # at tick 96 on key 60: the earlier note's off, then the zero-length note's on and off, then
    # the next note's on (a synthesizer never sees on, on, off on one key)
    at96 = [e for e in tracks[0] if e[0] == 96 and e[3] == 60]
    assert [e[1] for e in at96] == ["off", "on", "off", "on"]


def test_write_accepts_unsorted_notes(backend, tmp_path):
    rows = [(0, 0, 60, 10, 0, 96), (0, 0, 60, 30, 96, 200), (1, 2, 40, 50, 10, 20)]
    midi.write(Score(notes=notes_of(rows[::-1])), tmp_path / "u.mid", backend=backend)
    back = midi.read(tmp_path / "u.mid", backend=backend)
    assert note_rows(back) == [rows[0], rows[2], rows[1]]


# ----------------------------------------------------------------------------- note hygiene
def test_without_overlaps_ends_the_earlier_note_at_the_restrike():
    rows = [
        (0, 0, 60, 10, 0, 100),   # re-struck at 50 (same key, same track): ends at 50
        (0, 0, 60, 20, 50, 80),
        (1, 0, 62, 30, 0, 100),   # re-struck at 40 on another track, same channel: ends at 40
        (0, 0, 62, 40, 40, 60),
        (0, 1, 64, 50, 0, 100),   # same pitch on another channel: untouched
        (0, 2, 64, 60, 10, 30),
        (0, 3, 65, 70, 5, 9),     # three strikes at one tick: all but the last get zero length
        (0, 3, 65, 71, 5, 20),
        (0, 3, 65, 72, 5, 30),
    ]
    score = Score(notes=notes_of(rows), track_names=["", ""])
    out = midi.without_overlaps(score)
    assert out is not score and out.track_names == score.track_names
    got = {(r[0], r[1], r[2], r[3], r[4]): r[5] for r in note_rows(out)}
    assert got == {(0, 0, 60, 10, 0): 50, (0, 0, 60, 20, 50): 80, (1, 0, 62, 30, 0): 40,
                   (0, 0, 62, 40, 40): 60, (0, 1, 64, 50, 0): 100, (0, 2, 64, 60, 10): 30,
                   (0, 3, 65, 70, 5): 5, (0, 3, 65, 71, 5): 5, (0, 3, 65, 72, 5): 30}
    # Score order: (start, track, channel, pitch, end, velocity)
    keys = [(r[4], r[0], r[1], r[2], r[5], r[3]) for r in note_rows(out)]
    assert keys == sorted(keys)
    clean = Score(notes=notes_of([(0, 0, 60, 10, 0, 50), (0, 0, 60, 20, 50, 80)]))
    assert midi.without_overlaps(clean) is clean


def test_write_never_holds_overlapping_notes(backend, tmp_path):
    rows = [(0, 0, 60, 10, 0, 100), (0, 0, 60, 20, 50, 80), (1, 0, 60, 30, 60, 200),
            (0, 0, 62, 40, 10, 10), (0, 0, 62, 41, 10, 90), (0, 0, 62, 42, 10, 50)]
    score = Score(notes=notes_of(rows), track_names=["", ""])
    path = tmp_path / "o.mid"
    midi.write(score, path, backend=backend)
    back = midi.read(path, backend=backend)
    assert same_fields(back, midi.without_overlaps(score))
    assert len(back.notes) == len(rows)  # hygiene ends notes, it never drops one
    # independent check: on each channel and key, across tracks, sounding intervals are disjoint
    by_key = defaultdict(list)
    for r in note_rows(back):
        by_key[(r[1], r[2])].append((r[4], r[5]))
    for spans in by_key.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    # and within each track, no note-on while the same key already sounds
    _, tracks = key_events(path.read_bytes())
    for events in tracks:
        sounding = set()
        for _, kind, ch, pitch in events:
            if kind == "on":
                assert (ch, pitch) not in sounding
                sounding.add((ch, pitch))
            else:
                sounding.discard((ch, pitch))


# ----------------------------------------------------------------------------- text event
def test_write_text_event_at_tick_zero_of_the_first_track(backend, tmp_path):
    score = midi.read(JAZZ / "test-c-major-scale.mid", backend=backend)
    path = tmp_path / "t.mid"
    text = "musgen seed=12 temperature=0.9 top_p=0.95 model=default"
    midi.write(score, path, text=text, backend=backend)
    mf, _ = key_events(path.read_bytes())
    texts = [(ti, m.time, m.text) for ti, track in enumerate(mf.tracks) for m in track
             if m.is_meta and m.type == "text"]
    assert texts == [(0, 0, text)]
    back = midi.read(path, backend=backend)  # the reader ignores text events
    assert same_fields(back, midi.read(JAZZ / "test-c-major-scale.mid", backend=backend))
    # UTF-8 text; bytes are written as given
    midi.write(score, path, text="Bébé ♪", backend=backend)
    assert "Bébé ♪".encode() in path.read_bytes()
    midi.write(score, path, text=b"\x01raw", backend=backend)
    assert b"\xff\x01\x04\x01raw" in path.read_bytes()
    with pytest.raises(TypeError, match="text"):
        midi.write(score, path, text=12, backend=backend)


def test_write_text_on_an_empty_score_needs_one_track(backend, tmp_path):
    path = tmp_path / "e.mid"
    midi.write(Score(), path, backend=backend)
    assert midi.read(path, backend=backend).track_names == []
    midi.write(Score(), path, text="x", backend=backend)
    assert midi.read(path, backend=backend).track_names == [""]


# ----------------------------------------------------------------------------- errors, files
def test_write_smpte_division(backend, tmp_path):
    notes = notes_of([(0, 0, 60, 64, 0, 1000)])
    for smpte in ((25, 40), (29.97, 80), (24, 1), (30, 255)):
        score = Score(notes=notes, ticks_per_beat=0, smpte=smpte, track_names=[""])
        midi.write(score, tmp_path / "s.mid", backend=backend)
        back = midi.read(tmp_path / "s.mid", backend=backend)
        assert back.smpte == smpte and back.ticks_per_beat == 0
        assert note_rows(back) == note_rows(score)
    with pytest.raises(ValueError, match=r"smpte \(26, 40\)"):
        midi.write(Score(notes=notes, ticks_per_beat=0, smpte=(26, 40)), tmp_path / "b.mid",
                   backend=backend)


def test_write_rejects_what_midi_cannot_hold(backend, tmp_path):
    def score_with(**row):
        base = {"track": 0, "channel": 0, "pitch": 60, "velocity": 64, "start": 0, "end": 10}
        base.update(row)
        return Score(notes=notes_of([tuple(base[k] for k in NOTE_DTYPE.names)]))

    for row, msg in (({"velocity": 0}, "velocities must be 1..127"),
                     ({"pitch": 128}, "pitches must be 0..127"),
                     ({"channel": 16}, "channels must be 0..15"),
                     ({"end": -1}, "end ticks must be >= start"),
                     ({"start": -5, "end": 0}, "start ticks must be >= 0"),
                     ({"end": 0x10000000}, ("a gap of 268435456 ticks between two events "
                                           "exceeds the largest delta time"))):
        with pytest.raises(ValueError, match=msg):
            midi.write(score_with(**row), tmp_path / "bad.mid", backend=backend)
    tempo = Score(tempos=np.array([(0, 1 << 24)], dtype=TEMPO_DTYPE))
    with pytest.raises(ValueError, match="24 bits"):
        midi.write(tempo, tmp_path / "bad.mid", backend=backend)
    assert not list(tmp_path.iterdir())  # nothing written, no temporary file left behind


def test_write_is_atomic_replace_with_the_usual_mode(backend, tmp_path):
    path = tmp_path / "a.mid"
    path.write_bytes(b"old")
    score = midi.read(JAZZ / "test-c-major-scale.mid", backend="python")
    midi.write(score, path, backend=backend)
    assert path.read_bytes()[:4] == b"MThd" and sorted(os.listdir(tmp_path)) == ["a.mid"]
    mask = os.umask(0)
    os.umask(mask)
    midi.write(score, tmp_path / "new.mid", backend=backend)
    assert (tmp_path / "new.mid").stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(OSError):
        midi.write(score, tmp_path / "missing" / "x.mid", backend=backend)


def test_write_fsync_only_when_asked(monkeypatch, tmp_path):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real(fd))
    score = midi.read(JAZZ / "test-c-major-scale.mid", backend="python")
    midi.write(score, tmp_path / "a.mid", backend="python")
    assert calls == []
    midi.write(score, tmp_path / "a.mid", backend="python", fsync=True)
    assert len(calls) == 1
    midi.write_many([score] * 3, [tmp_path / f"{i}.mid" for i in range(3)], backend="python",
                    fsync=True)
    assert len(calls) == 4


def test_write_many_writes_every_file_as_write_does(backend, tmp_path):
    scores = [score for _, score in readable_files()[:40]]
    paths = [tmp_path / f"p-{i:03d}.mid" for i in range(len(scores))]
    texts = [f"piece {i}" if i % 3 else None for i in range(len(scores))]
    midi.write_many(scores, paths, texts=texts, threads=2, backend=backend)
    for score, path, text in zip(scores, paths, texts):
        assert path.read_bytes() == midi.encode(score, text=text, backend="python"), path
    midi.write_many(scores, paths, texts="same", threads=1, backend=backend, fsync=True)
    assert all(p.read_bytes() == midi.encode(s, text="same", backend="python")
               for s, p in zip(scores, paths))
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in paths)


def test_write_many_errors(backend, tmp_path):
    good = midi.read(JAZZ / "test-c-major-scale.mid", backend="python")
    bad = Score(notes=notes_of([(0, 0, 60, 0, 0, 10)]))
    with pytest.raises(ValueError, match="velocities"):
        midi.write_many([good, bad, good], [tmp_path / f"{i}.mid" for i in range(3)],
                        backend=backend)
    assert not list(tmp_path.iterdir())  # a score MIDI cannot hold: nothing written
    with pytest.raises(OSError) as info:
        midi.write_many([good, good], [tmp_path / "ok.mid", tmp_path / "no" / "x.mid"],
                        backend=backend)
    assert info.value.filename == str(tmp_path / "no" / "x.mid")
    assert (tmp_path / "ok.mid").is_file()  # the others are written
    with pytest.raises(ValueError, match="paths: 1 given for 2 scores"):
        midi.write_many([good, good], [tmp_path / "a.mid"], backend=backend)
    with pytest.raises(ValueError, match="texts: 1 given for 2 scores"):
        midi.write_many([good, good], [tmp_path / "a.mid", tmp_path / "b.mid"], texts=["x"],
                        backend=backend)
    with pytest.raises(ValueError, match="threads"):
        midi.write_many([good], [tmp_path / "a.mid"], threads=0, backend=backend)
    with pytest.raises(TypeError, match="Score"):
        midi.write_many(["x.mid"], [tmp_path / "a.mid"], backend=backend)
