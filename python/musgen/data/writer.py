"""Writing a dataset folder: streamed into a locked staging folder beside the output, which takes
the output's place in one atomic exchange when complete (``musgen._io``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._io import StagingDir
from .format import (
    FORMAT,
    FORMAT_VERSION,
    INFO_NAME,
    PAPER_NAME,
    PIECES_NAME,
    QUARANTINE_NAME,
    RECOVERED_NAME,
    TOKENS_NAME,
    DatasetError,
    Piece,
)

_REQUIRED = ("index", "source", "path", "sha1", "split", "split_by", "offset", "length",
             "n_notes", "note_offset")

__all__ = ["DatasetWriter"]


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
        self._file.write(memoryview(rows).cast("B"))  # no copy
        self.rows += rows.shape[0]

    def close(self, fsync: bool = False) -> None:
        end = self._file.tell()
        if self._write_header() != self._header_len:  # pragma: no cover - numpy's padding rule
            raise DatasetError(f"{self.path.name}: .npy header grew; cannot finish in place")
        self._file.seek(end)
        self._file.flush()
        if fsync:
            os.fsync(self._file.fileno())
        self._file.close()


class DatasetWriter:
    """Streams pieces into a staging folder beside ``output`` that replaces it at the end, so a
    killed ``prepare`` never leaves a half-written dataset under the output name, a reader of an
    earlier dataset there sees it whole until the new one is, and the staging folders of killed
    runs are removed by the next run (``musgen._io.StagingDir``).

    ``fsync=True`` also flushes the token and feature files to the disk before the exchange, so
    the dataset survives a power cut (like ``midi.write(fsync=True)``; off by default: a
    dataset can always be prepared again, and the flush costs more than writing)."""

    def __init__(self, output: str | os.PathLike, *, paper_features: bool = False,
                 fsync: bool = False):
        self.output = Path(output)
        self.fsync = bool(fsync)
        if self.output.exists() and not self.output.is_dir():
            raise DatasetError(f"output {str(self.output)!r} exists and is not a folder")
        if self.output.is_dir() and any(self.output.iterdir()) and not (
            self.output / INFO_NAME
        ).is_file():
            raise DatasetError(f"output {str(self.output)!r} is a non-empty folder that is not a "
                               "musgen dataset; refusing to replace it")
        self._stage = StagingDir(self.output)
        self.tmp = self._stage.path
        self._tokens = _NpyAppender(self.tmp / TOKENS_NAME, np.int32)
        self._paper = (_NpyAppender(self.tmp / PAPER_NAME, np.float32, (3,)) if paper_features
                       else None)
        self._notes = 0
        self._pieces = open(self.tmp / PIECES_NAME, "w", encoding="utf-8")
        self._quarantine = open(self.tmp / QUARANTINE_NAME, "w", encoding="utf-8")
        self._quarantine.write("path\treason\n")
        self._recovered = open(self.tmp / RECOVERED_NAME, "w", encoding="utf-8")
        self._recovered.write("path\twarning\n")
        self.pieces: list[dict] = []

    def add(self, meta: dict, tokens: np.ndarray, n_notes: int,
            paper: np.ndarray | None = None) -> dict:
        """One piece: its tokens, its number of notes, and (datasets that store them) its
        paper features, float [n_notes, 3]."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 1:
            raise DatasetError(f"{meta.get('path')}: tokens must be 1-D, got {tokens.shape}")
        if (paper is not None) != (self._paper is not None):
            raise DatasetError("paper features are given exactly when the dataset stores them")
        row = dict(meta)
        row["index"] = len(self.pieces)
        row["offset"] = self._tokens.rows
        row["length"] = int(tokens.shape[0])
        row["n_notes"] = int(n_notes)
        row["note_offset"] = self._notes
        if paper is not None:
            paper = np.asarray(paper, dtype=np.float32).reshape(-1, 3)
            if paper.shape[0] != n_notes:
                raise DatasetError(f"{meta.get('path')}: {paper.shape[0]} paper feature rows "
                                   f"for {n_notes} notes")
            self._paper.append(paper)
        self._tokens.append(tokens)
        self._notes += int(n_notes)
        self.pieces.append(row)
        return row

    def quarantine(self, path: str, reason: str) -> None:
        self._quarantine.write(f"{_clean_field(path)}\t{_clean_field(reason)}\n")

    def recovered(self, path: str, warning: str) -> None:
        self._recovered.write(f"{_clean_field(path)}\t{_clean_field(warning)}\n")

    def finish(self, info: dict) -> Path:
        self._tokens.close(self.fsync)
        if self._paper is not None:
            self._paper.close(self.fsync)
        self._quarantine.close()
        self._recovered.close()
        for row in self.pieces:
            rec = {k: row.get(k) for k in Piece._fields if k in row or k in _REQUIRED}
            self._pieces.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._pieces.close()
        info = {"format": FORMAT, "format_version": FORMAT_VERSION, **info}
        (self.tmp / INFO_NAME).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
        try:
            self._stage.commit()  # an earlier dataset there (checked in __init__) is exchanged
        finally:
            self._stage.close()  # removes the earlier dataset, now at the staging path
        return self.output

    def abort(self) -> None:
        files = [self._tokens._file, self._pieces, self._quarantine, self._recovered]
        if self._paper is not None:
            files.append(self._paper._file)
        for f in files:
            try:
                f.close()
            except Exception:  # pragma: no cover - best effort cleanup
                pass
        self._stage.close()
