"""Interpolated Kneser-Ney n-gram language model over codec tokens: the count-based baseline
that the LSTM must beat (``musgen evaluate`` reports it on the same tokens and split).

Conventions shared with the LSTM evaluation: every piece is one sequence ``BOS ... EOS``; each
token after the first is a target predicted from the tokens before it in the same piece (no
context crosses pieces); histories shorter than ``order - 1`` are padded on the left with BOS.
PAD never occurs inside a piece. Probabilities are over the whole vocabulary (base: uniform).

Smoothing (Chen & Goodman's interpolated Kneser-Ney, one discount per order)::

    P_n(w | h) = max(c_n(h w) - D_n, 0) / c_n(h .) + D_n * N1+(h .) / c_n(h .) * P_{n-1}(w | h')
    P_0(w)     = 1 / V

where ``c_n`` is the raw count at the model's highest order and the continuation count
``N1+(. h w)`` (number of distinct tokens seen before ``h w``) at the lower orders; a history
never seen falls back to ``P_{n-1}``. ``D_n = n1 / (n1 + 2 n2)`` from the counts-of-counts of
the counts used at that order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KneserNey", "best_order"]


class _Table:
    """Sorted n-gram keys with counts, and per-history totals and type counts."""

    def __init__(self, keys: np.ndarray, counts: np.ndarray, base: int):
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.counts = counts[order].astype(np.float64)
        hist = self.keys // base
        self.hist, inv = np.unique(hist, return_inverse=True)
        self.hist_total = np.bincount(inv, weights=self.counts)
        self.hist_types = np.bincount(inv).astype(np.float64)
        n1 = int(np.sum(self.counts == 1))
        n2 = int(np.sum(self.counts == 2))
        # Degenerate counts-of-counts (tiny corpora) fall back to the usual 0.5.
        self.discount = n1 / (n1 + 2 * n2) if n1 > 0 and n2 > 0 else 0.5

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.keys, keys)
        i = np.minimum(i, len(self.keys) - 1)
        return np.where(self.keys[i] == keys, self.counts[i], 0.0)

    def history(self, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(self.hist) == 0:
            z = np.zeros(len(hist))
            return z, z
        i = np.minimum(np.searchsorted(self.hist, hist), len(self.hist) - 1)
        hit = self.hist[i] == hist
        return (np.where(hit, self.hist_total[i], 0.0), np.where(hit, self.hist_types[i], 0.0))


def _grams(seqs, max_order: int, bos: int, vocab: int) -> np.ndarray:
    """int64 ``[n_targets, max_order]``: row = (w_{t-max_order+1}, ..., w_t), BOS-padded."""
    rows = []
    for s in seqs:
        s = np.asarray(s, dtype=np.int64)
        if len(s) < 2:
            continue
        if s.min() < 0 or s.max() >= vocab:
            raise ValueError(f"token ids must lie in [0, {vocab}), found "
                             f"[{int(s.min())}, {int(s.max())}]")
        padded = np.concatenate([np.full(max_order - 1, bos, np.int64), s])
        n = len(s) - 1  # targets are s[1:]
        idx = np.arange(n)[:, None] + np.arange(max_order)[None, :] + 1
        rows.append(padded[idx])
    if not rows:
        return np.zeros((0, max_order), np.int64)
    return np.concatenate(rows)


def _key(grams: np.ndarray, vocab: int) -> np.ndarray:
    """Base-``vocab`` number of each row (oldest token most significant)."""
    key = np.zeros(len(grams), np.int64)
    for j in range(grams.shape[1]):
        key = key * vocab + grams[:, j]
    return key


class KneserNey:
    """Interpolated Kneser-Ney n-gram model; ``order`` is chosen at query time (1..max_order).

    Parameters
    ----------
    sequences : iterable of int arrays
        Training pieces, each ``BOS ... EOS``.
    vocab_size : int
    bos_id : int
    max_order : int
        Highest order counted (1..5; ``vocab_size ** max_order`` must fit in int64).
    discounts : dict or None
        ``{(order, "raw"|"cont"): D}`` to override the estimated discounts (tests).
    """

    def __init__(self, sequences, vocab_size: int, bos_id: int, max_order: int = 5,
                 discounts: dict | None = None):
        if not 1 <= max_order <= 8:
            raise ValueError(f"max_order={max_order}: expected 1..8")
        if float(vocab_size) ** max_order >= 2.0 ** 62:
            raise ValueError(f"vocab_size={vocab_size} ** max_order={max_order} overflows the "
                             "int64 n-gram keys")
        self.vocab_size = int(vocab_size)
        self.bos_id = int(bos_id)
        self.max_order = int(max_order)
        grams = _grams(sequences, max_order, bos_id, vocab_size)
        if len(grams) == 0:
            raise ValueError("KneserNey: no training sequence has 2 or more tokens")
        self.n_train_targets = len(grams)
        V = self.vocab_size
        self.raw: dict = {}
        self.cont: dict = {}
        for k in range(1, max_order + 1):
            keys, counts = np.unique(_key(grams[:, max_order - k:], V), return_counts=True)
            self.raw[k] = _Table(keys, counts, V)
            if k > 1:
                # Continuation counts of order k-1: distinct left extensions of each (k-1)-gram.
                suffix = keys % (V ** (k - 1))
                ckeys, ccounts = np.unique(suffix, return_counts=True)
                self.cont[k - 1] = _Table(ckeys, ccounts, V)
        for (k, kind), d in (discounts or {}).items():
            (self.raw if kind == "raw" else self.cont)[k].discount = float(d)

    def _table(self, k: int, order: int) -> _Table:
        return self.raw[k] if k == order else self.cont[k]

    def target_probs(self, sequences, order: int) -> np.ndarray:
        """P(token_t | history) for every target of every sequence, float64, in order."""
        if not 1 <= order <= self.max_order:
            raise ValueError(f"order={order}: expected 1..{self.max_order}")
        grams = _grams(sequences, self.max_order, self.bos_id, self.vocab_size)
        return self._gram_probs(grams, order)

    def next_probs(self, histories, order: int) -> np.ndarray:
        """P(w | history) for every token w of the vocabulary, float64 [n, V].

        ``histories`` int [n, max_order - 1]: the tokens before the next one, oldest first,
        BOS-padded on the left as in training (only the last ``order - 1`` are used).
        """
        if not 1 <= order <= self.max_order:
            raise ValueError(f"order={order}: expected 1..{self.max_order}")
        h = np.asarray(histories, np.int64)
        if h.ndim != 2 or h.shape[1] != self.max_order - 1:
            raise ValueError(f"histories: expected shape [n, {self.max_order - 1}], got "
                             f"{list(h.shape)}")
        V = self.vocab_size
        grams = np.concatenate([np.repeat(h, V, axis=0),
                                np.tile(np.arange(V, dtype=np.int64), len(h))[:, None]], axis=1)
        return self._gram_probs(grams, order).reshape(len(h), V)

    def _gram_probs(self, grams: np.ndarray, order: int) -> np.ndarray:
        """The interpolated probability of the last token of each row of ``grams`` int64
        [m, max_order] given the ones before it."""
        V = self.vocab_size
        p = np.full(len(grams), 1.0 / V)
        for k in range(1, order + 1):
            t = self._table(k, order)
            g = grams[:, self.max_order - k:]
            key = _key(g, V)
            hist = key // V
            c = t.lookup(key)
            total, types = t.history(hist)
            d = t.discount
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            p = np.where(seen, (np.maximum(c - d, 0.0) + d * types * p) / safe, p)
        return p

    def nll(self, sequences, order: int) -> tuple[float, int]:
        """-> (total negative log-likelihood in nats, number of targets)."""
        p = self.target_probs(sequences, order)
        return float(-np.log(p).sum()), int(len(p))


def best_order(model: KneserNey, valid_sequences) -> tuple[int, dict]:
    """The order with the lowest validation NLL per token -> (order, {order: nll_per_token})."""
    scores = {}
    for n in range(1, model.max_order + 1):
        total, count = model.nll(valid_sequences, n)
        scores[n] = total / max(count, 1)
    return min(scores, key=scores.get), scores
