"""Names of what the version-2 header tokens stand for: General MIDI instruments, the 24 keys
and their key signatures, meters, and how a user's words ("piano", "D minor", "6/8") map to
them. Pure tables and lookups, shared by the codec, the datasets and generation."""

from __future__ import annotations

import re
from fractions import Fraction

from ..errors import CodecError

__all__ = ["GM_PROGRAMS", "DRUMS", "program_name", "parse_program", "KEY_NAMES", "parse_key",
           "key_signature", "key_from_signature", "parse_meter", "meter_name"]

#: General MIDI Level 1 instrument names, program 0..127.
GM_PROGRAMS = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone",
    "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar",
    "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax",
    "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute",
    "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto",
    "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)
assert len(GM_PROGRAMS) == 128

#: The program number standing for a drum part (channel 10) in version-2 tokens.
DRUMS = 128

#: Short words users type, mapped to the first program of their General MIDI family.
_ALIASES = {
    "piano": 0, "grand piano": 0, "electric piano": 4, "harpsichord": 6, "organ": 19,
    "church organ": 19, "accordion": 21, "guitar": 24, "acoustic guitar": 24,
    "electric guitar": 27, "bass": 32, "electric bass": 33, "synth bass": 38, "violin": 40,
    "viola": 41, "cello": 42, "contrabass": 43, "double bass": 43, "harp": 46, "timpani": 47,
    "strings": 48, "string ensemble": 48, "choir": 52, "voice": 53, "trumpet": 56,
    "trombone": 57, "tuba": 58, "horn": 60, "french horn": 60, "brass": 61, "sax": 65,
    "saxophone": 65, "oboe": 68, "bassoon": 70, "clarinet": 71, "piccolo": 72, "flute": 73,
    "recorder": 74, "whistle": 78, "lead": 80, "square": 80, "square lead": 80, "sawtooth": 81,
    "pad": 88, "sitar": 104, "banjo": 105, "steel drums": 114,
}
_DRUM_WORDS = ("drums", "drum kit", "drumkit", "percussion", "standard drum kit")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9+]+", " ", str(text).lower()).strip()


_BY_NAME = {_norm(n): i for i, n in enumerate(GM_PROGRAMS)}


def program_name(program: int) -> str:
    """The General MIDI name of a program (0..127), or "Drums" for DRUMS (128)."""
    return "Drums" if program == DRUMS else GM_PROGRAMS[program]


def parse_program(value) -> int:
    """A program number (0..127, or DRUMS = 128) from an int, a General MIDI name
    ("Acoustic Bass", any case), a common short name ("piano", "strings", "drums"), or words
    that name exactly one General MIDI instrument ("nylon")."""
    if isinstance(value, bool):
        raise CodecError(f"instrument {value!r}: expected a General MIDI program or name")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        p = int(value)
        if 0 <= p <= DRUMS:
            return p
        raise CodecError(f"instrument {value!r}: a General MIDI program is 0..127 (128: drums)")
    if not isinstance(value, str):
        raise CodecError(f"instrument {value!r}: expected a General MIDI program or name")
    key = _norm(value)
    if key in _DRUM_WORDS:
        return DRUMS
    if key in _BY_NAME:
        return _BY_NAME[key]
    if key in _ALIASES:
        return _ALIASES[key]
    words = key.split()
    hits = [i for i, n in enumerate(GM_PROGRAMS) if words and all(w in _norm(n).split()
                                                                  for w in words)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        some = ", ".join(repr(GM_PROGRAMS[i]) for i in hits[:4])
        raise CodecError(f"instrument {value!r} names {len(hits)} General MIDI instruments "
                         f"({some}...); give the full name or the program number")
    raise CodecError(f"instrument {value!r}: not a General MIDI instrument name (e.g. "
                     "'Acoustic Grand Piano', 'piano', 'strings', 'drums') or program 0..127")


# ------------------------------------------------------------------------------------ keys
_TONICS_MAJOR = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_TONICS_MINOR = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
#: The 24 keys in Key-token order: index = tonic pitch class (C = 0) + 12 for minor.
KEY_NAMES = tuple(_TONICS_MAJOR) + tuple(t + "m" for t in _TONICS_MINOR)
_SHARPS_MAJOR = (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5)
_SHARPS_MINOR = (-3, 4, -1, -6, 1, -4, 3, -2, 5, 0, -5, 2)
_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def key_signature(key: int) -> tuple[int, int]:
    """(sharps (>0) or flats (<0), mode 0 major / 1 minor) of key index 0..23."""
    return (_SHARPS_MINOR[key - 12], 1) if key >= 12 else (_SHARPS_MAJOR[key], 0)


def key_from_signature(sharps: int, mode: int) -> int | None:
    """Key index of a key-signature meta event, or None when it is out of range."""
    if not -7 <= sharps <= 7 or mode not in (0, 1):
        return None
    return (7 * sharps + (9 if mode else 0)) % 12 + 12 * mode


def parse_key(value) -> int:
    """Key index 0..23 from an index, a token-style name ("Ebm", "F#") or words ("D minor",
    "E flat major", "c# minor")."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < 24:
            return value
        raise CodecError(f"key {value!r}: expected 0..23")
    if not isinstance(value, str):
        raise CodecError(f"key {value!r}: expected a name such as 'D minor' or 'Eb'")
    text = value.strip().lower().replace("♯", "#").replace("♭", "b")
    m = re.fullmatch(r"([a-g])\s*(#|b|sharp|flat|-sharp|-flat)?\s*(m|min|minor|maj|major)?",
                     text)
    if not m:
        raise CodecError(f"key {value!r}: expected a name such as 'D minor', 'Eb major' or "
                         "'F#m'")
    pc = _PITCH_CLASS[m.group(1)]
    acc = m.group(2) or ""
    pc = (pc + (1 if "#" in acc or "sharp" in acc else -1 if acc else 0)) % 12
    minor = (m.group(3) or "") in ("m", "min", "minor")
    return pc + 12 * minor


# ------------------------------------------------------------------------------------ meters
def parse_meter(value) -> tuple[int, int]:
    """(numerator, denominator) from "6/8" or a pair; the denominator a power of two."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
        pair = (int(m.group(1)), int(m.group(2))) if m else None
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        pair = (value[0], value[1])
    else:
        pair = None
    if (pair is None or not all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
            or not 1 <= pair[0] <= 64 or pair[1] not in (1, 2, 4, 8, 16, 32, 64)):
        raise CodecError(f"time signature {value!r}: expected 'N/D' with N in 1..64 and D a "
                         "power of two up to 64")
    return int(pair[0]), int(pair[1])


def meter_name(meter: tuple[int, int]) -> str:
    return f"{meter[0]}/{meter[1]}"


def bar_quarters(meter: tuple[int, int]) -> Fraction:
    """Length of a bar in quarter notes."""
    return Fraction(4 * meter[0], meter[1])
