"""Check that each given file is a valid MIDI file with notes (read by mido, independently)."""

import sys

import mido

for path in sys.argv[1:]:
    mid = mido.MidiFile(path)
    notes = sum(1 for track in mid.tracks for msg in track
                if msg.type == "note_on" and msg.velocity > 0)
    print(f"{path}: type {mid.type}, {len(mid.tracks)} tracks, {notes} notes, "
          f"{mid.length:.1f} s")
    if notes == 0:
        sys.exit(f"{path}: no notes")
