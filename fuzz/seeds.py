"""Seed inputs for every fuzz target, made from the openly licensed MIDI files in tests/data
(their licences are in tests/data/midi/README.md and tests/data/corpus_small/README.md) and a
few synthetic files written here, in each harness's input format (see README.md). Usage: ``python fuzz/seeds.py OUT_DIR`` writes
``OUT_DIR/<target>/<name>``; needs musgen installed."""

from __future__ import annotations

import hashlib
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from configs import CONFIGS, CONFIGS_V2, codec_config, codec_config_v2  # noqa: E402

DATA = HERE.parent / "tests" / "data"
TARGETS = ("midi_read", "codec_encode", "codec_decode", "codec_decode_v2", "grammar_walk")


def midi_files() -> list[Path]:
    return sorted(p for p in DATA.rglob("*") if p.suffix.lower() in (".mid", ".midi", ".rmi",
                                                                       ".kar"))


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _smf(ticks_per_beat: int, events: list) -> bytes:
    """A one-track format-0 file of (delta ticks, event bytes) pairs."""
    body = b"".join(_vlq(d) + e for d, e in events) + b"\x00\xff\x2f\x00"
    return (b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
            + ticks_per_beat.to_bytes(2, "big") + b"MTrk" + len(body).to_bytes(4, "big") + body)


def synthetic() -> dict:
    """Files that reach the encoder's limits, which the test files do not: a gap of 2**28 - 1
    ticks at one tick per beat (more tokens than an encoder may write), and a tempo map that
    changes under held notes (several time-base segments on millisecond grids)."""
    tempo = b"\xff\x51\x03"
    return {
        "huge_gap": _smf(1, [(0, b"\x90\x3c\x40"), (1, b"\x80\x3c\x00"),
                             (0x0FFFFFFF, b"\x90\x3d\x40"), (1, b"\x80\x3d\x00")]),
        "tempo_map": _smf(96, [(0, tempo + (500000).to_bytes(3, "big")), (0, b"\x90\x3c\x50"),
                               (48, tempo + (250000).to_bytes(3, "big")), (0, b"\x91\x40\x50"),
                               (48, tempo + (1).to_bytes(3, "big")), (48, b"\x80\x3c\x00"),
                               (0, tempo + (0xFFFFFF).to_bytes(3, "big")),
                               (96, b"\x81\x40\x00")]),
    }


def walk_choices(tokens, grammar) -> bytes:
    """The grammar_walk input that makes the harness pick ``tokens``: per token, its index
    among the non-PAD tokens its state allows."""
    out = bytearray()
    state = grammar.start_state
    pad = grammar.config.pad_id
    for t in tokens.tolist():
        allowed = [v for v in np.flatnonzero(grammar.table[state] >= 0).tolist() if v != pad]
        out.append(allowed.index(t) % 256)
        state = int(grammar.table[state, t])
    return bytes(out)


def encodings(data: bytes, index: int, config=None):
    from musgen import codec, midi

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # damage recovered, silences shortened: seeds anyway
            score = midi.read_bytes(data)
            return codec.encode(score, config or codec_config(index))
    except (ValueError, OSError):  # unreadable or unencodable: a seed for the reader only
        return None


def write(out: Path, target: str, data: bytes) -> None:
    folder = out / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main(out: str) -> None:
    from musgen import codec

    out_dir = Path(out)
    files = [(p, p.read_bytes()) for p in midi_files()] + list(synthetic().items())
    for path, data in files:
        write(out_dir, "midi_read", data)
        for i in range(len(CONFIGS)):
            write(out_dir, "codec_encode", bytes([i]) + data)
            tokens = encodings(data, i)
            if tokens is None or len(tokens) > 4096:  # short seeds: libFuzzer mutates faster
                continue
            write(out_dir, "codec_decode", bytes([i]) + tokens.astype("<i2").tobytes())
            g = codec.grammar(codec_config(i))
            choices = walk_choices(tokens, g)
            if len(choices) <= 4096:
                write(out_dir, "grammar_walk", bytes([i]) + choices)
        for i in range(len(CONFIGS_V2)):  # version 2: raw tokens, and the walk choosing them
            config = codec_config_v2(i)
            tokens = encodings(data, i, config)
            if tokens is None or len(tokens) > 4096:
                continue
            write(out_dir, "codec_decode_v2", bytes([i]) + tokens.astype("<i2").tobytes())
            choices = walk_choices(tokens, codec.grammar(config))
            if len(choices) <= 4096:
                write(out_dir, "codec_decode_v2", bytes([0x80 | i]) + choices)
    for target in TARGETS:
        n = len(list((out_dir / target).iterdir())) if (out_dir / target).is_dir() else 0
        print(f"{target}: {n} seeds")


if __name__ == "__main__":
    main(sys.argv[1])
