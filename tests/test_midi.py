"""musgen.midi: reading (hand-checked values, SMF rules, damage and errors), read_many.

Every behaviour test runs on each backend (the ``backend`` fixture); backend parity on every
shipped file and on mutated bytes lives in test_midi_parity.py; writing in test_midi_write.py.
"""

from __future__ import annotations


import os
import struct
from pathlib import Path

import numpy as np
import pytest

import musgen
from musgen import MidiError, MidiWarning, Score, midi
from musgen.score import NOTE_DTYPE, TEMPO_DTYPE, TIME_SIGNATURE_DTYPE

MIDI = Path(__file__).resolve().parent / "data" / "midi"
CORRUPT = MIDI / "corrupt"
JAZZ = MIDI / "jazzsoft_test_midi_files"


# ----------------------------------------------------------------------------- helpers
def header(fmt: int = 1, ntrks: int = 1, division: int = 96) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, fmt, ntrks, division)


def mtrk(body: bytes) -> bytes:
    return b"MTrk" + struct.pack(">I", len(body)) + body


EOT = b"\x00\xff\x2f\x00"
NOTE = b"\x00\x90\x3c\x40\x60\x80\x3c\x40"  # C4, velocity 64, ticks 0..96


def note_rows(score: Score) -> list[tuple]:
    """(track, channel, pitch, velocity, start, end) per note, in the score's order."""
    return [tuple(int(v) for v in row) for row in score.notes.tolist()]


def read_bytes(data: bytes, backend: str) -> Score:
    return midi.read_bytes(data, backend=backend)


# ----------------------------------------------------------------------------- hand-checked
def test_read_c_major_scale_notes(backend):
    score = midi.read(JAZZ / "test-c-major-scale.mid", backend=backend)
    assert score.ticks_per_beat == 96 and score.format == 0 and score.smpte is None
    pitches = [60, 62, 64, 65, 67, 69, 71, 72]
    assert note_rows(score) == [(0, 0, p, 127, 96 * i, 96 * (i + 1)) for i, p in enumerate(pitches)]
    assert score.notes.dtype == NOTE_DTYPE


def test_read_chords_notes(backend):
    score = midi.read(MIDI / "muspy" / "chords.mid", backend=backend)
    assert score.ticks_per_beat == 480 and score.n_notes == 12
    assert note_rows(score)[:4] == [(0, 0, 60, 64, 0, 480), (0, 0, 64, 64, 0, 480),
                                    (0, 0, 67, 64, 0, 480), (0, 0, 60, 64, 960, 1440)]
    assert note_rows(score)[-1] == (0, 0, 67, 64, 2880, 3360)


def test_read_format1_tracks_programs_tempo(backend):
    score = midi.read(MIDI / "nfroidure_midifile" / "MIDIOkFormat1.mid", backend=backend)
    assert score.format == 1 and len(score.track_names) == 4
    # sorted by (start, track, channel, pitch, end)
    assert note_rows(score) == [(3, 2, 48, 96, 0, 384), (3, 2, 60, 96, 0, 384),
                                (2, 1, 67, 64, 96, 384), (1, 0, 76, 32, 192, 384)]
    assert score.programs.tolist() == [(0, 1, 0, 5), (0, 2, 1, 46), (0, 3, 2, 70)]
    assert score.tempos.tolist() == [(0, 500000)]
    assert score.time_signatures.tolist() == [(0, 4, 4, 24, 8)]


def test_read_track_names(backend):
    score = midi.read(MIDI / "muspy" / "multitrack.mid", backend=backend)
    assert score.track_names == ["Track 0", "Track 1", "Track 2", "Track 3"]
    assert note_rows(score) == [(t, 0, p, 64, 0, 1920) for t, p in enumerate([60, 64, 67, 72])]


def test_read_tempo_map_and_seconds(backend):
    score = midi.read(MIDI / "muspy" / "tempos.mid", backend=backend)
    assert score.tempos.dtype == TEMPO_DTYPE
    assert score.tempos.tolist() == [(0, 600000), (1920, 500000)]
    # 4 beats at 0.6 s, then 4 beats at 0.5 s
    np.testing.assert_allclose(score.ticks_to_seconds([0, 1920, 3840]), [0.0, 2.4, 4.4])


def test_read_time_signatures(backend):
    score = midi.read(MIDI / "muspy" / "time-signatures.mid", backend=backend)
    assert score.time_signatures.dtype == TIME_SIGNATURE_DTYPE
    got = [(int(r["tick"]), int(r["numerator"]), int(r["denominator"]))
           for r in score.time_signatures]
    assert got == [(0, 2, 2), (1920, 4, 4), (3840, 2, 2), (5760, 3, 2), (8640, 2, 4),
                   (9600, 3, 4), (11040, 4, 4), (12960, 5, 4), (15360, 3, 8), (16080, 6, 8),
                   (17520, 12, 8)]
    assert score.n_notes == 11


def test_read_key_signatures(backend):
    score = midi.read(MIDI / "muspy" / "key-signatures.mid", backend=backend)
    assert len(score.key_signatures) == 30
    # A major (3 sharps), A# minor (7 sharps), Ab major (4 flats), Ab minor (7 flats), A minor
    assert score.key_signatures.tolist()[:5] == [(0, 0, 3, 0), (1920, 0, 7, 1), (3840, 0, -4, 0),
                                                 (5760, 0, -7, 1), (7680, 0, 0, 1)]


# ----------------------------------------------------------------------------- SMF rules
def test_read_fifo_pairing_and_velocity_zero_note_off(backend):
    # two overlapping C4s; the first note-off (a note-on with velocity 0) closes the EARLIEST
    body = (b"\x00\x90\x3c\x50" b"\x10\x90\x3c\x60" b"\x10\x90\x3c\x00" b"\x10\x80\x3c\x00"
            + EOT)
    score = read_bytes(header() + mtrk(body), backend)
    assert note_rows(score) == [(0, 0, 60, 0x50, 0, 32), (0, 0, 60, 0x60, 16, 48)]


def test_read_zero_length_and_open_notes(backend):
    # a zero-length note, and a note never closed: it ends at the track's last tick (EOT at 200)
    body = b"\x00\x90\x40\x50\x00\x80\x40\x00" b"\x00\x91\x41\x51" b"\x81\x48\xff\x2f\x00"
    score = read_bytes(header() + mtrk(body), backend)
    assert note_rows(score) == [(0, 0, 64, 0x50, 0, 0), (0, 1, 65, 0x51, 0, 200)]


def test_read_bytes_after_end_of_track_ignored(backend):
    score = read_bytes(header() + mtrk(NOTE + EOT + b"\x00\x90\x3e\x40\xff\xff"), backend)
    assert note_rows(score) == [(0, 0, 60, 64, 0, 96)]


def test_read_running_status_after_sysex_recovered_with_warning(backend):
    # The SMF spec: sysex and meta events cancel running status. These real files rely on it
    # anyway ("you must hear a C-major scale"); the reader recovers, reusing the cancelled
    # status, and says so.
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    for name, offset in (("test-running-status-sysex.mid", 225),
                         ("test-running-status-metaevent.mid", 234)):
        path = JAZZ / name
        with pytest.warns(MidiWarning) as record:
            score = midi.read(path, backend=backend)
        assert [str(w.message) for w in record] == [
            f"{path}: track 0: running status used after a meta or sysex event, which cancels "
            f"it (byte {offset}); reusing status 0x90"]
        assert score.notes["pitch"].tolist() == scale
        assert score.notes["start"].tolist() == [96 * i for i in range(8)]
        assert (score.notes["end"] - score.notes["start"]).tolist() == [96] * 8


def test_read_running_status_after_meta_without_prior_status_is_an_error(backend):
    path = CORRUPT / "MidiError_running_status_after_meta.mid"
    with pytest.raises(MidiError, match="data byte 0x3c without a running status"):
        midi.read(path, backend=backend)


def test_read_running_status_within_channel_events(backend):
    body = b"\x00\x90\x3c\x40" b"\x00\x40\x40" b"\x60\x3c\x00" b"\x00\x40\x00" + EOT
    score = read_bytes(header() + mtrk(body), backend)
    assert note_rows(score) == [(0, 0, 60, 64, 0, 96), (0, 0, 64, 64, 0, 96)]


def test_read_tempo_map_merges_tracks(backend):
    t0 = b"\x00\xff\x51\x03\x07\xa1\x20" b"\x83\x00\xff\x51\x03\x0f\x42\x40" + EOT  # tick 0, 384
    t1 = b"\x81\x40\xff\x51\x03\x03\xd0\x90" + NOTE + EOT  # tick 192
    score = read_bytes(header(ntrks=2) + mtrk(t0) + mtrk(t1), backend)
    assert score.tempos.tolist() == [(0, 500000), (192, 250000), (384, 1000000)]


def test_read_smpte_division_seconds(backend):
    # -25 fps, 40 ticks per frame: 1000 ticks per second whatever the tempo
    body = b"\x00\xff\x51\x03\x0f\x42\x40" b"\x00\x90\x3c\x40\x87\x68\x80\x3c\x00" + EOT
    score = read_bytes(header(division=(0xE7 << 8) | 40) + mtrk(body), backend)
    assert score.smpte == (25, 40) and score.ticks_per_beat == 0
    assert note_rows(score) == [(0, 0, 60, 64, 0, 1000)]
    np.testing.assert_allclose(score.ticks_to_seconds([0, 1000, 2500]), [0.0, 1.0, 2.5])
    drop = read_bytes(header(division=(0xE3 << 8) | 100) + mtrk(NOTE + EOT), backend)
    assert drop.smpte == (29.97, 100)
    np.testing.assert_allclose(drop.ticks_to_seconds(2997), 1.0)


def test_read_riff_rmi(backend, tmp_path):
    smf = (JAZZ / "test-c-major-scale.mid").read_bytes()
    riff = b"RIFF" + struct.pack("<I", 4 + 8 + len(smf)) + b"RMID" + b"data" + \
        struct.pack("<I", len(smf)) + smf
    path = tmp_path / "scale.rmi"
    path.write_bytes(riff)
    assert midi.read(path, backend=backend).equals(midi.read(JAZZ / "test-c-major-scale.mid",
                                                             backend=backend))


def test_read_unknown_chunk_between_tracks(backend):
    data = header(ntrks=2) + mtrk(NOTE + EOT) + b"XFIH" + struct.pack(">I", 3) + b"abc" + \
        mtrk(b"\x00\x91\x40\x41\x10\x81\x40\x00" + EOT)
    score = read_bytes(data, backend)
    assert note_rows(score) == [(0, 0, 60, 64, 0, 96), (1, 1, 64, 65, 0, 16)]
    assert len(score.track_names) == 2


@pytest.mark.parametrize("declared", [1, 3, 65535])
def test_read_declared_track_count_ignored(backend, declared):
    # more or fewer MTrk chunks than the header declares: read what is there
    data = header(ntrks=declared) + mtrk(NOTE + EOT) + mtrk(NOTE + EOT)
    score = read_bytes(data, backend)
    assert [r[0] for r in note_rows(score)] == [0, 1]


def test_read_empty_file_with_no_tracks(backend):
    score = read_bytes(header(ntrks=0), backend)
    assert score.n_notes == 0 and score.track_names == []


def test_read_long_vlq_deltas(backend):
    body = b"\x00\x90\x3c\x40" b"\xff\xff\xff\x7f\x80\x3c\x00" + EOT  # delta 0x0FFFFFFF
    assert note_rows(read_bytes(header() + mtrk(body), backend)) == [(0, 0, 60, 64, 0, 0x0FFFFFFF)]


def test_read_huge_declared_lengths_are_bounded(backend):
    # a 4-GB track length and a 256-MB sysex length in a 40-byte file: recovered or rejected,
    # never allocated
    data = header() + b"MTrk\xff\xff\xff\xff" + NOTE + b"\x00\xf0\xff\xff\xff\x7f"
    with pytest.warns(MidiWarning, match="chunk length 4294967295 runs past the end"):
        score = read_bytes(data, backend)
    assert note_rows(score) == [(0, 0, 60, 64, 0, 96)]


# ----------------------------------------------------------------------------- errors
CORRUPT_EXPECTED = {
    "MidiError_unexpected_end_of_chunk.mid":
        (24, "unexpected end of track 0 chunk while reading channel event data (2 bytes needed, "
             "1 left)"),
    "MidiError_vlq_too_long.mid": (22, "variable-length quantity longer than 4 bytes in a delta "
                                       "time"),
    "MidiError_data_byte_without_running_status.mid":
        (23, "data byte 0x3c without a running status (expected a status byte)"),
    "MidiError_running_status_after_meta.mid":
        (28, "data byte 0x3c without a running status (expected a status byte)"),
    "MidiError_meta_length_past_chunk.mid":
        (26, "meta event length 127 runs past the end of the track 0 chunk (3 bytes left)"),
    "MidiError_sysex_length_past_chunk.mid":
        (36, "sysex length 33554431 runs past the end of the track 0 chunk (5 bytes left)"),
    "MidiError_system_message_in_track.mid":
        (31, "status byte 0xf8 (a system common or real-time message) is not allowed in a MIDI "
             "file"),
    "MidiError_status_byte_in_data.mid": (25, "expected a data byte after status 0x90, found "
                                              "0x90"),
    "MidiError_not_a_midi_file.mid": (0, "not a MIDI file (expected a 'MThd' header chunk)"),
    "MidiError_truncated_header.mid": (10, "unexpected end of file in the MThd header (14 bytes "
                                           "needed, 10 present)"),
    "MidiError_header_length_too_small.mid": (4, "MThd header length 4 is too small (expected 6)"),
    "MidiError_unsupported_format.mid": (8, "unsupported SMF format 3 (expected 0, 1 or 2)"),
    "MidiError_zero_ticks_per_beat.mid": (12, "ticks per beat is 0 (expected > 0)"),
    "MidiError_smpte_frame_rate.mid": (12, "SMPTE division with 16 frames per second (expected "
                                           "24, 25, 29 or 30)"),
    "MidiError_no_track_chunk.mid": (14, "no 'MTrk' track chunk found (the header declares 1)"),
    "MidiError_riff_without_data_chunk.rmi": (12, "RIFF RMID file has no 'data' chunk holding "
                                                  "the MIDI data"),
}


def test_corrupt_fixtures_all_listed():
    on_disk = {p.name for p in CORRUPT.iterdir() if p.name.startswith("MidiError_")}
    assert on_disk == set(CORRUPT_EXPECTED)


@pytest.mark.parametrize("name", sorted(CORRUPT_EXPECTED))
def test_read_corrupt_raises_midi_error(backend, name):
    offset, reason = CORRUPT_EXPECTED[name]
    path = CORRUPT / name
    with pytest.raises(MidiError) as info:
        midi.read(path, backend=backend)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.offset, err.reason, err.path) == (offset, reason, str(path))
    assert str(err) == f"{path}: byte {offset}: {reason}"


def test_read_bytes_error_has_no_path(backend):
    with pytest.raises(MidiError) as info:
        midi.read_bytes(b"MThd", backend=backend)
    assert info.value.path is None and info.value.offset == 4


def test_read_truncated_last_track_warns(backend):
    path = CORRUPT / "MidiWarning_truncated_last_track.mid"
    with pytest.warns(MidiWarning) as record:
        score = midi.read(path, backend=backend)
    assert [str(w.message) for w in record] == [
        f"{path}: track 1: chunk length 400 runs past the end of the file (14 bytes present); "
        "read what is there"]
    # the second track's incomplete note-off is dropped; its open note ends at the last tick
    assert note_rows(score) == [(0, 0, 60, 64, 0, 96), (1, 0, 60, 64, 0, 96),
                                (1, 0, 60, 64, 96, 96)]


def test_read_running_status_after_meta_warns(backend):
    path = CORRUPT / "MidiWarning_running_status_after_meta.mid"
    with pytest.warns(MidiWarning, match="track 0: running status used after a meta or sysex "
                                         r"event, which cancels it \(byte 32\)"):
        score = midi.read(path, backend=backend)
    assert note_rows(score) == [(0, 0, 60, 64, 0, 96)]


def test_read_missing_end_of_track_warns(backend):
    path = CORRUPT / "MidiWarning_missing_end_of_track.mid"
    with pytest.warns(MidiWarning, match="track 0: no End-of-Track event; the track ends at "
                                         "tick 96"):
        score = midi.read(path, backend=backend)
    assert note_rows(score) == [(0, 0, 60, 64, 0, 96), (0, 0, 64, 80, 96, 96)]


def test_read_missing_file(backend, tmp_path):
    path = tmp_path / "nope.mid"
    with pytest.raises(MidiError) as info:
        midi.read(path, backend=backend)
    assert info.value.offset is None and info.value.path == str(path)
    assert info.value.reason == "cannot read the file: No such file or directory"
    with pytest.raises(MidiError, match="cannot read the file: Is a directory"):
        midi.read(tmp_path, backend=backend)


# ----------------------------------------------------------------------------- read_many
def test_read_many_raise_and_skip(backend, tmp_path):
    good = [JAZZ / "test-c-major-scale.mid", MIDI / "muspy" / "chords.mid"]
    bad = CORRUPT / "MidiError_vlq_too_long.mid"
    missing = tmp_path / "missing.mid"
    paths = [good[0], bad, missing, good[1]]
    for threads in (1, 2, 8):
        res = midi.read_many(paths, threads=threads, backend=backend, on_error="skip")
        assert isinstance(res, midi.ReadManyResult)
        assert res.paths == [str(good[0]), str(good[1])]
        assert [s.n_notes for s in res.scores] == [8, 12]
        assert [(p, e.offset) for p, e in res.errors] == [(str(bad), 22), (str(missing), None)]
        assert all(isinstance(e, MidiError) for _, e in res.errors)
    with pytest.raises(MidiError) as info:
        midi.read_many(paths, threads=2, backend=backend)
    assert info.value.path == str(bad)  # the first failure in input order
    scores = midi.read_many(good, backend=backend)
    assert [s.n_notes for s in scores] == [8, 12]
    assert midi.read_many([], backend=backend) == []


def test_read_many_warnings_and_arguments(backend):
    path = CORRUPT / "MidiWarning_missing_end_of_track.mid"
    with pytest.warns(MidiWarning, match="no End-of-Track"):
        (score,) = midi.read_many([path], backend=backend)
    assert score.n_notes == 2
    with pytest.raises(ValueError, match="on_error"):
        midi.read_many([path], backend=backend, on_error="ignore")
    with pytest.raises(ValueError, match="threads"):
        midi.read_many([path], backend=backend, threads=0)


def test_midi_module_exported():
    assert musgen.midi is midi
    assert issubclass(MidiError, ValueError)


def test_read_undecodable_and_bytes_paths(backend, tmp_path):
    src = (JAZZ / "test-c-major-scale.mid").read_bytes()
    odd = os.fsencode(tmp_path) + b"/caf\xe9.mid"  # not valid UTF-8
    with open(odd, "wb") as f:
        f.write(src)
    expected = midi.read(JAZZ / "test-c-major-scale.mid", backend=backend)
    assert midi.read(odd, backend=backend).equals(expected)
    (score,) = midi.read_many([odd], backend=backend)
    assert score.equals(expected)
    missing = os.fsencode(tmp_path) + b"/gone\xe9.mid"
    with pytest.raises(MidiError) as info:
        midi.read(missing, backend=backend)
    assert info.value.path == os.fsdecode(missing) and info.value.offset is None

