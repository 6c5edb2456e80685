"""Pure-Python Standard MIDI File reader: the readable reference.

The C++ reader (cpp/src/midi/read.cpp) is a port of ``parse`` below and must agree with it on
every file: same notes, tempo map, metadata, warnings, and the same MidiError text and offset.
Rules (SMF 1.0): running status is cancelled by meta and sysex events (a file that relies on it
anyway is recovered, reusing the cancelled status, with a MidiWarning); a note-on with velocity 0
is a note-off; note-offs close the earliest open note of the same (track, channel, pitch) (FIFO);
notes still open when a track ends end at that track's last tick; End-of-Track ends a track.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..errors import MidiError
from ..score import (
    KEY_SIGNATURE_DTYPE,
    NOTE_DTYPE,
    PROGRAM_DTYPE,
    TEMPO_DTYPE,
    TIME_SIGNATURE_DTYPE,
)

__all__ = ["parse"]

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
    _TrackParser(data, pos, end, truncated, track, out, warnings).run()


class _TrackParser:
    """One MTrk body: delta times, status bytes (with running status), and the three kinds of
    event; notes are paired FIFO per (channel, pitch)."""

    def __init__(self, data: bytes, pos: int, end: int, truncated: bool, track: int,
                 out: _Collector, warnings: list[str]):
        self.data, self.pos, self.end = data, pos, end
        self.truncated, self.track = truncated, track
        self.out, self.warnings = out, warnings
        self.opened: dict[int, deque] = {}  # (channel << 7 | pitch) -> deque of (start, vel)
        self.name: str | None = None
        self.tick = 0
        self.last_tick = 0  # tick of the last complete event
        self.running = 0
        self.cancelled = 0  # the channel status a meta/sysex event cancelled (for recovery)
        self.warned_cancelled = False

    # ------------------------------------------------------------------ bounds and numbers
    def need(self, p: int, k: int, what: str) -> None:
        if self.end - p < k:
            if self.truncated:
                raise _Truncated
            raise MidiError(f"unexpected end of track {self.track} chunk while reading {what} "
                            f"({k} bytes needed, {self.end - p} left)", None, p)

    def payload_fits(self, p: int, length: int, what: str) -> None:
        """A meta/sysex payload of ``length`` bytes at ``p`` must end inside the chunk."""
        if length > self.end - p:
            if self.truncated:
                raise _Truncated
            raise MidiError(f"{what} length {length} runs past the end of the track "
                            f"{self.track} chunk ({self.end - p} bytes left)", None, p)

    def vlq(self, p: int, what: str) -> tuple[int, int]:
        value = 0
        for i in range(4):
            self.need(p + i, 1, what)
            b = self.data[p + i]
            value = (value << 7) | (b & 0x7F)
            if b < 0x80:
                return value, p + i + 1
        raise MidiError(f"variable-length quantity longer than 4 bytes in {what}", None, p)

    # ------------------------------------------------------------------ the event loop
    def run(self) -> None:
        try:
            while not self.event():
                pass
        except _Truncated:
            pass
        notes, track = self.out.notes, self.track
        for key, q in self.opened.items():  # notes still sounding end at the last tick
            for start, vel in q:
                notes.append((track, key >> 7, key & 0x7F, vel, start, self.last_tick))
        self.out.track_names.append(self.name if self.name is not None else "")

    def event(self) -> bool:
        """Read one event; True when the track ends (End-of-Track, or the end of the chunk)."""
        if self.pos >= self.end:
            if not self.truncated:
                self.warnings.append(f"track {self.track}: no End-of-Track event; the track "
                                     f"ends at tick {self.last_tick}")
            return True
        ev = self.pos
        delta, self.pos = self.vlq(self.pos, "a delta time")
        if self.tick > INT64_MAX - delta:
            raise MidiError("absolute tick overflows a 64-bit integer", None, ev)
        self.tick += delta
        status = self.status()
        if status < 0xF0:
            self.channel_event(status)
            return False
        if status == 0xFF:
            return self.meta_event()
        if status == 0xF0 or status == 0xF7:
            self.sysex_event()
            return False
        raise MidiError(f"status byte 0x{status:02x} (a system common or real-time "
                        "message) is not allowed in a MIDI file", None, self.pos - 1)

    def status(self) -> int:
        """The event's status byte: read, or the running status (see the module doc)."""
        self.need(self.pos, 1, "a status byte")
        b = self.data[self.pos]
        if b >= 0x80:
            self.pos += 1
            return b
        if self.running:
            return self.running
        if self.cancelled:
            # Running status after a meta/sysex event, which cancels it (SMF 1.0). Real
            # files do this; recover as the best readers do, reusing the cancelled status.
            self.running = self.cancelled
            if not self.warned_cancelled:
                self.warned_cancelled = True
                self.warnings.append(f"track {self.track}: running status used after a meta or "
                                     f"sysex event, which cancels it (byte {self.pos}); reusing "
                                     f"status 0x{self.running:02x}")
            return self.running
        raise MidiError(f"data byte 0x{b:02x} without a running status (expected a "
                        "status byte)", None, self.pos)

    # ------------------------------------------------------------------ events
    def channel_event(self, status: int) -> None:
        data, pos = self.data, self.pos
        self.running = status
        nd = 1 if (status & 0xE0) == 0xC0 else 2
        self.need(pos, nd, "channel event data")
        for i in range(nd):
            if data[pos + i] >= 0x80:
                raise MidiError(f"expected a data byte after status 0x{status:02x}, "
                                f"found 0x{data[pos + i]:02x}", None, pos + i)
        kind, ch, d0 = status & 0xF0, status & 0x0F, data[pos]
        if kind == 0x90 and data[pos + 1] > 0:
            q = self.opened.get(ch << 7 | d0)
            if q is None:
                q = self.opened[ch << 7 | d0] = deque()
            q.append((self.tick, data[pos + 1]))
        elif kind == 0x80 or kind == 0x90:
            q = self.opened.get(ch << 7 | d0)
            if q:
                start, vel = q.popleft()
                self.out.notes.append((self.track, ch, d0, vel, start, self.tick))
        elif kind == 0xC0:
            self.out.programs.append((self.tick, self.track, ch, d0))
        self.pos = pos + nd
        self.last_tick = self.tick

    def _cancel_running(self) -> None:
        self.cancelled, self.running = self.running or self.cancelled, 0

    def meta_event(self) -> bool:
        """Read a meta event; True for End-of-Track."""
        self._cancel_running()
        self.need(self.pos, 1, "a meta event type")
        mtype = self.data[self.pos]
        length, pos = self.vlq(self.pos + 1, "a meta event length")
        self.payload_fits(pos, length, "meta event")
        payload = self.data[pos:pos + length]
        self.pos = pos + length
        self.last_tick = tick = self.tick
        out = self.out
        if mtype == 0x2F:
            return True
        if mtype == 0x51 and length >= 3:
            out.tempos.append((tick, int.from_bytes(payload[:3], "big")))
        elif mtype == 0x58 and length >= 2 and payload[1] <= 7:
            out.time_signatures.append((tick, payload[0], 1 << payload[1],
                                        payload[2] if length > 2 else 24,
                                        payload[3] if length > 3 else 8))
        elif mtype == 0x59 and length >= 2:
            key = payload[0] - 256 if payload[0] >= 128 else payload[0]
            out.key_signatures.append((tick, self.track, key, payload[1]))
        elif mtype == 0x03 and self.name is None:
            self.name = payload.decode("latin-1")
        return False

    def sysex_event(self) -> None:
        self._cancel_running()
        length, pos = self.vlq(self.pos, "a sysex length")
        self.payload_fits(pos, length, "sysex")
        self.pos = pos + length
        self.last_tick = self.tick
