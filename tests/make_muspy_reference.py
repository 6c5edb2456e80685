"""Make MusPy's values of the features musgen shares with it (needs ``pip install muspy``; the
tests that read the values do not).

    python tests/make_muspy_reference.py [--data PATH]   # PATH: the folder holding corpora/

For every shipped test file (the JSB chorales of ``tests/data/corpus_small`` and jazz-soft files
with notes) and, with ``--data``, for some files of the big corpora (JSB 16th-note SATB, POP909,
the music21 Bach chorales, Nottingham), MusPy computes ``pitch_range``, ``n_pitches_used``,
``pitch_class_entropy``, ``scale_consistency`` and
``groove_consistency(music.adjust_resolution(12), 12 x beats per bar)`` (the bar of the first
time signature, 4/4 without one; the notes only: MusPy would also count lyrics and annotations
after the last note as empty bars). They go to ``tests/data/eval/muspy_reference.json``, keyed by
the path under ``tests/data`` or ``corpus:<path under corpora/>``; ``has_drums`` marks files
with channel-10 notes, where MusPy's groove counts drum onsets and musgen's does not.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
OUT = DATA / "eval" / "muspy_reference.json"
STEPS_PER_BEAT = 12


def shipped_files() -> list:
    files = sorted((DATA / "corpus_small").rglob("*.mid"))
    jazz = DATA / "midi" / "jazzsoft_test_midi_files"
    files += [jazz / name for name in (
        "test-c-major-scale.mid", "test-multichannel-chords-0.mid",
        "test-multichannel-chords-1.mid", "test-multichannel-chords-2.mid",
        "test-multichannel-chords-3.mid", "test-karaoke-kar.mid", "test-2-tracks-type-1.mid",
        "test-all-gm-sounds.mid")]
    return files


def corpus_files(root: Path) -> list:
    corpora = root / "corpora"
    picks = [sorted((corpora / "jsb_chorales" / "separated_16th" / "test").glob("*.mid"))[:20],
             sorted((corpora / "pop909").glob("*/*.mid"))[:20],
             sorted((corpora / "music21_bach").rglob("*.mid"))[:10],
             sorted((corpora / "nottingham").glob("*.mid"))[:10]]
    return [f for group in picks for f in group]


def muspy_values(path: Path) -> dict:
    import muspy

    music = muspy.read_midi(str(path))
    has_drums = any(t.is_drum and t.notes for t in music.tracks)
    if music.time_signatures:
        ts = sorted(music.time_signatures, key=lambda t: t.time)[0]
        num, den = ts.numerator, ts.denominator
    else:
        num, den = 4, 4
    coarse = music.deepcopy().adjust_resolution(STEPS_PER_BEAT)
    for track in coarse.tracks:
        # MusPy's groove spans get_end_time(), which counts lyrics and annotations too (POP909
        # has events after its last note); musgen's piece ends with its last note
        track.lyrics, track.annotations, track.chords = [], [], []
    values = {
        "pitch_range": muspy.pitch_range(music),
        "n_pitches": muspy.n_pitches_used(music),
        "pitch_class_entropy": muspy.pitch_class_entropy(music),
        "scale_consistency": muspy.scale_consistency(music),
        "groove_consistency": muspy.groove_consistency(
            coarse, round(STEPS_PER_BEAT * num * 4 / den)),
        "has_drums": has_drums,
    }
    return {k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in values.items()}


def main() -> None:
    import muspy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="the folder holding corpora/")
    args = ap.parse_args()
    out = {"muspy_version": muspy.__version__, "steps_per_beat": STEPS_PER_BEAT, "files": {}}
    for f in shipped_files():
        out["files"][f.relative_to(DATA).as_posix()] = muspy_values(f)
    if args.data is not None:
        for f in corpus_files(args.data):
            out["files"]["corpus:" + f.relative_to(args.data / "corpora").as_posix()] = \
                muspy_values(f)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}: {len(out['files'])} files")


if __name__ == "__main__":
    main()
