"""musgen.midi backend parity and independent checks.

* The C++ and pure-Python readers agree on every shipped file and on randomly mutated bytes:
  same Score, same warnings, or the same MidiError (text and byte offset).
* Random scores (overlapping notes included) are written to the same bytes by both writers and
  read back as ``without_overlaps(score)`` on every backend (hypothesis).
* Notes agree with an independent FIFO pairing built on mido for files mido reads.
"""

from __future__ import annotations

import random
import warnings
from collections import defaultdict, deque
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musgen import MidiError, MidiWarning, Score, _backend, midi
from musgen.score import KEY_SIGNATURE_DTYPE, NOTE_DTYPE, PROGRAM_DTYPE, TEMPO_DTYPE, \
    TIME_SIGNATURE_DTYPE

MIDI = Path(__file__).resolve().parent / "data" / "midi"
SHIPPED = sorted(p for p in MIDI.rglob("*") if p.suffix.lower() in (".mid", ".midi", ".rmi", ".kar"))

needs_cpp = pytest.mark.skipif(not _backend.has_cpp(), reason="parity needs the C++ backend")


def outcome(read, *args):
    """('ok', Score) or ('error', (reason, offset, path)), plus the warning texts."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            result = ("ok", read(*args))
        except MidiError as exc:
            result = ("error", (exc.reason, exc.offset, exc.path))
    return result, [str(w.message) for w in record]


def assert_same(a, b, where):
    (kind_a, val_a), warn_a = a
    (kind_b, val_b), warn_b = b
    assert kind_a == kind_b, (where, val_a if kind_a == "error" else val_b)
    if kind_a == "ok":
        assert val_a.equals(val_b), where  # field by field (padding bytes are not data)
    else:
        assert val_a == val_b, where
    assert warn_a == warn_b, where


def test_shipped_fixtures_present():
    assert len(SHIPPED) >= 90
    for folder in ("jazzsoft_test_midi_files", "muspy", "nfroidure_midifile"):
        assert any((MIDI / folder).glob("LICENSE*")), folder
        assert any((MIDI / "malformed" / folder).glob("LICENSE*")), folder


@needs_cpp
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(MIDI)))
def test_read_backends_agree_on_shipped_file(path):
    a = outcome(lambda p: midi.read(p, backend="cpp"), path)
    b = outcome(lambda p: midi.read(p, backend="python"), path)
    assert_same(a, b, path)


@needs_cpp
def test_read_many_matches_read():
    (_, res), warn_res = outcome(
        lambda: midi.read_many(SHIPPED, threads=3, backend="cpp", on_error="skip"))
    (_, ref), warn_ref = outcome(lambda: midi.read_many(SHIPPED, backend="python",
                                                        on_error="skip"))
    assert warn_res == warn_ref and len(warn_res) >= 3
    assert res.paths == ref.paths and len(res.paths) + len(res.errors) == len(SHIPPED)
    assert all(a.equals(b) for a, b in zip(res.scores, ref.scores))
    assert [(p, e.reason, e.offset) for p, e in res.errors] == \
        [(p, e.reason, e.offset) for p, e in ref.errors]


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randrange(len(buf)) if buf else 0
        if op < 0.5 and buf:
            buf[pos] = rng.randrange(256)
        elif op < 0.65:
            buf.insert(pos, rng.randrange(256))
        elif op < 0.8 and buf:
            del buf[pos:pos + rng.randint(1, 8)]
        elif op < 0.9:
            del buf[pos:]
        elif len(buf) >= 4:  # a wild chunk length
            p = rng.randrange(len(buf) - 3)
            buf[p:p + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00",
                                       b"\x8f\xff\xff\xff"])
    return bytes(buf)


@needs_cpp
def test_read_mutated_bytes_backends_agree():
    rng = random.Random(20240611)
    sources = [p.read_bytes() for p in SHIPPED if p.stat().st_size < 20000]
    kinds = defaultdict(int)
    for i in range(600):
        data = mutate(rng.choice(sources), rng)
        a = outcome(lambda d: midi.read_bytes(d, backend="cpp"), data)
        b = outcome(lambda d: midi.read_bytes(d, backend="python"), data)
        assert_same(a, b, f"mutation {i}: {data[:64]!r}")
        kinds[a[0][0]] += 1
    # the mutations exercise both outcomes
    assert kinds["ok"] > 50 and kinds["error"] > 50


# ----------------------------------------------------------------------------- hypothesis
@st.composite
def scores(draw):
    """Random scores; notes of one key may overlap (the writer ends the earlier one)."""
    n_tracks = draw(st.integers(1, 4))
    rows = []
    for track in range(n_tracks):
        for _ in range(draw(st.integers(0, 12))):
            key = (draw(st.integers(0, 15)), draw(st.sampled_from([0, 60, 61, 127])))
            start = draw(st.integers(0, 3000))
            length = draw(st.sampled_from([0, 0, 1, 96, 480, draw(st.integers(0, 5000))]))
            rows.append([track, *key, draw(st.integers(1, 127)), start, start + length])
    notes = np.array([tuple(r) for r in rows], dtype=NOTE_DTYPE)
    notes = notes[np.lexsort((notes["velocity"], notes["end"], notes["pitch"], notes["channel"],
                              notes["track"], notes["start"]))]
    tempos = sorted((draw(st.integers(0, 4000)), draw(st.integers(1, 0xFFFFFF)))
                    for _ in range(draw(st.integers(0, 3))))
    sigs = sorted((draw(st.integers(0, 4000)), draw(st.integers(1, 32)),
                   draw(st.sampled_from([1, 2, 4, 8, 16])), 24, 8)
                  for _ in range(draw(st.integers(0, 2))))
    keys = sorted((draw(st.integers(0, 4000)), draw(st.integers(0, n_tracks - 1)),
                   draw(st.integers(-7, 7)), draw(st.integers(0, 1)))
                  for _ in range(draw(st.integers(0, 2))))
    programs = sorted((draw(st.integers(0, 4000)), draw(st.integers(0, n_tracks - 1)),
                       draw(st.integers(0, 15)), draw(st.integers(0, 127)))
                      for _ in range(draw(st.integers(0, 3))))
    names = [draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255),
                          max_size=8)) for _ in range(n_tracks)]
    smpte = draw(st.sampled_from([None, None, (25, 40), (29.97, 4)]))
    # tempo/key/program rows at equal ticks keep their given order (stable), as the reader does
    return Score(notes=notes, ticks_per_beat=0 if smpte else draw(st.integers(1, 0x7FFF)),
                 tempos=np.array(tempos, dtype=TEMPO_DTYPE),
                 time_signatures=np.array(sigs, dtype=TIME_SIGNATURE_DTYPE),
                 key_signatures=np.array(keys, dtype=KEY_SIGNATURE_DTYPE),
                 programs=np.array(programs, dtype=PROGRAM_DTYPE),
                 track_names=names, format=1, smpte=smpte)


@settings(max_examples=150, deadline=None)
@given(score=scores())
def test_write_read_round_trip_random_scores(score):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.mid"
        midi.write(score, path, backend="python")
        expected = midi.without_overlaps(score)
        for backend in (["cpp", "python"] if _backend.has_cpp() else ["python"]):
            back = midi.read(path, backend=backend)
            assert back.equals(expected), backend
            assert midi.encode(score, backend=backend) == path.read_bytes(), backend


# ----------------------------------------------------------------------------- mido check
def mido_notes(path):
    """An independent FIFO pairing on top of mido's event parsing."""
    import mido

    mf = mido.MidiFile(path, clip=False)
    notes = []
    for track, events in enumerate(mf.tracks):
        tick, open_ = 0, defaultdict(deque)
        for msg in events:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                open_[(msg.channel, msg.note)].append((tick, msg.velocity))
            elif msg.type in ("note_on", "note_off") and open_[(msg.channel, msg.note)]:
                start, vel = open_[(msg.channel, msg.note)].popleft()
                notes.append((start, track, msg.channel, msg.note, tick, vel))
        notes += [(s, track, c, p, tick, v) for (c, p), q in open_.items() for s, v in q]
    return sorted(notes)


MIDO_ACCEPTS_WE_REJECT = {
    # division 0xFFFF: SMPTE with "-1" frames per second; mido does not check the division
    "negative-ticks-per-beat.mid": "SMPTE division with 1 frames per second",
}


def test_read_notes_match_mido_pairing(backend):
    pytest.importorskip("mido")
    compared, rejected = 0, []
    for path in SHIPPED:
        if "malformed" in path.parts or "corrupt" in path.parts:
            continue
        try:
            expected = mido_notes(path)
        except Exception:  # mido rejects some valid files (see the data README): not compared
            continue
        try:
            with warnings.catch_warnings():  # recovered files are compared too
                warnings.simplefilter("ignore", MidiWarning)
                score = midi.read(path, backend=backend)
        except MidiError as exc:
            assert MIDO_ACCEPTS_WE_REJECT.get(path.name, "<none>") in exc.reason, path
            rejected.append(path.name)
            continue
        got = [(int(r["start"]), int(r["track"]), int(r["channel"]), int(r["pitch"]),
                int(r["end"]), int(r["velocity"])) for r in score.notes]
        assert got == expected, path
        compared += 1
    assert compared >= 50
    assert sorted(rejected) == sorted(MIDO_ACCEPTS_WE_REJECT)
