"""The ``paper`` preset's note features of a dataset that does not store them: computed on
demand from its source files (read again in C++ threads), each checked against the sha1 that
``prepare`` recorded, so the features are exactly those ``prepare`` would have stored."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np

from .format import DatasetError, piece_field

__all__ = ["source_paper_features"]

_CHUNK = 256  # files read per round: bounds memory on big corpora


def _source_file(dataset, piece) -> Path:
    roots = {s["name"]: Path(s["path"]) for s in dataset.info.get("sources", [])}
    name = piece_field(piece, "source")
    if name not in roots:
        raise DatasetError(f"{dataset.path}: piece {piece_field(piece, 'index')} names source "
                           f"{name!r}, which dataset.json does not list")
    root = roots[name]
    return root if root.is_file() else root / piece_field(piece, "path")


def _check_bytes(dataset, path: Path, sha1: str) -> None:
    fix = "prepare the dataset again with paper_features=True (musgen prepare --paper-features)"
    try:
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise DatasetError(f"{dataset.path}: the paper features are computed from the source "
                           f"files, but {path} cannot be read ({exc.strerror or exc}); {fix}"
                           ) from None
    if digest != sha1:
        raise DatasetError(f"{dataset.path}: source file {path} changed since the dataset was "
                           f"prepared (sha1 {digest}, recorded {sha1}); {fix}")


def source_paper_features(dataset) -> np.ndarray:
    """float32 [total_notes, 3]: every piece's paper features (``codec.paper_features``),
    pieces in dataset order, computed from the source files. Raises DatasetError naming the
    file when a source is missing or its bytes changed, or its notes no longer match."""
    from .. import codec, midi

    keep_drums = bool(dataset.info.get("options", {}).get("keep_drums", False))
    pieces = list(dataset.pieces)
    out = []
    for lo in range(0, len(pieces), _CHUNK):
        chunk = pieces[lo:lo + _CHUNK]
        paths = [_source_file(dataset, p) for p in chunk]
        for path, piece in zip(paths, chunk):
            _check_bytes(dataset, path, piece_field(piece, "sha1"))
        with warnings.catch_warnings():  # damage was recorded in recovered.tsv at prepare time
            warnings.simplefilter("ignore", midi.MidiWarning)
            scores = midi.read_many([str(p) for p in paths])
        for path, piece, score in zip(paths, chunk, scores):
            feats = codec.paper_features(score, keep_drums=keep_drums)
            if feats.shape[0] != int(piece_field(piece, "n_notes")):
                raise DatasetError(f"{dataset.path}: {path} has {feats.shape[0]} notes, the "
                                   f"dataset recorded {piece_field(piece, 'n_notes')}")
            out.append(feats)
    return np.concatenate(out) if out else np.zeros((0, 3), np.float32)
