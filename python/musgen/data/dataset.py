"""Reading a dataset folder: ``Dataset.open`` maps the tokens into memory and checks that the
files agree with each other."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .format import (
    FORMAT,
    INFO_NAME,
    PAPER_NAME,
    PIECES_NAME,
    READABLE_VERSIONS,
    SPLIT_FOLDERS,
    SPLITS,
    TOKENS_NAME,
    DatasetError,
    Piece,
)

__all__ = ["Dataset"]


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
        if info.get("format_version") not in READABLE_VERSIONS:
            raise DatasetError(f"{path / INFO_NAME}: format_version {info.get('format_version')!r}"
                               f", this musgen reads versions "
                               f"{', '.join(map(str, READABLE_VERSIONS))}")
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
                piece = Piece(**{f: row[f] for f in Piece._fields
                                 if f in row or f not in Piece._field_defaults})
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
            from ..codec import CodecConfig

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
