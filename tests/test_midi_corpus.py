"""Opt-in (MUSGEN_DATA): every torture and corpus file read by both backends with identical
results or the same MidiError; on every file that reads, both writers give the same bytes and a
write/read round trip gives ``without_overlaps(score)``."""

from __future__ import annotations

import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from musgen import MidiWarning, _backend, midi

SUFFIXES = (".mid", ".midi", ".rmi", ".kar")
FIELDS = ("notes", "tempos", "time_signatures", "key_signatures", "programs")


def midi_files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


def read_all(paths, backend):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        res = midi.read_many(paths, threads=2, backend=backend, on_error="skip")
    assert all(issubclass(w.category, MidiWarning) for w in record)
    return res, [str(w.message) for w in record]


@pytest.mark.corpus
@pytest.mark.parametrize("folder", ["torture", "corpora"])
def test_corpus_backends_agree_and_round_trip(corpus_root, folder):
    paths = midi_files(corpus_root / folder)
    assert paths, f"no MIDI files under {corpus_root / folder}"
    backends = ["cpp", "python"] if _backend.has_cpp() else ["python"]
    results = {b: read_all(paths, b) for b in backends}
    ref, ref_warnings = results[backends[0]]
    for b in backends[1:]:
        other, other_warnings = results[b]
        assert other.paths == ref.paths
        assert [(p, e.reason, e.offset) for p, e in other.errors] == \
            [(p, e.reason, e.offset) for p, e in ref.errors]
        assert other_warnings == ref_warnings
        for path, a, c in zip(ref.paths, ref.scores, other.scores):
            assert a.equals(c), path
    reasons = Counter(e.reason.split(" (")[0] for _, e in ref.errors)
    print(f"\n{folder}: {len(paths)} files, {len(ref.paths)} read identically by "
          f"{'/'.join(backends)}, {len(ref.errors)} identical MidiErrors: {dict(reasons)}")
    if folder == "corpora":
        assert not ref.errors, ref.errors[:5]  # the corpora are real music: all must read

    if len(backends) == 2:  # the C++ writer gives the Python writer's bytes
        for path, score in zip(ref.paths, ref.scores):
            assert midi.encode(score, backend="cpp") == midi.encode(score, backend="python"), path
    with tempfile.TemporaryDirectory() as tmp:
        written = [str(Path(tmp) / f"{i}.mid") for i in range(len(ref.scores))]
        midi.write_many(ref.scores, written, threads=2)
        back, _ = read_all(written, backends[0])
        assert not back.errors and len(back.scores) == len(ref.scores)
        overlapping = 0
        for path, a, b in zip(ref.paths, ref.scores, back.scores):
            expected = midi.without_overlaps(a)
            overlapping += expected is not a
            for field in FIELDS:
                assert np.array_equal(getattr(expected, field), getattr(b, field)), (path, field)
            assert a.track_names == b.track_names, path
    print(f"{folder}: {len(ref.scores)} files written by both writers to the same bytes and "
          f"read back as without_overlaps(score) ({overlapping} held overlapping notes)")
