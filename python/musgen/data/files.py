"""Finding a corpus's MIDI files, and the split of each file (by folder, else seeded by content;
see ``musgen.data.format`` for why)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .format import MIDI_SUFFIXES, SPLIT_FOLDERS, SPLITS, DatasetError

__all__ = ["find_midi_files", "folder_split", "seeded_split", "check_split", "midi_relpaths"]


def midi_relpaths(root: str) -> list[str]:
    """POSIX paths, relative to the folder ``root``, of every MIDI file below it, sorted.

    A plain scandir walk on strings: corpora have hundreds of thousands of files and Path
    objects per entry cost more than the listing itself. Hidden entries are skipped; symlinked
    folders are not followed (no cycles), symlinked files are.
    """
    found: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel) if rel else root) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                sub = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append(sub)
                elif entry.name.lower().endswith(MIDI_SUFFIXES) and entry.is_file():
                    found.append(sub)
    found.sort()
    return found


def find_midi_files(root: str | os.PathLike) -> list[Path]:
    """Every MIDI file (.mid .midi .rmi .kar, any case) under ``root``, sorted by relative path.

    Sorting by the POSIX relative path (not by directory listing order) makes the result the
    same on every file system. A file given as ``root`` is returned alone.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DatasetError(f"corpus {str(root)!r}: no such folder or file")
    return [root / rel for rel in midi_relpaths(str(root))]


def folder_split(relpath: str, root_name: str = "") -> str | None:
    """The split a folder in ``relpath`` names (innermost wins), else the corpus root, else None."""
    parts = [root_name] + relpath.split("/")[:-1]
    for part in reversed(parts):
        split = SPLIT_FOLDERS.get(part.lower())
        if split is not None:
            return split
    return None


def _split_key(seed: int, sha1: str) -> bytes:
    """The keyed hash that orders pieces for the seeded split (see the module docstring)."""
    return hashlib.sha1(f"musgen.split:{int(seed)}:{sha1}".encode()).digest()


def _split_counts(n: int, ratios: Sequence[float]) -> list[int]:
    """Exact piece counts per split: largest remainders, and one piece for every non-zero
    ratio when there are enough pieces (a 10-file corpus still gets a valid and a test piece)."""
    want = [n * r for r in ratios]
    counts = [int(w) for w in want]
    order = sorted(range(len(ratios)), key=lambda i: (want[i] - counts[i], -i), reverse=True)
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    if n >= sum(1 for r in ratios if r > 0):
        for i, r in enumerate(ratios):
            if r > 0 and counts[i] == 0:
                donor = max(range(len(counts)), key=lambda j: counts[j])
                counts[donor] -= 1
                counts[i] += 1
    return counts


def seeded_split(keys: Sequence[str], seed: int,
                 ratios: Sequence[float] = (0.8, 0.1, 0.1)) -> list[str]:
    """The split of each piece, from its key (the file's sha1) and ``seed``: pieces ordered by
    a keyed hash, cut at exact counts (see the module docstring for why)."""
    ratios = check_split(ratios)
    order = sorted(range(len(keys)), key=lambda i: (_split_key(seed, keys[i]), i))
    bounds = np.cumsum(_split_counts(len(keys), ratios))
    out = [""] * len(keys)
    for rank, i in enumerate(order):
        out[i] = SPLITS[int(np.searchsorted(bounds, rank, side="right"))]
    return out


def check_split(split) -> tuple[float, float, float]:
    try:
        ratios = tuple(float(x) for x in split)
    except (TypeError, ValueError):
        raise DatasetError(f"split={split!r}: expected three numbers (train, valid, test)"
                           ) from None
    if len(ratios) != 3 or any(not np.isfinite(r) or r < 0 for r in ratios) or sum(ratios) <= 0:
        raise DatasetError(f"split={split!r}: expected three non-negative numbers (train, valid, "
                           "test) with a positive sum")
    total = sum(ratios)
    return tuple(r / total for r in ratios)  # type: ignore[return-value]
