"""The dataset folder format, defined once here (``prepare`` writes it; ``Dataset``, training and
evaluation read it).

A dataset folder holds:

* ``dataset.json``  -- ``{"format": "musgen.dataset", "format_version": 2, "codec": {...},
  "seed", "split": {...}, "splits": {name: {"pieces", "tokens", "notes"}}, "sources": [...],
  "files": {...}, "totals": {...}}``
* ``tokens.npy``    -- int32 [total_tokens], every kept piece's tokens (BOS ... EOS) concatenated
  in piece order; open it memory-mapped (``np.load(..., mmap_mode="r")``).
* ``pieces.jsonl``  -- one JSON object per piece, in token order: ``index``, ``source`` (corpus
  name, see ``dataset.json["sources"]``), ``path`` (POSIX path relative to that corpus), ``sha1``
  (of the file bytes), ``split`` (train/valid/test), ``split_by`` (folder/seed), ``offset`` and
  ``length`` (into ``tokens.npy``, in tokens), ``n_notes`` (notes kept: drums only with
  ``keep_drums``), ``note_offset`` (into the paper features); since format_version 2 also
  ``style`` (the corpus's style label) and, for codec version 2, the piece's conditions: ``key``
  ("C".."Bm", see ``codec.names.KEY_NAMES``), ``density`` (bin), ``programs`` (one per part,
  128 = drums), ``tempo_bpm`` and ``time_signature``.
* ``paper.npy``     -- only in datasets prepared with ``paper_features=True``
  (``dataset.json["options"]["paper_features"]``): float32 [total_notes, 3], the paper preset's
  per-note features (pitch, velocity, seconds since the previous onset), pieces concatenated in
  the same order. Other datasets compute them on demand from their source files, checked
  against each piece's sha1 (``Dataset.paper_features``): only the ``paper`` preset reads them,
  and stored they were about half of a dataset's bytes.
* ``quarantine.tsv`` -- ``path<TAB>reason`` for every file found but not kept (header row first).
* ``recovered.tsv`` -- ``path<TAB>warning`` for kept files the reader recovered from damage
  (truncated track, missing End-of-Track, ...): one row per MidiWarning; and one row
  ("encode: ...") per file whose long silences, long notes or extra parts encode shortened.

Versions. format_version 1 (before styles and conditions) still opens: its pieces have no
``style`` and no conditions (None).

Splits. A file under a folder named ``train``, ``valid``/``validation`` or ``test`` (any
component of its path below the corpus root, or the corpus root's own name; the innermost one
wins) goes to that split. The other files are split by piece, never by window, with a seeded
keyed hash of the file's CONTENT: the pieces are ordered by ``sha1(seed, file sha1)`` and the
first 80 % (``split``) go to train, the next 10 % to valid, the rest to test. Why a keyed hash
rather than a shuffled list: the position of one file in that order does not depend on which
other files exist, so adding or removing files moves at most one file per split boundary instead
of reshuffling everything (a grown corpus keeps almost all of its old test set), and renaming or
moving a file, or listing corpora in another order, never changes its split. Rank-based cut
points (rather than a per-file threshold) keep the split sizes exact on small corpora.

Quarantine (each file found but not kept, and why): ``unreadable`` (the MidiError text),
``no_notes`` (fewer than ``min_notes`` notes after drums are removed), ``too_long`` (more than
``max_tokens`` tokens), ``duplicate`` (same bytes as a file kept earlier; the first in corpus
order, then sorted path order, is kept, so identical files never land in two splits).
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import MusgenError

__all__ = ["FORMAT", "FORMAT_VERSION", "READABLE_VERSIONS", "SPLITS", "MIDI_SUFFIXES",
           "SPLIT_FOLDERS", "DatasetError",
           "Piece", "piece_field"]

FORMAT = "musgen.dataset"
FORMAT_VERSION = 2
#: Dataset format versions this musgen opens.
READABLE_VERSIONS = (1, 2)
SPLITS = ("train", "valid", "test")
MIDI_SUFFIXES = (".mid", ".midi", ".rmi", ".kar")
#: folder names that put a file into a split (compared case-insensitively)
SPLIT_FOLDERS = {"train": "train", "valid": "valid", "validation": "valid", "test": "test"}
INFO_NAME = "dataset.json"
TOKENS_NAME = "tokens.npy"
PIECES_NAME = "pieces.jsonl"
PAPER_NAME = "paper.npy"
QUARANTINE_NAME = "quarantine.tsv"
RECOVERED_NAME = "recovered.tsv"
DRUM_CHANNEL = 9  # MIDI channel 10, General MIDI percussion
_CHUNK_FILES = 256  # files read and encoded per round: bounds memory on big corpora


class DatasetError(MusgenError, ValueError):
    """A dataset folder is missing, damaged or of another format, or ``prepare`` was misused."""


def piece_field(piece, name: str):
    """A field of one ``Dataset.pieces`` entry: a Piece, a dict, or any record-like object
    (training and evaluation accept small stand-ins for a Dataset)."""
    if isinstance(piece, dict):
        return piece[name]
    try:
        return piece[name]
    except (TypeError, KeyError, IndexError, ValueError):
        return getattr(piece, name)


class Piece(NamedTuple):
    """One kept piece: where its tokens and note features live, where it came from, and its
    conditions (None where the dataset's format or codec has none)."""

    index: int
    source: str
    path: str
    sha1: str
    split: str
    split_by: str
    offset: int
    length: int
    n_notes: int
    note_offset: int
    style: str | None = None
    key: str | None = None
    density: int | None = None
    programs: list | None = None
    tempo_bpm: float | None = None
    time_signature: str | None = None
