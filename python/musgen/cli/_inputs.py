"""MIDI inputs of the commands that take files or folders (``render``, ``plot``)."""

from __future__ import annotations

import sys
from pathlib import Path


def midi_jobs(inputs: list, suffix: str, command: str) -> list:
    """(MIDI file, output stem) for every input; folders are walked with their subfolders kept
    in the stems. Two inputs that would write the same output are an error."""
    from ..data.files import midi_relpaths

    jobs, seen = [], {}
    for name in inputs:
        src = Path(name)
        if src.is_dir():
            pairs = [(src / rel, Path(rel).with_suffix("").as_posix())
                     for rel in midi_relpaths(str(src))]
            if not pairs:
                print(f"musgen {command}: warning: no MIDI files in {src}", file=sys.stderr)
        elif src.is_file():
            pairs = [(src, src.stem)]
        else:
            raise SystemExit(f"musgen {command}: error: {name}: no such file or folder")
        for path, stem in pairs:
            if stem in seen:
                raise SystemExit(f"musgen {command}: error: {seen[stem]} and {path} would both "
                                 f"be written to {stem}.{suffix}; use separate output folders")
            seen[stem] = path
            jobs.append((path, stem))
    return jobs
