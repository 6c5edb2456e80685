"""Pure-Python Standard MIDI File reader and the (single) writer: the readable reference.

The C++ reader (cpp/src/midi_read.cpp) is a port of ``parse`` below and must agree with it on
every file: same notes, tempo map, metadata, warnings, and the same MidiError text and offset.
Rules (SMF 1.0): running status is cancelled by meta and sysex events (a file that relies on it
anyway is recovered, reusing the cancelled status, with a MidiWarning); a note-on with velocity 0
is a note-off; note-offs close the earliest open note of the same (track, channel, pitch) (FIFO);
notes still open when a track ends end at that track's last tick; End-of-Track ends a track.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .errors import MidiError
from .score import (
    KEY_SIGNATURE_DTYPE,
    NOTE_DTYPE,
    PROGRAM_DTYPE,
    TEMPO_DTYPE,
    TIME_SIGNATURE_DTYPE,
)

__all__ = ["parse", "encode"]

INT64_MAX = (1 << 63) - 1
MAX_TRACKS = 65536  # the note array's track field is uint16
SMPTE_RATES = {24: 24, 25: 25, 29: 29.97, 30: 30}


class _Truncated(Exception):
    """Raised inside a track whose chunk was cut short by the end of the file: stop there."""


def _u32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos:pos + 4], "big")


def _riff_payload(data: bytes) -> tuple[int, int]:
    """(start, end) of the SMF inside a RIFF RMID wrapper."""
    n = len(data)
    if n < 12 or data[8:12] != b"RMID":
        raise MidiError("RIFF file is not an RMID file (expected 'RMID' at byte 8)", None, 8)
    pos = 12
    while n - pos >= 8:
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        start = pos + 8
        if data[pos:pos + 4] == b"data":
            return start, min(start + size, n)
        pos = start + size + (size & 1)
    raise MidiError("RIFF RMID file has no 'data' chunk holding the MIDI data", None, 12)


def parse(data: bytes) -> tuple[dict, list[str]]:
    """Parse a whole SMF (or RIFF RMID) file held in memory.

    Returns (fields, warnings): ``fields`` holds the Score constructor arguments (arrays in the
    score.py dtypes); ``warnings`` are the recovered damages, as text. Raises MidiError with
    path None (the caller fills it in) and the byte offset in ``data``.
    """
    base, n = 0, len(data)
    if data[:4] == b"RIFF":
        base, n = _riff_payload(data)
    size = n - base
    if size == 0:
        raise MidiError("file is empty (expected a 'MThd' header chunk)", None, base)
    head = data[base:base + min(4, size)]
    if head != b"MThd"[:len(head)]:
        raise MidiError("not a MIDI file (expected a 'MThd' header chunk)", None, base)
    if size < 14:
        raise MidiError(f"unexpected end of file in the MThd header (14 bytes needed, {size} "
                        "present)", None, base + size)
    hlen = _u32(data, base + 4)
    if hlen < 6:
        raise MidiError(f"MThd header length {hlen} is too small (expected 6)", None, base + 4)
    if hlen > size - 8:
        raise MidiError(f"MThd header length {hlen} runs past the end of the file "
                        f"({size - 8} bytes left)", None, base + 4)
    fmt = int.from_bytes(data[base + 8:base + 10], "big")
    ntrks = int.from_bytes(data[base + 10:base + 12], "big")
    division = int.from_bytes(data[base + 12:base + 14], "big")
    if fmt > 2:
        raise MidiError(f"unsupported SMF format {fmt} (expected 0, 1 or 2)", None, base + 8)
    smpte = None
    tpb = division
    if division & 0x8000:
        fps = 256 - (division >> 8)
        tpf = division & 0xFF
        if fps not in SMPTE_RATES:
            raise MidiError(f"SMPTE division with {fps} frames per second (expected 24, 25, 29 "
                            "or 30)", None, base + 12)
        if tpf == 0:
            raise MidiError("SMPTE division with 0 ticks per frame (expected > 0)", None,
                            base + 13)
        smpte = (SMPTE_RATES[fps], tpf)
        tpb = 0
    elif division == 0:
        raise MidiError("ticks per beat is 0 (expected > 0)", None, base + 12)

    out = _Collector()
    warnings: list[str] = []
    pos = base + 8 + hlen
    first_chunk = pos
    track = 0
    while n - pos >= 8:
        clen = _u32(data, pos + 4)
        body = pos + 8
        end = body + clen
        if data[pos:pos + 4] == b"MTrk":
            if track >= MAX_TRACKS:
                raise MidiError(f"more than {MAX_TRACKS} track chunks", None, pos)
            truncated = end > n
            if truncated:
                warnings.append(f"track {track}: chunk length {clen} runs past the end of the "
                                f"file ({n - body} bytes present); read what is there")
                end = n
            _parse_track(data, body, end, truncated, track, out, warnings)
            track += 1
        elif end > n:
            break  # an unknown chunk cut short by the end of the file: nothing more to read
        pos = end
    if track == 0 and ntrks > 0:
        raise MidiError(f"no 'MTrk' track chunk found (the header declares {ntrks})", None,
                        first_chunk)
    return out.fields(fmt, tpb, smpte, track), warnings


class _Collector:
    """Events of all tracks, in file order (track by track)."""

    def __init__(self) -> None:
        self.notes: list[tuple] = []  # (track, channel, pitch, velocity, start, end)
        self.tempos: list[tuple] = []
        self.time_signatures: list[tuple] = []
        self.key_signatures: list[tuple] = []
        self.programs: list[tuple] = []
        self.track_names: list[str] = []

    def fields(self, fmt: int, tpb: int, smpte, n_tracks: int) -> dict:
        notes = np.array(self.notes, dtype=NOTE_DTYPE) if self.notes else np.zeros(0, NOTE_DTYPE)
        if notes.size:
            # lexsort: last key is primary; velocity breaks full ties so both backends agree
            order = np.lexsort((notes["velocity"], notes["end"], notes["pitch"], notes["channel"],
                                notes["track"], notes["start"]))
            notes = notes[order]

        def stable(rows, dtype, keys):
            arr = np.array(rows, dtype=dtype) if rows else np.zeros(0, dtype)
            if arr.size:
                arr = arr[np.lexsort(tuple(arr[k] for k in reversed(keys)))]
            return arr

        return dict(
            notes=notes,
            ticks_per_beat=tpb,
            tempos=stable(self.tempos, TEMPO_DTYPE, ["tick"]),
            time_signatures=stable(self.time_signatures, TIME_SIGNATURE_DTYPE, ["tick"]),
            key_signatures=stable(self.key_signatures, KEY_SIGNATURE_DTYPE, ["tick", "track"]),
            programs=stable(self.programs, PROGRAM_DTYPE, ["tick", "track", "channel"]),
            track_names=list(self.track_names),
            format=fmt,
            smpte=smpte,
        )


def _parse_track(data: bytes, pos: int, end: int, truncated: bool, track: int,
                 out: _Collector, warnings: list[str]) -> None:
    """Parse one MTrk body data[pos:end] into ``out``."""
    opened: dict[int, deque] = {}  # (channel << 7 | pitch) -> deque of (start, velocity)
    notes = out.notes
    name = None
    tick = 0
    last_tick = 0  # tick of the last complete event
    running = 0
    cancelled = 0  # the channel status a meta/sysex event cancelled (for recovery)
    warned_cancelled = False

    def need(p: int, k: int, what: str) -> None:
        if end - p < k:
            if truncated:
                raise _Truncated
            raise MidiError(f"unexpected end of track {track} chunk while reading {what} "
                            f"({k} bytes needed, {end - p} left)", None, p)

    def payload_fits(p: int, length: int, what: str) -> None:
        """A meta/sysex payload of ``length`` bytes at ``p`` must end inside the chunk."""
        if length > end - p:
            if truncated:
                raise _Truncated
            raise MidiError(f"{what} length {length} runs past the end of the track {track} "
                            f"chunk ({end - p} bytes left)", None, p)

    def vlq(p: int, what: str) -> tuple[int, int]:
        value = 0
        for i in range(4):
            need(p + i, 1, what)
            b = data[p + i]
            value = (value << 7) | (b & 0x7F)
            if b < 0x80:
                return value, p + i + 1
        raise MidiError(f"variable-length quantity longer than 4 bytes in {what}", None, p)

    try:
        while True:
            if pos >= end:
                if not truncated:
                    warnings.append(f"track {track}: no End-of-Track event; the track ends at "
                                    f"tick {last_tick}")
                break
            ev = pos
            delta, pos = vlq(pos, "a delta time")
            if tick > INT64_MAX - delta:
                raise MidiError("absolute tick overflows a 64-bit integer", None, ev)
            tick += delta
            need(pos, 1, "a status byte")
            b = data[pos]
            if b >= 0x80:
                status = b
                pos += 1
            elif running:
                status = running
            elif cancelled:
                # Running status after a meta/sysex event, which cancels it (SMF 1.0). Real
                # files do this; recover as the best readers do, reusing the cancelled status.
                status = running = cancelled
                if not warned_cancelled:
                    warned_cancelled = True
                    warnings.append(f"track {track}: running status used after a meta or sysex "
                                    f"event, which cancels it (byte {pos}); reusing status "
                                    f"0x{status:02x}")
            else:
                raise MidiError(f"data byte 0x{b:02x} without a running status (expected a "
                                "status byte)", None, pos)
            if status < 0xF0:
                running = status
                nd = 1 if (status & 0xE0) == 0xC0 else 2
                need(pos, nd, "channel event data")
                for i in range(nd):
                    if data[pos + i] >= 0x80:
                        raise MidiError(f"expected a data byte after status 0x{status:02x}, "
                                        f"found 0x{data[pos + i]:02x}", None, pos + i)
                kind = status & 0xF0
                ch = status & 0x0F
                d0 = data[pos]
                if kind == 0x90 and data[pos + 1] > 0:
                    q = opened.get(ch << 7 | d0)
                    if q is None:
                        q = opened[ch << 7 | d0] = deque()
                    q.append((tick, data[pos + 1]))
                elif kind == 0x80 or kind == 0x90:
                    q = opened.get(ch << 7 | d0)
                    if q:
                        start, vel = q.popleft()
                        notes.append((track, ch, d0, vel, start, tick))
                elif kind == 0xC0:
                    out.programs.append((tick, track, ch, d0))
                pos += nd
                last_tick = tick
            elif status == 0xFF:
                cancelled, running = running or cancelled, 0
                need(pos, 1, "a meta event type")
                mtype = data[pos]
                length, pos = vlq(pos + 1, "a meta event length")
                payload_fits(pos, length, "meta event")
                payload = data[pos:pos + length]
                pos += length
                last_tick = tick
                if mtype == 0x2F:
                    break
                if mtype == 0x51 and length >= 3:
                    out.tempos.append((tick, int.from_bytes(payload[:3], "big")))
                elif mtype == 0x58 and length >= 2 and payload[1] <= 7:
                    out.time_signatures.append((tick, payload[0], 1 << payload[1],
                                                payload[2] if length > 2 else 24,
                                                payload[3] if length > 3 else 8))
                elif mtype == 0x59 and length >= 2:
                    key = payload[0] - 256 if payload[0] >= 128 else payload[0]
                    out.key_signatures.append((tick, track, key, payload[1]))
                elif mtype == 0x03 and name is None:
                    name = payload.decode("latin-1")
            elif status == 0xF0 or status == 0xF7:
                cancelled, running = running or cancelled, 0
                length, pos = vlq(pos, "a sysex length")
                payload_fits(pos, length, "sysex")
                pos += length
                last_tick = tick
            else:
                raise MidiError(f"status byte 0x{status:02x} (a system common or real-time "
                                "message) is not allowed in a MIDI file", None, pos - 1)
    except _Truncated:
        pass
    for key, q in opened.items():  # notes still sounding end at the track's last tick
        for start, vel in q:
            notes.append((track, key >> 7, key & 0x7F, vel, start, last_tick))
    out.track_names.append(name if name is not None else "")


# ----------------------------------------------------------------------------- writer
MAX_DELTA = 0x0FFFFFFF  # the largest delta time a 4-byte VLQ holds


def _meta(mtype: int, payload: bytes) -> bytes:
    n = len(payload)
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


def encode(score) -> bytes:
    """A type-1 SMF holding ``score``.

    Track ``k`` of the file holds the notes, programs, key signatures and name of the score's
    track ``k``, so reading the file back gives the same track indices; track 0 also holds the
    tempo map and time signatures. At equal ticks the events of a track are ordered so that FIFO
    pairing reproduces every note: name, metas, programs, note-offs of notes that began earlier,
    note-ons (in note order), then note-offs of zero-length notes.
    """
    notes, programs, keys = score.notes, score.programs, score.key_signatures
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
                      ("key signature", keys)):
        if arr.size:
            _check(int(arr["tick"].min()) >= 0, f"{name} ticks must be >= 0")
    if score.tempos.size:
        _check(int(score.tempos["tempo"].max()) <= 0xFFFFFF,
               "tempos must fit in 24 bits (<= 16777215 microseconds per beat)")
    if score.smpte is not None:
        fps, tpf = score.smpte
        code = {24: 24, 25: 25, 29.97: 29, 30: 30}.get(fps)
        _check(code is not None and 0 < int(tpf) < 256,
               f"smpte {score.smpte!r}: expected fps 24, 25, 29.97 or 30 and 1..255 ticks per frame")
        division = ((256 - code) << 8) | int(tpf)
    else:
        _check(0 < int(score.ticks_per_beat) < 0x8000, "ticks_per_beat must be 1..32767")
        division = int(score.ticks_per_beat)

    # An empty score (no tracks at all) is written with no track, so it reads back unchanged.
    conductor = 1 if (score.tempos.size or score.time_signatures.size) else 0
    n_tracks = max([conductor, len(score.track_names)]
                   + [int(a["track"].max()) + 1 for a in (notes, programs, keys) if a.size])
    _check(n_tracks <= 65535, "at most 65535 tracks")
    names = list(score.track_names) + [""] * (n_tracks - len(score.track_names))

    # Sort once by track; each track's slice keeps the array order (stable).
    def by_track(arr):
        order = np.argsort(arr["track"], kind="stable")
        arr = arr[order]
        bounds = np.searchsorted(arr["track"], np.arange(n_tracks + 1))
        return arr, bounds

    # Notes in canonical order (whatever order the caller's array has), so each key's note-offs
    # at a tick follow their note-ons' order, as FIFO pairing needs.
    notes = notes[np.lexsort((notes["velocity"], notes["end"], notes["pitch"], notes["channel"],
                              notes["start"]))] if notes.size else notes
    notes_t, nb = by_track(notes)
    progs_t, pb = by_track(programs)
    keys_t, kb = by_track(keys)

    chunks = []
    for t in range(n_tracks):
        metas = []  # (tick, group, bytes)
        if names[t]:
            metas.append((0, 0, _meta(0x03, str(names[t]).encode("latin-1", "replace"))))
        if t == 0:
            for row in score.tempos:
                metas.append((int(row["tick"]), 1, _meta(0x51, int(row["tempo"]).to_bytes(3, "big"))))
            for row in score.time_signatures:
                den = int(row["denominator"])
                _check(den > 0 and den & (den - 1) == 0 and den <= 128,
                       f"time signature denominator {den} is not a power of two <= 128")
                metas.append((int(row["tick"]), 1, _meta(0x58, bytes(
                    [int(row["numerator"]), den.bit_length() - 1, int(row["clocks_per_click"]),
                     int(row["notated_32nds"])]))))
        for row in keys_t[kb[t]:kb[t + 1]]:
            metas.append((int(row["tick"]), 1, _meta(0x59, bytes(
                [int(row["key"]) & 0xFF, int(row["mode"])]))))
        tn = notes_t[nb[t]:nb[t + 1]]
        tp = progs_t[pb[t]:pb[t + 1]]
        m = len(metas)
        meta_blob = b"".join(x[2] for x in metas)
        meta_len = np.array([len(x[2]) for x in metas], dtype=np.int64)
        ch = tn["channel"].astype(np.uint8)
        on = np.stack([0x90 | ch, tn["pitch"], tn["velocity"]], axis=1).astype(np.uint8)
        off = np.stack([0x80 | ch, tn["pitch"], np.full_like(ch, 0x40)], axis=1).astype(np.uint8)
        pg = np.stack([0xC0 | tp["channel"].astype(np.uint8), tp["program"]],
                      axis=1).astype(np.uint8)
        blob = np.concatenate([np.frombuffer(meta_blob, dtype=np.uint8), on.ravel(), off.ravel(),
                               pg.ravel()])
        k, p = tn.size, tp.size
        seq_notes = np.arange(k, dtype=np.int64)
        start, stop = tn["start"].astype(np.int64), tn["end"].astype(np.int64)
        tick = np.concatenate([np.array([x[0] for x in metas], dtype=np.int64), start, stop,
                               tp["tick"].astype(np.int64)])
        group = np.concatenate([np.array([x[1] for x in metas], dtype=np.int64),
                                np.full(k, 4), np.where(stop == start, 5, 3),
                                np.full(p, 2)]).astype(np.int64)
        seq = np.concatenate([np.arange(m), seq_notes, seq_notes, np.arange(p)]).astype(np.int64)
        moff = np.concatenate([[0], np.cumsum(meta_len)[:-1]]).astype(np.int64) if m else \
            np.zeros(0, np.int64)
        base = len(meta_blob)
        off_idx = np.concatenate([moff, base + 3 * seq_notes, base + 3 * k + 3 * seq_notes,
                                  base + 6 * k + 2 * np.arange(p)]).astype(np.int64)
        length = np.concatenate([meta_len, np.full(2 * k, 3), np.full(p, 2)]).astype(np.int64)
        body = _track_bytes(tick, group, seq, off_idx, length, blob)
        # End-of-Track at the track's last tick (delta 0 after the last event)
        body += b"\x00\xff\x2f\x00"
        chunks.append(b"MTrk" + len(body).to_bytes(4, "big") + body)
    header = b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + \
        n_tracks.to_bytes(2, "big") + division.to_bytes(2, "big")
    return header + b"".join(chunks)
