"""Writes the corrupt MIDI fixtures in this folder (run it to regenerate them).

Each file is named after what reading it must do: ``MidiError_<problem>.mid`` raises that
MidiError, ``MidiWarning_<damage>.mid`` is recovered with that MidiWarning. The expected
messages and byte offsets are listed in tests/test_midi.py.
"""

from __future__ import annotations

import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent


def header(fmt: int = 0, ntrks: int = 1, division: int = 96) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, fmt, ntrks, division)


def mtrk(body: bytes, length: int | None = None) -> bytes:
    return b"MTrk" + struct.pack(">I", len(body) if length is None else length) + body


NOTE = b"\x00\x90\x3c\x40\x60\x80\x3c\x40"  # C4 for 96 ticks
EOT = b"\x00\xff\x2f\x00"

FILES = {
    # a complete chunk (its length is honest) that ends inside a note-on
    "MidiError_unexpected_end_of_chunk.mid": header() + mtrk(b"\x00\x90\x3c"),
    "MidiError_vlq_too_long.mid": header() + mtrk(b"\xff\xff\xff\xff\x00\x90\x3c\x40" + EOT),
    "MidiError_data_byte_without_running_status.mid": header() + mtrk(b"\x00\x3c\x40" + EOT),
    # the SMF spec: a meta event cancels running status, and no channel status came before
    "MidiError_running_status_after_meta.mid": header() + mtrk(
        b"\x00\xff\x01\x01x\x60\x3c\x00" + EOT),
    "MidiError_meta_length_past_chunk.mid": header() + mtrk(b"\x00\xff\x01\x7fabc"),
    "MidiError_sysex_length_past_chunk.mid": header() + mtrk(
        NOTE + b"\x00\xf0\x8f\xff\xff\x7f\xf7" + EOT),
    "MidiError_system_message_in_track.mid": header() + mtrk(NOTE + b"\x00\xf8" + EOT),
    "MidiError_status_byte_in_data.mid": header() + mtrk(b"\x00\x90\x3c\x90\x40" + EOT),
    "MidiError_not_a_midi_file.mid": b"RIFX\x00\x00\x00\x04WAVE",
    "MidiError_truncated_header.mid": b"MThd\x00\x00\x00\x06\x00\x01",
    "MidiError_header_length_too_small.mid": b"MThd\x00\x00\x00\x04\x00\x00\x00\x01\x00\x60",
    "MidiError_unsupported_format.mid": header(fmt=3) + mtrk(NOTE + EOT),
    "MidiError_zero_ticks_per_beat.mid": header(division=0) + mtrk(NOTE + EOT),
    "MidiError_smpte_frame_rate.mid": header(division=0xF060) + mtrk(NOTE + EOT),  # -16 fps
    "MidiError_no_track_chunk.mid": header() + b"JUNK" + struct.pack(">I", 2) + b"ab",
    "MidiError_riff_without_data_chunk.rmi": b"RIFF" + struct.pack("<I", 16) + b"RMID"
                                             + b"LIST" + struct.pack("<I", 4) + b"INFO",
    # 4-byte VLQ delta times of 0x0FFFFFFF: fine; a 5-byte one is the error above
    "MidiWarning_truncated_last_track.mid": header(ntrks=2) + mtrk(NOTE + EOT)
                                            + mtrk(NOTE + NOTE + EOT, length=400)[:-6],
    # running status used across a meta event that cancelled it: recovered with a warning
    "MidiWarning_running_status_after_meta.mid": header() + mtrk(
        b"\x00\x90\x3c\x40\x00\xff\x01\x01x\x60\x3c\x00" + EOT),
    "MidiWarning_missing_end_of_track.mid": header() + mtrk(NOTE + b"\x00\x90\x40\x50"),
}


def main() -> None:
    for name, data in FILES.items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
