"""Training data of one epoch: token windows (``lstm_lm``) or normalized paper-feature windows
(``paper``), in an order fixed by (seed, epoch) so a resumed run sees the same batches."""

from __future__ import annotations

import numpy as np

from ..data.format import piece_field
from ..errors import MusgenError

__all__ = ["epoch_windows", "paper_windows", "paper_normalization"]


def epoch_windows(dataset, split: str, *, window: int, stride: int, seed: int, epoch: int,
                  shuffle: bool = True, transpose: int = 0, tempo_shift: int = 0,
                  header_prefix: bool = False,
                  key_normalize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """All windows of one epoch, in training order -> ``(inputs, targets)`` int32 ``[N, window]``.

    The batches of ``musgen.pipeline.numpy_batches`` concatenated (PAD-filled tails; the loss
    ignores PAD targets). Their order and transpositions depend only on ``(seed, epoch)``, so a
    resumed epoch sees exactly the data the uninterrupted run saw. ``transpose`` moves notes
    (and a version-2 Key token) by up to that many semitones, ``tempo_shift`` a version-2
    piece's Tempo tokens by up to that many bins; ``header_prefix`` starts a version-2 window
    inside a piece with the piece's header of conditions (context without loss);
    ``key_normalize`` moves every version-2 window to C major or A minor with its piece.
    """
    from ..data.pipeline import numpy_batches

    xs, ys = [], []
    for x, y in numpy_batches(dataset, split, window=window, stride=stride, batch_size=4096,
                              shuffle=shuffle, seed=seed, epoch=epoch, transpose=transpose,
                              tempo_shift=tempo_shift, header_prefix=header_prefix,
                              key_normalize=key_normalize):
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _paper_piece(dataset, i) -> np.ndarray:
    """The ``[n_notes, 3]`` float32 paper features (pitch, velocity, seconds since the previous
    onset) of piece ``i``."""
    start = int(np.asarray(dataset.piece_note_offsets)[int(i)])
    n = int(piece_field(dataset.pieces[int(i)], "n_notes"))
    return np.asarray(dataset.paper_features[start:start + n], dtype=np.float32)


def paper_windows(dataset, split: str, *, window: int, stride: int, seed: int, epoch: int,
                  mean: np.ndarray, std: np.ndarray, shuffle: bool = True):
    """Windows of normalized paper features -> ``(inputs, targets, weights)``.

    ``inputs``/``targets`` float32 ``[N, window, 3]`` (targets are the next note's features);
    ``weights`` float32 ``[N, window]`` is 0 on padding. Order depends only on (seed, epoch).
    """
    rng = np.random.default_rng([int(seed), int(epoch)])
    xs, ys, ws = [], [], []
    for i in dataset.split_indices(split):
        f = (_paper_piece(dataset, i) - mean) / std
        n = len(f)
        if n < 2:
            continue
        for s in range(0, n - 1, stride):
            w = f[s:s + window + 1]
            m = len(w) - 1
            x = np.zeros((window, 3), np.float32)
            y = np.zeros((window, 3), np.float32)
            wt = np.zeros(window, np.float32)
            x[:m], y[:m], wt[:m] = w[:-1], w[1:], 1.0
            xs.append(x)
            ys.append(y)
            ws.append(wt)
            if s + window + 1 >= n:
                break
    if not xs:
        raise MusgenError(f"dataset {getattr(dataset, 'path', '?')}: split {split!r} has no "
                          "piece with at least 2 notes")
    x, y, w = np.stack(xs), np.stack(ys), np.stack(ws)
    if shuffle:
        order = rng.permutation(len(x))
        x, y, w = x[order], y[order], w[order]
    return x, y, w


def paper_normalization(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation of the train split's paper features."""
    feats = [_paper_piece(dataset, i) for i in dataset.split_indices("train")]
    allf = np.concatenate(feats) if feats else np.zeros((0, 3), np.float32)
    if len(allf) < 2:
        raise MusgenError("paper preset: the train split has fewer than 2 notes")
    mean = allf.mean(axis=0).astype(np.float32)
    std = allf.std(axis=0).astype(np.float32)
    std[std < 1e-6] = 1.0  # a constant feature (e.g. fixed velocity) stays as is
    return mean, std
