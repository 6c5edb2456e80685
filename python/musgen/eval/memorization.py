"""Memorization: how much of a piece is copied verbatim from the training split.

Each piece becomes the sequence of its non-drum pitches in onset order (the notes of a chord
low to high), or, transposition-invariant, the intervals between consecutive ones. For every
position i of a piece, the *matching statistic* ``ms[i]`` is the length of the longest run
``piece[i:i + L]`` that occurs verbatim somewhere in the training split (inside one training
piece). From it:

* ``copy_rate_n``: the share of the piece's n-note n-grams found in the training split,
  ``#(i : ms[i] >= n) / #(n-grams)``, pooled over the pieces of a set (a piece shorter than n
  adds nothing);
* ``longest_run``: ``max_i ms[i]`` notes, the longest passage copied verbatim; the set reports
  its median and maximum over the pieces.

(With intervals, an n-note n-gram is n - 1 intervals and a run of L intervals spans L + 1 notes;
the figures are given in notes either way.)

The index is a suffix array of the training sequences (each ended by its own separator, so no
run crosses two pieces), built by prefix doubling in NumPy: ``O(N log N)`` per doubling round,
a few seconds for a million notes. The queries run as one vectorized binary search over the
suffix array for all positions of all pieces at once; two suffixes are compared through their
longest common prefix, found by binary search on polynomial hashes (two 31-bit primes, so a
false match needs a collision in both, odds about 1e-18 per comparison).
"""

from __future__ import annotations

import numpy as np

from ..score import Score

__all__ = ["pitch_sequence", "CopyIndex", "memorization", "NGRAM_SIZES"]

#: The n of the reported copy rates (``copy_rate_8``, ``copy_rate_12``, ``copy_rate_16``).
NGRAM_SIZES = (8, 12, 16)
_MODULI = (2_147_483_647, 2_147_483_629)  # primes below 2^31: products stay inside int64
_BASES = (1_000_003, 911_382_323)
_SHIFT = 256  # pitches (0..127) and intervals (-127..127) become symbols 1..383
_SEPARATOR = 512  # separator of training piece k is _SEPARATOR + k: larger than every symbol
_BUCKET = 3  # symbols of the suffix-array buckets that start each query's binary search


def pitch_sequence(score, *, intervals: bool = False) -> np.ndarray:
    """int64 [n]: the non-drum pitches of ``score`` by onset (a chord low to high); with
    ``intervals``, the n - 1 semitone steps between consecutive ones."""
    from .metrics import piece_notes

    if not isinstance(score, Score):
        raise TypeError(f"pitch_sequence: expected a musgen Score, got {type(score).__name__}")
    pitch = piece_notes(score).pitch
    return np.diff(pitch) if intervals else pitch.copy()


def _powers(base: int, modulus: int, count: int) -> np.ndarray:
    """int64 [count]: base^i mod modulus, by doubling (a few vectorized steps)."""
    out = np.ones(1, np.int64)
    while out.size < count:
        step = pow(base, int(out.size), modulus)
        out = np.concatenate([out, out * step % modulus])
    return out[:count]


class _Hashes:
    """Prefix hashes of one int64 text under both moduli: ``H[i] = sum_{j<i} (t_j + 1)
    B^(i-1-j) mod M``, so any substring's hash is ``H[s+L] - H[s] B^L`` (mod M)."""

    def __init__(self, text: np.ndarray, powers: list):
        self.prefix = []
        for (modulus, base), pw in zip(zip(_MODULI, _BASES), powers):
            inv = _powers(pow(base, modulus - 2, modulus), modulus, text.size + 1)
            terms = (text + 1) % modulus * inv[1:] % modulus
            s = np.concatenate([[0], np.cumsum(terms) % modulus])
            self.prefix.append(s * pw[:text.size + 1] % modulus)

    def of(self, start: np.ndarray, length: np.ndarray, powers: list, k: int) -> np.ndarray:
        h, m = self.prefix[k], _MODULI[k]
        return (h[start + length] - h[start] * powers[k][length] % m) % m


def _suffix_array(text: np.ndarray) -> np.ndarray:
    """int64 [N]: the suffix array of ``text`` (every suffix distinct: the text ends in unique
    separators), by prefix doubling: the order by the first 2k symbols from the ranks of the
    first k. A suffix's rank is the position of its group's head in the current order, so a
    suffix alone in its group is placed for good, and each round sorts only the suffixes that
    still share a group (after a few rounds, only the long repeats)."""
    n = text.size
    order = np.argsort(text, kind="stable").astype(np.int64)
    head = np.ones(n, bool)
    head[1:] = text[order][1:] != text[order][:-1]
    positions = np.arange(n, dtype=np.int64)
    start = np.maximum.accumulate(np.where(head, positions, 0))
    rank = np.empty(n, np.int64)
    rank[order] = start
    k = 1
    while True:
        alone = head & np.append(head[1:], True)
        todo = np.flatnonzero(~alone)  # sorted positions of suffixes still sharing a group
        if not todo.size:
            return order
        suffix = order[todo]
        ahead = suffix + k
        second = np.where(ahead < n, rank[np.minimum(ahead, n - 1)], -1)
        group = start[todo]
        # one int64 key sorts faster than a lexsort of two; groups are contiguous, so the
        # sorted suffixes go back into the same slots
        perm = np.argsort(group * (n + 1) + (second + 1))
        order[todo] = suffix[perm]
        second, group = second[perm], group[perm]
        new_head = np.ones(todo.size, bool)
        new_head[1:] = (group[1:] != group[:-1]) | (second[1:] != second[:-1])
        head[todo] = new_head
        start = np.maximum.accumulate(np.where(head, positions, 0))
        rank[order[todo]] = start[todo]
        k *= 2


class CopyIndex:
    """A searchable index of training sequences (pitches or intervals).

    Parameters
    ----------
    sequences : iterable of int arrays
        The training pieces' sequences (:func:`pitch_sequence`), values in -255..255.
    """

    def __init__(self, sequences):
        parts, rest = [], []
        count = 0
        for k, seq in enumerate(sequences):
            seq = np.asarray(seq, np.int64).reshape(-1)
            if seq.size and (seq.min() < -255 or seq.max() > 255):
                raise ValueError(f"CopyIndex: sequence {k} holds values outside -255..255")
            parts += [seq + _SHIFT, np.array([_SEPARATOR + k], np.int64)]
            rest += [np.arange(seq.size, 0, -1, dtype=np.int64), np.zeros(1, np.int64)]
            count += 1
        if not count:
            raise ValueError("CopyIndex: no training sequence")
        self.text = np.concatenate(parts)
        self.rest = np.concatenate(rest)  # symbols left before the separator, per position
        self.n_sequences = count
        self.n_symbols = int(self.text.size - count)
        self.suffix_array = _suffix_array(self.text)
        self._powers = [_powers(b, m, self.text.size + 1) for m, b in zip(_MODULI, _BASES)]
        self._hashes = _Hashes(self.text, self._powers)
        self._sa_keys = None  # bucket keys along the suffix array, made on the first query

    def _lcp(self, qh, q, rq, t) -> np.ndarray:
        """Longest common prefix of query suffixes q and training suffixes t, int64 [m]: a
        binary search on the prefix length, each step on the pairs not settled yet."""
        lo = np.zeros(q.size, np.int64)
        hi = np.minimum(rq[q], self.rest[t])
        todo = np.flatnonzero(lo < hi)
        while todo.size:
            a, b = lo[todo], hi[todo]
            mid = (a + b + 1) // 2
            qs, ts = q[todo], t[todo]
            same = qh.of(qs, mid, self._powers, 0) == self._hashes.of(ts, mid, self._powers, 0)
            same &= qh.of(qs, mid, self._powers, 1) == self._hashes.of(ts, mid, self._powers, 1)
            lo[todo] = np.where(same, mid, a)
            hi[todo] = np.where(same, b, mid - 1)
            todo = todo[lo[todo] < hi[todo]]
        return lo

    def _buckets(self, text: np.ndarray, rest: np.ndarray, positions: np.ndarray) -> tuple:
        """(low, high) keys of the first ``_BUCKET`` symbols of the suffixes at ``positions``
        of ``text`` (``rest``: their symbols before the end): their own symbols, then the
        smallest (low) or the largest (high) possible symbol past the end. Every separator
        counts as the largest symbol, so training suffixes in suffix-array order have
        non-decreasing high keys, and a query's lower bound lies between the first key >= its
        low key and the last key <= its high key."""
        low = np.zeros(positions.size, np.int64)
        high = np.zeros(positions.size, np.int64)
        for j in range(_BUCKET):
            inside = rest > j
            sym = np.where(inside, text[np.minimum(positions + j, text.size - 1)], 0)
            sym = np.minimum(sym, _SEPARATOR)  # every separator is one largest symbol here
            low = low * (_SEPARATOR + 1) + sym
            high = high * (_SEPARATOR + 1) + np.where(inside, sym, _SEPARATOR)
        return low, high

    def matching_statistics(self, sequences) -> list:
        """For each query sequence, int64 [len]: ``ms[i]`` = the longest L such that
        ``seq[i:i + L]`` occurs in one training sequence."""
        seqs = [np.asarray(s, np.int64).reshape(-1) for s in sequences]
        if not seqs or not sum(s.size for s in seqs):
            return [np.zeros(s.size, np.int64) for s in seqs]
        text = np.concatenate(seqs) + _SHIFT
        rq = np.concatenate([np.arange(s.size, 0, -1, dtype=np.int64) for s in seqs])
        powers_needed = text.size + 1
        if powers_needed > self._powers[0].size:
            self._powers = [_powers(b, m, powers_needed) for m, b in zip(_MODULI, _BASES)]
        qh = _Hashes(text, self._powers)
        sa, n = self.suffix_array, self.text.size
        if self._sa_keys is None:
            # a training suffix goes on with its separator (the largest symbol): high keys
            self._sa_keys = self._buckets(self.text, self.rest[sa], sa)[1]
        # the lower bound lies among the suffixes sharing the query's first symbols
        key_lo, key_hi = self._buckets(text, rq, np.arange(text.size, dtype=np.int64))
        lo = np.searchsorted(self._sa_keys, key_lo, side="left")
        hi = np.searchsorted(self._sa_keys, key_hi, side="right")
        todo = np.flatnonzero(lo < hi)
        while todo.size:  # lower bound: the first suffix >= the query suffix
            mid = (lo[todo] + hi[todo]) // 2
            t = sa[np.minimum(mid, n - 1)]
            lcp = self._lcp(qh, todo, rq, t)
            ended = (lcp >= rq[todo]) | (lcp >= self.rest[t])
            qc = text[np.minimum(todo + lcp, text.size - 1)]
            tc = self.text[np.minimum(t + lcp, n - 1)]
            greater = ~ended & (qc > tc)
            lo[todo] = np.where(greater, mid + 1, lo[todo])
            hi[todo] = np.where(greater, hi[todo], mid)
            todo = todo[lo[todo] < hi[todo]]
        q = np.arange(text.size, dtype=np.int64)
        best = np.zeros(q.size, np.int64)
        for pos in (lo - 1, lo):
            ok = (pos >= 0) & (pos < n)
            t = sa[np.clip(pos, 0, n - 1)]
            best = np.maximum(best, np.where(ok, self._lcp(qh, q, rq, t), 0))
        cuts = np.cumsum([s.size for s in seqs])[:-1]
        return np.split(best, cuts)


def memorization(sequences, index: CopyIndex, *, intervals: bool = False,
                 sizes=NGRAM_SIZES) -> dict:
    """Copy rates and longest copied runs of a set of pieces against ``index``.

    Returns ``copy_rate_<n>`` for n in ``sizes`` (pooled share of n-note n-grams found in the
    training split; None when no piece has n notes), ``longest_run_median`` and
    ``longest_run_max`` (notes), ``n_pieces`` and ``longest_run`` (per piece).
    """
    seqs = [np.asarray(s, np.int64).reshape(-1) for s in sequences]
    stats = index.matching_statistics(seqs) if seqs else []
    extra = 1 if intervals else 0  # L intervals span L + 1 notes
    longest = [int(ms.max()) + extra if ms.size else 0 for ms in stats]
    out = {}
    for n in sizes:
        need = n - extra
        copied = total = 0
        for ms in stats:
            grams = ms.size - need + 1
            if grams > 0 and need > 0:
                copied += int(np.count_nonzero(ms[:grams] >= need))
                total += grams
        out[f"copy_rate_{n}"] = copied / total if total else None
    out["longest_run_median"] = float(np.median(longest)) if longest else None
    out["longest_run_max"] = int(max(longest)) if longest else None
    out["n_pieces"] = len(seqs)
    out["longest_run"] = longest
    return out
