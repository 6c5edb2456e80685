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


def _source_roots(dataset) -> dict:
    """Source name -> the folder (or file) ``prepare`` read, from dataset.json's ``sources``."""
    sources = dataset.info.get("sources")
    if not isinstance(sources, list) or not all(
            isinstance(s, dict) and isinstance(s.get("name"), str)
            and isinstance(s.get("path"), str) and s["path"] for s in sources):
        raise DatasetError(f"{dataset.path}: dataset.json 'sources' is damaged (expected a list "
                           "of {name, path}); the paper features are computed from the source "
                           "files, so they cannot be found")
    return {s["name"]: Path(s["path"]) for s in sources}


def _source_file(dataset, roots: dict, piece) -> Path:
    name, rel = piece_field(piece, "source"), piece_field(piece, "path")
    if name not in roots:
        raise DatasetError(f"{dataset.path}: piece {piece_field(piece, 'index')} names source "
                           f"{name!r}, which dataset.json does not list")
    if not isinstance(rel, str):
        raise DatasetError(f"{dataset.path}: piece {piece_field(piece, 'index')} has no source "
                           f"path (got {rel!r})")
    root = roots[name]
    return root if root.is_file() else root / rel


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

    options = dataset.info.get("options", {})
    if not isinstance(options, dict):
        raise DatasetError(f"{dataset.path}: dataset.json 'options' is damaged (expected a "
                           "mapping); the paper features depend on its keep_drums")
    keep_drums = bool(options.get("keep_drums", False))
    pieces = list(dataset.pieces)
    roots = _source_roots(dataset) if pieces else {}
    out = []
    for lo in range(0, len(pieces), _CHUNK):
        chunk = pieces[lo:lo + _CHUNK]
        paths = [_source_file(dataset, roots, p) for p in chunk]
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
