"""The Standard MIDI File writer (type 1): ``encode(score, text) -> bytes``, vectorized with NumPy.

The readable reference of the C++ writer (cpp/src/midi/write.cpp), which gives the same bytes
and the same errors. Note hygiene: the file never holds two overlapping notes on one key and
channel (``without_overlaps``), so reading the bytes back gives ``without_overlaps(score)``:
the same Score (notes with their track indices, tempo map, time and key signatures, programs,
track names) whenever no note starts while an earlier one of its key and channel sounds.
"""

from __future__ import annotations

import numpy as np

__all__ = ["encode", "without_overlaps", "MAX_META_BYTES"]

MAX_DELTA = 0x0FFFFFFF  # the largest delta time a 4-byte VLQ holds
MAX_META_BYTES = 0x0FFFFFFF  # the longest meta payload a 4-byte VLQ length holds
SMPTE_CODES = {24: 24, 25: 25, 29.97: 29, 30: 30}
# Order of events at one tick inside a track, so that FIFO pairing reproduces every note.
# Notes that begin at a tick go last, in note order, each note-on followed at once by its
# note-off when the note has zero length (so a synthesizer never hears on, on, off on one key).
GROUP_NAME, GROUP_META, GROUP_PROGRAM, GROUP_NOTE_OFF, GROUP_NOTE = range(5)


def _meta(mtype: int, payload: bytes) -> bytes:
    n = len(payload)
    _check(n <= MAX_META_BYTES, f"a meta event of {n} bytes is longer than MIDI can hold "
           f"({MAX_META_BYTES})")
    out = bytearray()
    for shift in (21, 14, 7):
        if n >> shift:
            out.append(0x80 | (n >> shift) & 0x7F)
    out.append(n & 0x7F)
    return bytes([0xFF, mtype]) + bytes(out) + payload


def _check(cond, what: str) -> None:
    if not cond:
        raise ValueError(f"musgen.midi.write: {what}")


def _track_bytes(tick, group, seq, off, length, blob) -> bytes:
    """Serialize one track's events (delta-time VLQ + payload) in (tick, group, seq) order."""
    order = np.lexsort((seq, group, tick))
    tick, off, length = tick[order], off[order], length[order]
    delta = np.diff(tick, prepend=np.int64(0))
    if delta.size and int(delta.max()) > MAX_DELTA:
        raise ValueError(f"musgen.midi.write: a gap of {int(delta.max())} ticks between two "
                         f"events exceeds the largest delta time ({MAX_DELTA})")
    vlen = 1 + (delta >= 1 << 7) + (delta >= 1 << 14) + (delta >= 1 << 21)
    size = vlen + length
    starts = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    out = np.zeros(int(size.sum()), dtype=np.uint8)
    for k in range(4):  # byte k of the VLQ, most significant first
        m = vlen > k
        shift = 7 * (vlen[m] - 1 - k)
        byte = (delta[m] >> shift) & 0x7F
        out[starts[m] + k] = byte | np.where(k < vlen[m] - 1, 0x80, 0)
    total = int(length.sum())
    if total:
        ev = np.repeat(np.arange(length.size), length)
        within = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
        out[starts[ev] + vlen[ev] + within] = blob[off[ev] + within]
    return out.tobytes()


def _check_values(score) -> None:
    """Every value must fit its MIDI field (ValueError naming the field otherwise)."""
    notes, programs = score.notes, score.programs
    if notes.size:
        _check(int(notes["start"].min()) >= 0, "note start ticks must be >= 0")
        _check(bool(np.all(notes["end"] >= notes["start"])), "note end ticks must be >= start")
        _check(int(notes["channel"].max()) < 16, "note channels must be 0..15")
        _check(int(notes["pitch"].max()) < 128, "note pitches must be 0..127")
        _check(1 <= int(notes["velocity"].min()) and int(notes["velocity"].max()) < 128,
               "note velocities must be 1..127 (a note-on with velocity 0 is a note-off)")
    if programs.size:
        _check(int(programs["tick"].min()) >= 0, "program ticks must be >= 0")
        _check(int(programs["channel"].max()) < 16, "program channels must be 0..15")
        _check(int(programs["program"].max()) < 128, "programs must be 0..127")
    for name, arr in (("tempo", score.tempos), ("time signature", score.time_signatures),
                      ("key signature", score.key_signatures)):
        if arr.size:
            _check(int(arr["tick"].min()) >= 0, f"{name} ticks must be >= 0")
    if score.tempos.size:
        _check(int(score.tempos["tempo"].max()) <= 0xFFFFFF,
               "tempos must fit in 24 bits (<= 16777215 microseconds per beat)")
    for row in score.time_signatures:
        den = int(row["denominator"])
        _check(den > 0 and den & (den - 1) == 0 and den <= 128,
               f"time signature denominator {den} is not a power of two <= 128")


def _division(score) -> int:
    """The header's division word: ticks per beat, or the SMPTE frame rate and resolution."""
    if score.smpte is not None:
        fps, tpf = score.smpte
        code = SMPTE_CODES.get(fps)
        _check(code is not None and 0 < int(tpf) < 256,
               f"smpte {score.smpte!r}: expected fps 24, 25, 29.97 or 30 and 1..255 ticks per frame")
        return ((256 - code) << 8) | int(tpf)
    _check(0 < int(score.ticks_per_beat) < 0x8000, "ticks_per_beat must be 1..32767")
    return int(score.ticks_per_beat)


def _by_track(arr: np.ndarray, n_tracks: int):
    """``arr`` sorted by track (stable) and the bounds of each track's slice."""
    arr = arr[np.argsort(arr["track"], kind="stable")]
    return arr, np.searchsorted(arr["track"], np.arange(n_tracks + 1))


def _track_metas(score, t: int, name: str, text: bytes | None, keys: np.ndarray) -> list:
    """Track ``t``'s meta events as (tick, group, bytes): its name, and on track 0 the text
    event, the tempo map and time signatures; then its key signatures."""
    metas = []
    if name:
        metas.append((0, GROUP_NAME, _meta(0x03, str(name).encode("latin-1", "replace"))))
    if t == 0:
        if text is not None:
            metas.append((0, GROUP_NAME, _meta(0x01, text)))
        for row in score.tempos:
            metas.append((int(row["tick"]), GROUP_META,
                          _meta(0x51, int(row["tempo"]).to_bytes(3, "big"))))
        for row in score.time_signatures:
            den = int(row["denominator"])
            metas.append((int(row["tick"]), GROUP_META, _meta(0x58, bytes(
                [int(row["numerator"]), den.bit_length() - 1, int(row["clocks_per_click"]),
                 int(row["notated_32nds"])]))))
    for row in keys:
        metas.append((int(row["tick"]), GROUP_META, _meta(0x59, bytes(
            [int(row["key"]) & 0xFF, int(row["mode"])]))))
    return metas


def _track_chunk(metas: list, tn: np.ndarray, tp: np.ndarray) -> bytes:
    """One MTrk chunk from a track's metas, notes ``tn`` and program changes ``tp``: every
    event's bytes are laid out in one blob, then ordered by (tick, group, sequence)."""
    m, k, p = len(metas), tn.size, tp.size
    meta_blob = b"".join(x[2] for x in metas)
    meta_len = np.array([len(x[2]) for x in metas], dtype=np.int64)
    ch = tn["channel"].astype(np.uint8)
    on = np.stack([0x90 | ch, tn["pitch"], tn["velocity"]], axis=1).astype(np.uint8)
    off = np.stack([0x80 | ch, tn["pitch"], np.full_like(ch, 0x40)], axis=1).astype(np.uint8)
    pg = np.stack([0xC0 | tp["channel"].astype(np.uint8), tp["program"]],
                  axis=1).astype(np.uint8)
    blob = np.concatenate([np.frombuffer(meta_blob, dtype=np.uint8), on.ravel(), off.ravel(),
                           pg.ravel()])
    seq_notes = np.arange(k, dtype=np.int64)
    start, stop = tn["start"].astype(np.int64), tn["end"].astype(np.int64)
    tick = np.concatenate([np.array([x[0] for x in metas], dtype=np.int64), start, stop,
                           tp["tick"].astype(np.int64)])
    zero = stop == start
    group = np.concatenate([np.array([x[1] for x in metas], dtype=np.int64),
                            np.full(k, GROUP_NOTE),
                            np.where(zero, GROUP_NOTE, GROUP_NOTE_OFF),
                            np.full(p, GROUP_PROGRAM)]).astype(np.int64)
    # a note's on is 2i in its group; a zero-length note's off 2i + 1, right after it
    seq = np.concatenate([np.arange(m), 2 * seq_notes, np.where(zero, 2 * seq_notes + 1,
                                                                 seq_notes),
                          np.arange(p)]).astype(np.int64)
    moff = (np.concatenate([[0], np.cumsum(meta_len)[:-1]]).astype(np.int64) if m
            else np.zeros(0, np.int64))
    base = len(meta_blob)
    off_idx = np.concatenate([moff, base + 3 * seq_notes, base + 3 * k + 3 * seq_notes,
                              base + 6 * k + 2 * np.arange(p)]).astype(np.int64)
    length = np.concatenate([meta_len, np.full(2 * k, 3), np.full(p, 2)]).astype(np.int64)
    body = _track_bytes(tick, group, seq, off_idx, length, blob)
    body += b"\x00\xff\x2f\x00"  # End-of-Track at the track's last tick
    return b"MTrk" + len(body).to_bytes(4, "big") + body


def without_overlaps(notes: np.ndarray) -> np.ndarray:
    """Note hygiene: a note that starts while an earlier note of the same key (channel, pitch;
    in any track) still sounds ends the earlier one at the re-strike.

    Notes of one key are taken in (start, end, track, velocity) order and each ends at the next
    one's start if that is sooner; several notes starting at one tick leave all but the last of
    them with zero length. No note is dropped. Returns ``notes`` itself when nothing overlaps,
    else a new array in Score order (start, track, channel, pitch, end, velocity).
    """
    if notes.size < 2:
        return notes
    order = np.lexsort((notes["velocity"], notes["track"], notes["end"], notes["start"],
                        notes["pitch"], notes["channel"]))
    chan, pitch = notes["channel"][order], notes["pitch"][order]
    start, end = notes["start"][order], notes["end"][order]
    same_key = (chan[1:] == chan[:-1]) & (pitch[1:] == pitch[:-1])
    cut = same_key & (start[1:] < end[:-1])
    if not cut.any():
        return notes
    out = notes[order]
    idx = np.flatnonzero(cut)
    out["end"][idx] = start[idx + 1]
    return out[np.lexsort((out["velocity"], out["end"], out["pitch"], out["channel"],
                           out["track"], out["start"]))]


def encode(score, text: bytes | None = None) -> bytes:
    """A type-1 SMF holding ``score``, with ``text`` (a Text meta event) at tick 0 of track 0.

    Track ``k`` of the file holds the notes, programs, key signatures and name of the score's
    track ``k``, so reading the file back gives the same track indices; track 0 also holds the
    text, the tempo map and time signatures. Notes pass through ``without_overlaps`` first. At
    equal ticks the events of a track are ordered so that FIFO pairing reproduces every note:
    name, text, metas, programs, note-offs of notes that began earlier, then the notes that
    begin there in note order (a zero-length note's off right after its on).
    """
    division = _division(score)
    _check_values(score)
    notes, programs, keys = without_overlaps(score.notes), score.programs, score.key_signatures
    # An empty score (no tracks at all) is written with no track, so it reads back unchanged;
    # a text event needs one.
    conductor = 1 if (score.tempos.size or score.time_signatures.size or text is not None) else 0
    n_tracks = max([conductor, len(score.track_names)]
                   + [int(a["track"].max()) + 1 for a in (notes, programs, keys) if a.size])
    _check(n_tracks <= 65535, "at most 65535 tracks")
    names = list(score.track_names) + [""] * (n_tracks - len(score.track_names))
    # Notes in canonical order (whatever order the caller's array has), so each key's note-offs
    # at a tick follow their note-ons' order, as FIFO pairing needs.
    if notes.size:
        notes = notes[np.lexsort((notes["velocity"], notes["end"], notes["pitch"],
                                  notes["channel"], notes["start"]))]
    notes_t, nb = _by_track(notes, n_tracks)
    progs_t, pb = _by_track(programs, n_tracks)
    keys_t, kb = _by_track(keys, n_tracks)
    chunks = [_track_chunk(_track_metas(score, t, names[t], text, keys_t[kb[t]:kb[t + 1]]),
                           notes_t[nb[t]:nb[t + 1]], progs_t[pb[t]:pb[t + 1]])
              for t in range(n_tracks)]
    header = (b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big")
              + n_tracks.to_bytes(2, "big") + division.to_bytes(2, "big"))
    return header + b"".join(chunks)
