"""Tokenized datasets: ``prepare`` turns MIDI corpora into a dataset folder; ``Dataset.open``
maps one into memory.

A dataset folder holds (one definition of the format, read by training and evaluation):

* ``dataset.json``  -- ``{"format": "musgen.dataset", "format_version": 1, "codec": {...},
  "seed", "split": {...}, "splits": {name: {"pieces", "tokens", "notes"}}, "sources": [...],
  "files": {...}, "totals": {...}}``
* ``tokens.npy``    -- int32 [total_tokens], every kept piece's tokens (BOS ... EOS) concatenated
  in piece order; open it memory-mapped (``np.load(..., mmap_mode="r")``).
* ``pieces.jsonl``  -- one JSON object per piece, in token order: ``index``, ``source`` (corpus
  name, see ``dataset.json["sources"]``), ``path`` (POSIX path relative to that corpus), ``sha1``
  (of the file bytes), ``split`` (train/valid/test), ``split_by`` (folder/seed), ``offset`` and
  ``length`` (into ``tokens.npy``, in tokens), ``n_notes``, ``note_offset`` (into ``paper.npy``).
* ``paper.npy``     -- float32 [total_notes, 3], the paper preset's per-note features (pitch,
  velocity, seconds since the previous onset), pieces concatenated in the same order.
* ``quarantine.tsv`` -- ``path<TAB>reason`` for every file found but not kept (header row first).
* ``recovered.tsv`` -- ``path<TAB>warning`` for kept files the reader recovered from damage
  (truncated track, missing End-of-Track, ...): one row per MidiWarning.

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

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from ._progress import Progress
from .errors import MidiWarning, MusgenError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SPLITS",
    "MIDI_SUFFIXES",
    "DatasetError",
    "Piece",
    "Dataset",
    "prepare",
    "find_midi_files",
    "folder_split",
    "seeded_split",
    "format_summary",
]

FORMAT = "musgen.dataset"
FORMAT_VERSION = 1
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
    """One kept piece: where its tokens and note features live and where it came from."""

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


# ----------------------------------------------------------------------------- file discovery
def _midi_relpaths(root: str) -> list[str]:
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
    return [root / rel for rel in _midi_relpaths(str(root))]


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
    ratios = _check_split(ratios)
    order = sorted(range(len(keys)), key=lambda i: (_split_key(seed, keys[i]), i))
    bounds = np.cumsum(_split_counts(len(keys), ratios))
    out = [""] * len(keys)
    for rank, i in enumerate(order):
        out[i] = SPLITS[int(np.searchsorted(bounds, rank, side="right"))]
    return out


def _check_split(split) -> tuple[float, float, float]:
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


# ----------------------------------------------------------------------------- writing
def _clean_field(text: str) -> str:
    """One TSV field: no tabs or line breaks (MidiError texts may quote file bytes)."""
    return " ".join(str(text).replace("\t", " ").splitlines()).strip()


class _NpyAppender:
    """Append rows to a .npy file whose length is unknown until the end.

    NumPy pads every header with room for the longest possible first dimension, so the real
    header is written over the placeholder in place: no second copy of a large token file.
    """

    def __init__(self, path: Path, dtype, row_shape: tuple = ()):
        self.path = path
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(row_shape)
        self.rows = 0
        self._file = open(path, "wb")
        self._header_len = self._write_header()

    def _write_header(self) -> int:
        self._file.seek(0)
        np.lib.format.write_array_header_1_0(
            self._file,
            {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
             "shape": (self.rows, *self.row_shape)},
        )
        return self._file.tell()

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"{self.path.name}: row shape {rows.shape[1:]}, expected "
                             f"{self.row_shape}")
        self._file.write(rows.tobytes())
        self.rows += rows.shape[0]

    def close(self) -> None:
        end = self._file.tell()
        if self._write_header() != self._header_len:  # pragma: no cover - numpy's padding rule
            raise DatasetError(f"{self.path.name}: .npy header grew; cannot finish in place")
        self._file.seek(end)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


class _DatasetWriter:
    """Streams pieces into a hidden folder beside ``output`` and renames it into place at the end,
    so a killed ``prepare`` never leaves a half-written dataset under the output name."""

    def __init__(self, output: str | os.PathLike):
        self.output = Path(output)
        if self.output.exists() and not self.output.is_dir():
            raise DatasetError(f"output {str(self.output)!r} exists and is not a folder")
        if self.output.is_dir() and any(self.output.iterdir()) and not (
            self.output / INFO_NAME
        ).is_file():
            raise DatasetError(f"output {str(self.output)!r} is a non-empty folder that is not a "
                               "musgen dataset; refusing to replace it")
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.", suffix=".tmp",
                                         dir=self.output.parent))
        self._tokens = _NpyAppender(self.tmp / TOKENS_NAME, np.int32)
        self._paper = _NpyAppender(self.tmp / PAPER_NAME, np.float32, (3,))
        self._pieces = open(self.tmp / PIECES_NAME, "w", encoding="utf-8")
        self._quarantine = open(self.tmp / QUARANTINE_NAME, "w", encoding="utf-8")
        self._quarantine.write("path\treason\n")
        self._recovered = open(self.tmp / RECOVERED_NAME, "w", encoding="utf-8")
        self._recovered.write("path\twarning\n")
        self.pieces: list[dict] = []

    def add(self, meta: dict, tokens: np.ndarray, paper: np.ndarray) -> dict:
        tokens = np.asarray(tokens)
        paper = np.asarray(paper, dtype=np.float32).reshape(-1, 3)
        if tokens.ndim != 1:
            raise DatasetError(f"{meta.get('path')}: tokens must be 1-D, got {tokens.shape}")
        row = dict(meta)
        row["index"] = len(self.pieces)
        row["offset"] = self._tokens.rows
        row["length"] = int(tokens.shape[0])
        row["n_notes"] = int(paper.shape[0])
        row["note_offset"] = self._paper.rows
        self._tokens.append(tokens)
        self._paper.append(paper)
        self.pieces.append(row)
        return row

    def quarantine(self, path: str, reason: str) -> None:
        self._quarantine.write(f"{_clean_field(path)}\t{_clean_field(reason)}\n")

    def recovered(self, path: str, warning: str) -> None:
        self._recovered.write(f"{_clean_field(path)}\t{_clean_field(warning)}\n")

    def finish(self, info: dict) -> Path:
        self._tokens.close()
        self._paper.close()
        self._quarantine.close()
        self._recovered.close()
        keys = ("index", "source", "path", "sha1", "split", "split_by", "offset", "length",
                "n_notes", "note_offset")
        for row in self.pieces:
            self._pieces.write(json.dumps({k: row.get(k) for k in keys}, ensure_ascii=False)
                               + "\n")
        self._pieces.close()
        info = {"format": FORMAT, "format_version": FORMAT_VERSION, **info}
        (self.tmp / INFO_NAME).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
        os.chmod(self.tmp, 0o755)  # mkdtemp makes it 0700
        old = None
        if self.output.exists():  # an earlier dataset (checked in __init__): swap it out
            old = self.output.with_name(self.tmp.name + ".old")
            os.replace(self.output, old)
        os.replace(self.tmp, self.output)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.output

    def abort(self) -> None:
        for f in (self._tokens._file, self._paper._file, self._pieces, self._quarantine,
                  self._recovered):
            try:
                f.close()
            except Exception:  # pragma: no cover - best effort cleanup
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- reading
def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc


class Dataset:
    """A prepared dataset, tokens memory-mapped (opening is cheap whatever the size).

    Attributes
    ----------
    path : Path
    info : dict
        ``dataset.json``.
    tokens : np.memmap of int32 [total_tokens]
        All pieces concatenated; piece ``i`` is ``tokens[offsets[i]:offsets[i] + lengths[i]]``.
    pieces : list of Piece
    offsets, lengths : int64 [n_pieces]
        Token offset and length of each piece.
    paper_features : np.memmap of float32 [total_notes, 3]
        Per note: pitch, velocity, seconds since the previous onset.
    piece_note_offsets : int64 [n_pieces + 1]
        Piece ``i``'s notes are ``paper_features[piece_note_offsets[i]:piece_note_offsets[i+1]]``.
    """

    def __init__(self, path: Path, info: dict, tokens: np.ndarray, pieces: list[Piece],
                 paper: np.ndarray):
        self.path = path
        self.info = info
        self.tokens = tokens
        self.pieces = pieces
        self.paper_features = paper
        self.offsets = np.array([p.offset for p in pieces], dtype=np.int64)
        self.lengths = np.array([p.length for p in pieces], dtype=np.int64)
        notes = np.array([p.n_notes for p in pieces], dtype=np.int64)
        self.piece_note_offsets = np.concatenate([[0], np.cumsum(notes)]).astype(np.int64)
        self._split_of = np.array([p.split for p in pieces], dtype=object)
        self._codec = None

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Dataset":
        """Open a dataset folder; raise DatasetError naming the file if it is damaged."""
        path = Path(path)
        if not (path / INFO_NAME).is_file():
            raise DatasetError(f"{path}: not a musgen dataset (no {INFO_NAME}); make one with "
                               "`musgen prepare`")
        info = _read_json(path / INFO_NAME)
        found = info.get("format") if isinstance(info, dict) else type(info).__name__
        if found != FORMAT:
            raise DatasetError(f"{path / INFO_NAME}: format is {found!r}, expected {FORMAT!r}")
        if info.get("format_version") != FORMAT_VERSION:
            raise DatasetError(f"{path / INFO_NAME}: format_version {info.get('format_version')!r}"
                               f", this musgen reads version {FORMAT_VERSION}")
        tokens = cls._load_array(path / TOKENS_NAME, np.int32, 1)
        paper = cls._load_array(path / PAPER_NAME, np.float32, 2)
        if paper.shape[1:] != (3,):
            raise DatasetError(f"{path / PAPER_NAME}: shape {paper.shape}, expected [notes, 3]")
        pieces = []
        try:
            lines = (path / PIECES_NAME).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise DatasetError(f"{path / PIECES_NAME}: cannot read ({exc.strerror or exc})"
                               ) from exc
        tok_end = note_end = 0
        for lineno, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
                piece = Piece(**{f: row[f] for f in Piece._fields})
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DatasetError(f"{path / PIECES_NAME}:{lineno}: bad piece record ({exc!r})"
                                   ) from None
            if (piece.index != len(pieces) or piece.offset != tok_end
                    or piece.note_offset != note_end or piece.length < 1
                    or piece.split not in SPLITS):
                raise DatasetError(f"{path / PIECES_NAME}:{lineno}: piece {piece.index} does not "
                                   f"follow piece {len(pieces) - 1} (offset {piece.offset}, "
                                   f"expected {tok_end}; split {piece.split!r})")
            tok_end += piece.length
            note_end += piece.n_notes
            pieces.append(piece)
        if tok_end != tokens.shape[0] or note_end != paper.shape[0]:
            raise DatasetError(f"{path}: {PIECES_NAME} describes {tok_end} tokens and {note_end} "
                               f"notes, but {TOKENS_NAME} has {tokens.shape[0]} and {PAPER_NAME} "
                               f"has {paper.shape[0]}")
        return cls(path, info, tokens, pieces, paper)

    @staticmethod
    def _load_array(path: Path, dtype, ndim: int) -> np.ndarray:
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: cannot map ({exc})") from exc
        if arr.dtype != np.dtype(dtype) or arr.ndim != ndim:
            raise DatasetError(f"{path}: {arr.dtype} {arr.shape}, expected {np.dtype(dtype)} "
                               f"with {ndim} dimension(s)")
        return arr

    @property
    def codec(self):
        """The CodecConfig the tokens were made with (imported on first use)."""
        if self._codec is None:
            from .codec import CodecConfig

            self._codec = CodecConfig.from_dict(self.info["codec"])
        return self._codec

    def __len__(self) -> int:
        return len(self.pieces)

    def __repr__(self) -> str:
        counts = {s: int((self._split_of == s).sum()) for s in SPLITS}
        return (f"Dataset({str(self.path)!r}, {len(self.pieces)} pieces {counts}, "
                f"{self.tokens.shape[0]} tokens)")

    def split_indices(self, name: str) -> np.ndarray:
        """Indices (int64, ascending) of the pieces in split ``name`` (train/valid/test)."""
        split = SPLIT_FOLDERS.get(str(name).lower())
        if split is None:
            raise DatasetError(f"split {name!r}: expected one of {', '.join(SPLITS)}")
        return np.flatnonzero(self._split_of == split).astype(np.int64)

    def piece_tokens(self, i: int) -> np.ndarray:
        """Piece ``i``'s tokens, int32 [length] (a view into the memory map)."""
        p = self.pieces[i]
        return self.tokens[p.offset:p.offset + p.length]

    def piece_paper_features(self, i: int) -> np.ndarray:
        """Piece ``i``'s note features, float32 [n_notes, 3]."""
        return self.paper_features[self.piece_note_offsets[i]:self.piece_note_offsets[i + 1]]


# ----------------------------------------------------------------------------- prepare
def _sha1_file(path: str) -> tuple[str, str | None]:
    """(sha1 hex, None) or ("", error text) when the file cannot be read at all."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha1(f.read()).hexdigest(), None
    except OSError as exc:
        return "", f"cannot read the file ({exc.strerror or exc})"


def _warnings_by_file(caught, paths: list[str]) -> dict[str, list[str]]:
    """MidiWarning texts (``"<path>: <what>"``) grouped by file; other warnings re-emitted."""
    out: dict[str, list[str]] = {}
    known = set(paths)
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, MidiWarning):
            # paths may themselves hold ": "; take the longest known prefix
            match = [p for p in known if text.startswith(p + ": ")]
            if match:
                p = max(match, key=len)
                out.setdefault(p, []).append(text[len(p) + 2:])
                continue
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out


def _midi_error_text(exc) -> str:
    """A MidiError without its path (the row names the file): ``byte N: what was wrong``."""
    reason = getattr(exc, "reason", None) or str(exc)
    offset = getattr(exc, "offset", None)
    return reason if offset is None else f"byte {offset}: {reason}"


def _without_drums(score):
    notes = score.notes
    drums = notes["channel"] == DRUM_CHANNEL
    if not drums.any():
        return score
    return dataclasses.replace(score, notes=notes[~drums])


def _source_names(roots: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for root in roots:
        base = root.resolve().name or "corpus"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def _encode_all(codec_mod, scores, config, threads, backend):
    """encode_many when the codec has it (C++ threads), else one encode per score."""
    if hasattr(codec_mod, "encode_many"):
        return list(codec_mod.encode_many(scores, config, threads=threads, backend=backend))
    return [codec_mod.encode(s, config, backend=backend) for s in scores]


def prepare(
    corpora: str | os.PathLike | Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    config=None,
    seed: int = 0,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    threads: int | None = None,
    max_tokens: int | None = None,
    min_notes: int = 1,
    keep_drums: bool | None = None,
    quiet: bool = False,
    backend: str | None = None,
) -> dict:
    """Read every MIDI file under ``corpora``, encode it and write a dataset folder at ``output``.

    Parameters
    ----------
    corpora : path or list of paths
        Folders (searched recursively for .mid .midi .rmi .kar, any case) or single files.
    output : path
        The dataset folder; written atomically (an earlier dataset there is replaced).
    config : CodecConfig, optional
        Tokenization; ``codec.default_config()`` when None. Saved in ``dataset.json``.
    seed : int
        Keys the split of files that are not under a train/valid/test folder.
    split : (train, valid, test)
        Ratios of the seeded split (normalized to sum to 1).
    threads : int, optional
        Reader and encoder threads; None uses every core.
    max_tokens : int, optional
        Files encoding to more tokens are quarantined (``too_long``).
    min_notes : int
        Files with fewer notes (after drums are removed) are quarantined (``no_notes``).
    keep_drums : bool, optional
        Keep channel-10 percussion as DrumPitch tokens; None follows ``config.keep_drums``
        (False by default: drums are dropped before anything is counted or encoded).
    quiet : bool
        No progress bar.
    backend : str, optional
        "cpp" or "python" for reading and encoding (default: MUSGEN_BACKEND / auto).

    Returns
    -------
    dict
        Summary: ``output``, ``files`` (found, kept, skipped per reason), ``splits`` (pieces,
        tokens, notes per split), ``seconds``.
    """
    from . import codec as codec_mod
    from . import midi

    t0 = time.perf_counter()
    if isinstance(corpora, (str, os.PathLike)):
        corpora = [corpora]
    roots = [Path(c) for c in corpora]
    if not roots:
        raise DatasetError("prepare: no corpus given")
    ratios = _check_split(split)
    if max_tokens is not None and int(max_tokens) < 2:
        raise DatasetError(f"max_tokens={max_tokens!r}: expected at least 2 (BOS and EOS)")
    if threads is not None and int(threads) < 1:
        raise DatasetError(f"threads={threads!r}: expected a positive number or None")
    config = config if config is not None else codec_mod.default_config()
    if keep_drums is not None and bool(keep_drums) != config.keep_drums:
        config = dataclasses.replace(config, keep_drums=bool(keep_drums))
    keep_drums = config.keep_drums
    names = _source_names(roots)
    # a corpus root named train/valid/test puts all its files there (a file given alone: no)
    root_names = {n: "" if r.is_file() else r.resolve().name for n, r in zip(names, roots)}

    # (source name, root, file path, relative POSIX path), corpus order then sorted path order
    entries = []
    for name, root in zip(names, roots):
        if root.is_file():
            entries.append((name, root, str(root), root.name))
        elif root.is_dir():
            entries.extend((name, root, os.path.join(root, rel), rel)
                           for rel in _midi_relpaths(str(root)))
        else:
            raise DatasetError(f"corpus {str(root)!r}: no such folder or file")
    n_found = len(entries)

    writer = _DatasetWriter(output)
    reasons: Counter = Counter()
    kept: list[dict] = []
    try:
        def skip(label: str, reason: str, detail: str) -> None:
            reasons[reason] += 1
            writer.quarantine(label, f"{reason}: {detail}")

        seen: dict[str, str] = {}
        n_recovered = 0
        with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool, \
                Progress(n_found, "prepare", quiet=quiet, unit="files") as bar:
            for lo in range(0, n_found, _CHUNK_FILES):
                chunk = entries[lo:lo + _CHUNK_FILES]
                hashes = list(pool.map(_sha1_file, [e[2] for e in chunk]))
                todo = []
                for (name, root, f, rel), (sha1, err) in zip(chunk, hashes):
                    label = f"{name}/{rel}"
                    if err is not None:
                        skip(label, "unreadable", err)
                    elif sha1 in seen:
                        skip(label, "duplicate", f"same bytes as {seen[sha1]}")
                    else:
                        seen[sha1] = label
                        todo.append((name, root, f, rel, sha1))
                with warnings.catch_warnings(record=True) as caught:
                    # damage the reader recovered from: recorded per file, not printed
                    warnings.simplefilter("always", MidiWarning)
                    result = midi.read_many([t[2] for t in todo], threads=threads,
                                            backend=backend, on_error="skip")
                recovered = _warnings_by_file(caught, [t[2] for t in todo])
                by_path = dict(zip(result.paths, result.scores))
                errors = {str(p): e for p, e in result.errors}
                good = []
                for name, _root, f, rel, sha1 in todo:
                    label = f"{name}/{rel}"
                    score = by_path.get(f)
                    if score is None:
                        exc = errors.get(f)
                        skip(label, "unreadable", _midi_error_text(exc))
                        continue
                    for text in recovered.get(f, ()):
                        writer.recovered(label, text)
                    n_recovered += bool(recovered.get(f))
                    if not keep_drums:
                        score = _without_drums(score)
                    if score.n_notes < max(1, min_notes):
                        skip(label, "no_notes", f"{score.n_notes} notes"
                             + ("" if keep_drums else " without drums")
                             + f", need at least {max(1, min_notes)}")
                        continue
                    good.append(((name, rel, sha1, label), score))
                del result, by_path
                token_lists = _encode_all(codec_mod, [g[1] for g in good], config, threads,
                                          backend)
                for ((name, rel, sha1, label), score), tokens in zip(good, token_lists):
                    if tokens.shape[0] <= 2:  # BOS, EOS: every note was outside pitch_range
                        skip(label, "no_notes", f"none of the {score.n_notes} notes is in the "
                             f"codec's pitch range {tuple(config.pitch_range)}")
                        continue
                    if max_tokens is not None and tokens.shape[0] > max_tokens:
                        skip(label, "too_long", f"{tokens.shape[0]} tokens > max_tokens "
                             f"{max_tokens}")
                        continue
                    split_name = folder_split(rel, root_names[name])
                    meta = {"source": name, "path": rel, "sha1": sha1,
                            "split": split_name, "split_by": "folder" if split_name else "seed"}
                    kept.append(writer.add(meta, np.asarray(tokens, dtype=np.int32),
                                           codec_mod.paper_features(
                                               score, keep_drums=keep_drums)))
                bar.update(len(chunk))

        # Seeded split of the pieces no folder placed (by piece: windows never straddle splits).
        free = [p for p in kept if p["split"] is None]
        for piece, name in zip(free, seeded_split([p["sha1"] for p in free], seed, ratios)):
            piece["split"] = name

        splits = {s: {"pieces": 0, "tokens": 0, "notes": 0} for s in SPLITS}
        for p in kept:
            splits[p["split"]]["pieces"] += 1
            splits[p["split"]]["tokens"] += p["length"]
            splits[p["split"]]["notes"] += p["n_notes"]
        files = {"found": n_found, "kept": len(kept), "skipped": dict(sorted(reasons.items())),
                 "recovered": n_recovered}
        from . import __version__

        info = {
            "codec": config.to_dict(),
            "seed": int(seed),
            "split": {"ratios": list(ratios), "folder_names": sorted(SPLIT_FOLDERS),
                      "by_folder": sum(p["split_by"] == "folder" for p in kept),
                      "by_seed": len(free)},
            "splits": splits,
            "sources": [{"name": n, "path": str(r.resolve()),
                         "files": sum(e[0] == n for e in entries)} for n, r in zip(names, roots)],
            "files": files,
            "totals": {"pieces": len(kept), "tokens": sum(p["length"] for p in kept),
                       "notes": sum(p["n_notes"] for p in kept)},
            "options": {"max_tokens": max_tokens, "min_notes": int(min_notes),
                        "keep_drums": bool(keep_drums)},
            "musgen_version": __version__,
        }
        path = writer.finish(info)
    except BaseException:
        writer.abort()
        raise
    return {"output": str(path), "files": files, "splits": splits,
            "seconds": time.perf_counter() - t0}


def format_summary(summary: dict) -> str:
    """The human-readable summary ``musgen prepare`` prints."""
    f = summary["files"]
    lines = [f"dataset: {summary['output']}",
             f"files: {f['found']} found, {f['kept']} kept, "
             f"{sum(f['skipped'].values())} skipped"]
    for reason, n in f["skipped"].items():
        lines.append(f"  skipped {reason}: {n}")
    if f.get("recovered"):
        lines.append(f"  kept after recovering from damage: {f['recovered']} (recovered.tsv)")
    for name, s in summary["splits"].items():
        lines.append(f"{name:>6}: {s['pieces']} pieces, {s['tokens']} tokens, {s['notes']} notes")
    lines.append(f"time: {summary['seconds']:.2f} s")
    return "\n".join(lines)
