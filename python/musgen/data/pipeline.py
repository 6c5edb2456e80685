"""Training input: fixed-length windows over a dataset's memory-mapped tokens, shuffled, augmented
by transposition and batched, as a NumPy iterator or a ``tf.data`` pipeline (same batches).

Windows. A piece of ``L`` tokens (BOS ... EOS) has ``L - 1`` next-token targets. A window that
starts at ``s`` has inputs ``tokens[s:s+T]`` and targets ``tokens[s+1:s+T+1]``; starts are
``0, stride, 2*stride, ...`` up to the first window that reaches the piece's last target, so every
target is in at least one window (exactly one when ``stride == window``). The part of a window
past the end of its piece (a piece shorter than a window, or the last window of a piece) is
filled with PAD (id 0) in both inputs and targets. PAD is never a real target, so the loss mask
is ``targets != PAD_ID`` (``target_weights``, or ``weights=True`` to get it with every batch):
padded positions carry no loss and no accuracy.

Order. The windows of an epoch are shuffled with ``np.random.default_rng([seed, epoch])`` (when
``shuffle``), and each window's transposition is drawn from the same generator, so ``seed`` and
``epoch`` fix every batch: training resumed after a kill at (epoch, batch) sees exactly the batches
it would have seen (``start_batch`` skips the ones already done).

Transposition. With ``transpose=k`` each window is shifted by a semitone count drawn uniformly
from ``-k..k`` (``CodecConfig.transpose`` semantics, applied through per-shift lookup tables
built from it); a window that would leave the codec's pitch range is kept untransposed. With
codec version 2 the Key token moves with the notes, so the key condition stays true.

Key normalization. With ``key_normalize=True`` (codec version 2) every window, of every split,
is moved by its piece's ``CodecConfig.key_normalizing_shift`` (-6..+5 semitones), so the model
learns every piece in C major or A minor, its Key condition moved with it (a window that would
leave the pitch range keeps its key). ``generate(key=...)`` then reaches any other key by
transposition (``musgen.keyplan``). It replaces random transposition (the two exclude each
other).

Tempo. With ``tempo_shift=k`` (codec version 2; off by default) each window's Tempo tokens are
moved by a bin count drawn uniformly from ``-k..k`` (``CodecConfig.shift_tempo``: about 6 %
per bin with the default bins), so the tempo condition follows; a window that would leave the
bins keeps its tempo. The draws come after the transpositions', so a plan without tempo
shifts is the plan it always was.

Header prefix. With ``header_prefix=True`` (codec version 2) a window that starts inside a piece
is prefixed with the piece's header: BOS and its conditions (Program, Key, Style, Density, Tempo,
TimeSig; ``Dataset.header_lengths``), then the piece from the window's start. Without it, only a
piece's first window sees the conditions, and a model trained on windows never learns to keep a
key or the instruments of its parts past them. The prefix and the junction to the window's first
token are context only: their targets are PAD, so no loss repeats the header in every window.
Such a window of ``T`` tokens has ``T - h`` targets for a header of ``h``, so a piece's later
windows step by ``min(stride, T - h)``, keeping every target in a window.

``tf_dataset`` runs the very same batch function inside ``tf.data`` (``tf.numpy_function``, in
parallel, order kept, prefetched), so the two produce identical batches by construction; a test
checks it. TensorFlow is imported only inside ``tf_dataset``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .dataset import Dataset
from .format import DatasetError

__all__ = [
    "PAD_ID",
    "window_starts",
    "count_windows",
    "batches_per_epoch",
    "numpy_batches",
    "tf_dataset",
    "target_weights",
    "EpochPlan",
    "plan_epoch",
]

#: The padding token (the codec's ``pad_id``); targets equal to it carry no loss.
PAD_ID = 0
#: The largest key-normalizing shift, in semitones (the shifts are -6..+5).
KEY_SHIFT = 6


def _as_dataset(dataset) -> Dataset:
    return dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)


def _check(window: int, stride: int | None, batch_size: int) -> int:
    if int(window) < 1:
        raise ValueError(f"window={window!r}: expected a positive number of tokens")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive number")
    stride = int(window) if stride is None else int(stride)
    if stride < 1:
        raise ValueError(f"stride={stride!r}: expected a positive number of tokens")
    return stride


def _window_counts(lengths: np.ndarray, window: int, stride: int,
                   headers: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Windows per piece, and the step between a piece's windows after its first."""
    if headers is None:
        return 1 + -(-np.maximum(lengths - 1 - window, 0) // stride), np.full_like(lengths, stride)
    headers = np.asarray(headers, dtype=np.int64)
    if headers.shape != lengths.shape:
        raise ValueError(f"headers: {headers.shape[0]} lengths for {lengths.shape[0]} pieces")
    if np.any(headers >= window):
        raise ValueError(f"window={window}: a prefixed window needs more tokens than its "
                         f"header, and a piece has a header of {int(headers.max())}")
    body = window - headers  # targets of a prefixed window
    step = np.where(headers > 0, np.minimum(stride, body), stride)
    later = np.where(headers > 0, 1 + -(-np.maximum(lengths - 1 - body - stride, 0) // step),
                     -(-np.maximum(lengths - 1 - window, 0) // stride))
    return 1 + np.where(lengths - 1 > window, later, 0), step


def window_starts(lengths: np.ndarray, window: int, stride: int,
                  headers: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For pieces of ``lengths`` tokens: (piece position, start in piece) of every window, int64.

    A piece of length L gets ``1 + ceil(max(0, L - 1 - window) / stride)`` windows. With
    ``headers`` (header prefix; 0 for a piece without one) a piece's first window starts at 0
    and covers targets ``1..window``; its later windows start at ``stride``, then every
    ``min(stride, window - h)``, each covering ``window - h`` targets, up to the last target.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n, step = _window_counts(lengths, int(window), int(stride), headers)
    piece = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), n)
    first = np.cumsum(n) - n
    k = np.arange(piece.shape[0], dtype=np.int64) - np.repeat(first, n)
    start = np.where(k > 0, int(stride) + (k - 1) * step[piece], 0)
    return piece, start


def _headers(ds: Dataset, idx: np.ndarray, header_prefix: bool) -> np.ndarray | None:
    """Header lengths of the pieces ``idx`` when windows are prefixed, else None."""
    if not header_prefix:
        return None
    if ds.codec.version != 2:
        raise DatasetError(f"{ds.path}: header_prefix needs codec version 2 (a header of "
                           f"conditions); this dataset is version {ds.codec.version}")
    return ds.header_lengths[idx]


def piece_key_shifts(dataset) -> np.ndarray:
    """int64 [n_pieces]: each piece's key-normalizing shift (``key_normalize``)."""
    ds = _as_dataset(dataset)
    if ds.codec.version != 2:
        raise DatasetError(f"{ds.path}: key_normalize needs codec version 2 (a Key condition); "
                           f"this dataset is version {ds.codec.version}")
    return np.array([ds.codec.key_normalizing_shift(ds.piece_tokens(i)[:int(h)])
                     for i, h in enumerate(ds.header_lengths.tolist())], dtype=np.int64)


def count_windows(dataset, split: str, *, window: int, stride: int | None = None,
                  header_prefix: bool = False) -> int:
    """How many windows one epoch of ``split`` has."""
    ds = _as_dataset(dataset)
    stride = _check(window, stride, 1)
    idx = ds.split_indices(split)
    n, _ = _window_counts(ds.lengths[idx], int(window), stride,
                          _headers(ds, idx, header_prefix))
    return int(n.sum())


def batches_per_epoch(dataset, split: str, *, window: int, stride: int | None = None,
                      batch_size: int, drop_remainder: bool = False,
                      header_prefix: bool = False) -> int:
    n = count_windows(dataset, split, window=window, stride=stride, header_prefix=header_prefix)
    return n // batch_size if drop_remainder else -(-n // batch_size)


def target_weights(targets: np.ndarray) -> np.ndarray:
    """float32 loss weights: 1 for real targets, 0 for PAD."""
    return (np.asarray(targets) != PAD_ID).astype(np.float32)


class _TokenMaps:
    """Per-shift token maps built from a codec augmentation (``CodecConfig.transpose`` or
    ``CodecConfig.shift_tempo``) one token at a time (-1 where the token would leave its
    range), so a whole batch is augmented in one gather."""

    def __init__(self, codec, max_shift: int, augment: str = "transpose"):
        vocab = int(codec.vocab_size)
        fn = getattr(codec, augment)
        self.shifts = np.arange(-max_shift, max_shift + 1, dtype=np.int64)
        self.table = np.empty((self.shifts.shape[0], vocab), dtype=np.int32)
        ids = np.arange(vocab, dtype=np.int32)
        for row, s in enumerate(self.shifts):
            for tok in range(vocab):
                out = fn(ids[tok:tok + 1], int(s))
                self.table[row, tok] = -1 if out is None else int(np.asarray(out)[0])

    def apply(self, spans: np.ndarray, shift_rows: np.ndarray) -> np.ndarray:
        out = np.take_along_axis(self.table[shift_rows], spans.astype(np.int64), axis=1)
        bad = (out < 0).any(axis=1)
        out[bad] = spans[bad]  # would leave the range: keep the window as it was
        return out


_TransposeTables = _TokenMaps  # the earlier name


@dataclass
class EpochPlan:
    """Every window of one epoch in batch order: absolute token offset, real tokens in the
    ``window + 1`` span (its header prefix included), and transposition (index into the shift
    table; 0 shift when off); with a header prefix, each window's prefix length (0: none) and
    its piece's absolute offset (where the header is)."""

    starts: np.ndarray  # int64 [n_windows], offset into dataset.tokens
    valid: np.ndarray  # int64 [n_windows], real tokens in the span (<= window + 1)
    shift_rows: np.ndarray  # int64 [n_windows]
    window: int
    batch_size: int
    drop_remainder: bool
    tempo_rows: np.ndarray | None = None  # int64 [n_windows] into the tempo-shift table
    prefix: np.ndarray | None = None  # int64 [n_windows]: header tokens put before the window
    piece_starts: np.ndarray | None = None  # int64 [n_windows]: offset of the window's piece

    @property
    def n_batches(self) -> int:
        n = self.starts.shape[0]
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)


def plan_epoch(dataset, split: str, *, window: int = 256, stride: int | None = None,
               batch_size: int = 32, shuffle: bool = True, seed: int = 0, epoch: int = 0,
               transpose: int = 0, drop_remainder: bool = False,
               tempo_shift: int = 0, header_prefix: bool = False,
               key_normalize: bool = False) -> EpochPlan:
    """The order and augmentation of one epoch (a pure function of its arguments)."""
    ds = _as_dataset(dataset)
    stride = _check(window, stride, batch_size)
    if int(transpose) < 0:
        raise ValueError(f"transpose={transpose!r}: expected a non-negative semitone count")
    if key_normalize and int(transpose):
        raise ValueError("key_normalize and transpose: give one (key normalization moves every "
                         "piece to C major or A minor; transposition moves them at random)")
    if int(tempo_shift) < 0:
        raise ValueError(f"tempo_shift={tempo_shift!r}: expected a non-negative bin count")
    idx = ds.split_indices(split)
    lengths = ds.lengths[idx]
    headers = _headers(ds, idx, header_prefix)
    piece, start = window_starts(lengths, int(window), stride, headers)
    starts = ds.offsets[idx][piece] + start
    prefix = piece_starts = None
    if headers is None:
        valid = np.minimum(lengths[piece] - start, int(window) + 1)
    else:
        prefix = np.where(start > 0, headers[piece], 0)
        piece_starts = ds.offsets[idx][piece]
        valid = prefix + np.minimum(lengths[piece] - start, int(window) + 1 - prefix)
    rng = np.random.default_rng([int(seed), int(epoch)])
    if shuffle:
        order = rng.permutation(starts.shape[0])
        starts, valid, piece = starts[order], valid[order], piece[order]
        if prefix is not None:
            prefix, piece_starts = prefix[order], piece_starts[order]
    if key_normalize:  # rows of the -KEY_SHIFT..KEY_SHIFT table
        shift_rows = piece_key_shifts(ds)[idx][piece] + KEY_SHIFT
    elif transpose:
        shift_rows = rng.integers(0, 2 * int(transpose) + 1, size=starts.shape[0])
    else:
        shift_rows = np.zeros(starts.shape[0], dtype=np.int64)
    tempo_rows = (rng.integers(0, 2 * int(tempo_shift) + 1, size=starts.shape[0])
                  .astype(np.int64) if tempo_shift else None)
    return EpochPlan(starts.astype(np.int64), valid.astype(np.int64),
                     shift_rows.astype(np.int64), int(window), int(batch_size),
                     bool(drop_remainder), tempo_rows, prefix, piece_starts)


class _BatchMaker:
    """Builds batch ``b`` of a plan: the one function both the NumPy and tf.data paths call."""

    def __init__(self, ds: Dataset, transpose: int, tempo_shift: int = 0,
                 key_normalize: bool = False):
        self.tokens = ds.tokens
        shift = KEY_SHIFT if key_normalize else int(transpose)
        self.tables = _TokenMaps(ds.codec, shift) if shift else None
        if tempo_shift and ds.codec.version != 2:
            raise DatasetError(f"{ds.path}: tempo_shift needs codec version 2 (Tempo tokens); "
                               f"this dataset is version {ds.codec.version}")
        self.tempo = (_TokenMaps(ds.codec, int(tempo_shift), "shift_tempo")
                      if tempo_shift else None)

    def __call__(self, plan: EpochPlan, b: int) -> tuple[np.ndarray, np.ndarray]:
        lo = b * plan.batch_size
        hi = min(lo + plan.batch_size, plan.starts.shape[0])
        cols = np.arange(plan.window + 1, dtype=np.int64)
        real = cols[None, :] < plan.valid[lo:hi, None]
        source = plan.starts[lo:hi, None] + cols[None, :]
        prefix = None if plan.prefix is None else plan.prefix[lo:hi, None]
        if prefix is not None:  # the header, then the window from its start
            source = np.where(cols[None, :] < prefix, plan.piece_starts[lo:hi, None] + cols,
                              source - prefix)
        index = np.where(real, source, 0)
        spans = np.asarray(self.tokens[index.ravel()]).reshape(index.shape)
        spans[~real] = PAD_ID
        if self.tables is not None:
            spans = self.tables.apply(spans, plan.shift_rows[lo:hi])
        if self.tempo is not None and plan.tempo_rows is not None:
            spans = self.tempo.apply(spans, plan.tempo_rows[lo:hi])
        spans = spans.astype(np.int32, copy=False)
        inputs, targets = np.ascontiguousarray(spans[:, :-1]), np.ascontiguousarray(spans[:, 1:])
        if prefix is not None:  # the header and the junction after it are context only
            targets[cols[None, :-1] < prefix] = PAD_ID
        return inputs, targets


def _no_windows(ds, split: str, batch_size: int, drop_remainder: bool) -> DatasetError:
    """The error for a split that yields no batch; it names only what the caller chose."""
    if drop_remainder:
        return DatasetError(f"{ds.path}: split {split!r} has fewer than batch_size={batch_size} "
                            "windows, and drop_remainder drops them all")
    return DatasetError(f"{ds.path}: split {split!r} has no windows (it has no pieces)")


def numpy_batches(dataset, split: str = "train", *, window: int = 256, stride: int | None = None,
                  batch_size: int = 32, shuffle: bool = True, seed: int = 0, epoch: int = 0,
                  transpose: int = 0, drop_remainder: bool = False, epochs: int | None = 1,
                  start_batch: int = 0, weights: bool = False,
                  tempo_shift: int = 0, header_prefix: bool = False,
                  key_normalize: bool = False) -> Iterator[tuple]:
    """Batches ``(inputs int32 [B, window], targets int32 [B, window])`` of ``split``
    (``weights=True`` adds ``target_weights(targets)``, float32 [B, window], for Keras).

    Parameters
    ----------
    dataset : Dataset or path
    split : "train", "valid" or "test"
    window, stride : int
        Tokens per window, and between window starts (default: ``window``, no overlap).
    batch_size : int
        The last batch of an epoch is smaller unless ``drop_remainder``.
    shuffle, seed, epoch : shuffle the windows of epoch ``epoch`` with ``seed``
    transpose : int
        Random transposition within ``-transpose..transpose`` semitones (0: none).
    tempo_shift : int
        Codec version 2: random tempo change within ``-tempo_shift..tempo_shift`` Tempo bins
        (0: none).
    header_prefix : bool
        Codec version 2: windows that start inside a piece begin with its header (the
        conditions), as context without loss (see the module's notes).
    key_normalize : bool
        Codec version 2: every window moved to C major or A minor with its piece (see the
        module's notes).
    epochs : int or None
        Epochs ``epoch, epoch + 1, ...`` in a row (None: forever).
    start_batch : int
        Skip this many batches of the first epoch (resume).
    weights : bool
        Also yield the loss weights (0 on PAD targets).
    """
    ds = _as_dataset(dataset)
    make = _BatchMaker(ds, transpose, tempo_shift, key_normalize)
    e = int(epoch)
    first = int(start_batch)
    while epochs is None or e < int(epoch) + int(epochs):
        plan = plan_epoch(ds, split, window=window, stride=stride, batch_size=batch_size,
                          shuffle=shuffle, seed=seed, epoch=e, transpose=transpose,
                          drop_remainder=drop_remainder, tempo_shift=tempo_shift,
                          header_prefix=header_prefix, key_normalize=key_normalize)
        if plan.n_batches == 0:
            raise _no_windows(ds, split, batch_size, drop_remainder)
        for b in range(first, plan.n_batches):
            x, y = make(plan, b)
            yield (x, y, target_weights(y)) if weights else (x, y)
        first = 0
        e += 1


def tf_dataset(dataset, split: str = "train", *, window: int = 256, stride: int | None = None,
               batch_size: int = 32, shuffle: bool = True, seed: int = 0, epoch: int = 0,
               transpose: int = 0, drop_remainder: bool = False, epochs: int | None = 1,
               start_batch: int = 0, weights: bool = False, parallel: int | None = None,
               tempo_shift: int = 0, header_prefix: bool = False, key_normalize: bool = False):
    """The batches of ``numpy_batches`` (same arguments, identical values) as a ``tf.data.Dataset``
    of ``(inputs, targets)`` int32 tensors (``weights=True``: and float32 loss weights), built in
    parallel and prefetched; ``model.fit`` takes it as is.

    ``parallel`` is the number of batches built at once (default: the number of cores).
    """
    import tensorflow as tf

    ds = _as_dataset(dataset)
    make = _BatchMaker(ds, transpose, tempo_shift, key_normalize)
    plans: dict[int, EpochPlan] = {}
    lock = threading.Lock()

    def plan_for(e: int) -> EpochPlan:
        # Parallel map calls straddle an epoch boundary, so the last two plans are kept.
        with lock:
            if e not in plans:
                for old in sorted(plans)[:-1]:
                    del plans[old]
                plans[e] = plan_epoch(ds, split, window=window, stride=stride,
                                      batch_size=batch_size, shuffle=shuffle, seed=seed, epoch=e,
                                      transpose=transpose, drop_remainder=drop_remainder,
                                      tempo_shift=tempo_shift, header_prefix=header_prefix,
                                      key_normalize=key_normalize)
            return plans[e]

    # Batch numbers are laid out epoch after epoch; epochs are enumerated here, in Python, so
    # each epoch's batch count (which can differ only if the split changed) is exact.
    first_plan = plan_for(int(epoch))
    if first_plan.n_batches == 0:
        raise _no_windows(ds, split, batch_size, drop_remainder)
    per_epoch = first_plan.n_batches
    e0 = int(epoch)
    first = int(start_batch)

    def indices():
        e = e0
        skip = first
        while epochs is None or e < e0 + int(epochs):
            for b in range(skip, per_epoch):
                yield e, b
            skip = 0
            e += 1

    def build(e, b):
        return make(plan_for(int(e)), int(b))

    keys = tf.data.Dataset.from_generator(
        indices, output_signature=(tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.int64)))

    def to_tensors(e, b):
        x, y = tf.numpy_function(build, [e, b], (tf.int32, tf.int32), stateful=False)
        x.set_shape((None, window))
        y.set_shape((None, window))
        if weights:
            return x, y, tf.cast(tf.not_equal(y, PAD_ID), tf.float32)
        return x, y

    n_parallel = parallel or os.cpu_count() or 1
    return (keys.map(to_tensors, num_parallel_calls=n_parallel, deterministic=True)
            .prefetch(tf.data.AUTOTUNE))
