"""Sampling rules shared by every backend, stated in NumPy (the C++ loop in engine.cpp and the
CUDA kernels follow this order of operations exactly, in float64, in token-id order).

For one stream at generated step ``t`` with float32 logits ``l`` and grammar state ``s``:

1. allowed(v) = ``table[s, v] >= 0`` and (``v != eos_id`` or ``can_end[s]``).
2. temperature 0: the allowed token with the largest float32 logit, lowest id on ties.
3. otherwise ``x_v = float64(l_v) / T``, ``w_v = exp(x_v - max_allowed x)`` for allowed tokens.
4. top-k (k > 0 and fewer than the allowed count): keep the k largest ``w`` (ties: lowest id).
5. top-p (0 < p < 1): order the kept tokens by (``w`` descending, id ascending) and keep the
   shortest prefix whose running sum, in that order, is ``>= p * sum(kept w, id order)``.
6. ``u = philox_uniform(seed, t, stream)``; ``target = u * sum(kept w, id order)``; the sampled
   token is the first kept id (ascending) whose running sum exceeds ``target`` (else the last).

Sums run sequentially (``np.cumsum``), never pairwise, so they round as the C++ loop does.
"""

from __future__ import annotations

import numpy as np

from .philox import philox_uniform

__all__ = ["sample_token", "check_primer", "numpy_generate"]


def sample_token(logits: np.ndarray, allowed: np.ndarray, temperature: float, top_k: int,
                 top_p: float, u: float) -> int:
    """Sample one token id from float32 ``logits`` [V] under the boolean mask ``allowed`` [V].

    Returns -1 when no token is allowed.
    """
    ids = np.flatnonzero(allowed)
    if ids.size == 0:
        return -1
    if temperature == 0:
        sub = logits[ids]
        return int(ids[int(np.argmax(sub))])  # argmax returns the first (lowest id) maximum
    x = logits[ids].astype(np.float64) / float(np.float32(temperature))
    w = np.exp(x - x.max())
    keep = np.ones(ids.size, bool)
    use_k = 0 < top_k < ids.size
    use_p = 0.0 < top_p < 1.0
    if use_k or use_p:
        order = np.lexsort((ids, -w))  # w descending, then id ascending
        n_keep = top_k if use_k else ids.size
        keep[order[n_keep:]] = False
        if use_p:
            total = np.cumsum(w[keep])[-1]
            goal = float(np.float32(top_p)) * total
            run = np.cumsum(w[order[:n_keep]])
            hit = np.flatnonzero(run >= goal)
            last = int(hit[0]) if hit.size else n_keep - 1
            keep[order[last + 1:n_keep]] = False
    kid, kw = ids[keep], w[keep]
    run = np.cumsum(kw)
    target = u * run[-1]
    pos = int(np.searchsorted(run, target, side="right"))
    return int(kid[min(pos, kid.size - 1)])


def check_primer(primer: np.ndarray, table: np.ndarray, start_state: int, eos_id: int) -> np.ndarray:
    """Walk every stream's primer through the grammar -> the state after it, int [n].

    Raises CodecError at the first token the grammar forbids (as the C++ loop does).
    """
    from ..errors import CodecError

    n, plen = primer.shape
    states = np.full(n, start_state, dtype=np.int64)
    for t in range(plen):
        tok = primer[:, t]
        nxt = table[states, tok]
        bad = np.flatnonzero((nxt < 0) | ((tok == eos_id) & (t + 1 < plen)))
        if bad.size:
            s = int(bad[0])
            raise CodecError(f"generate: primer token {int(tok[s])} at position {t} of stream "
                             f"{s} is not allowed by the grammar in state {int(states[s])}")
        states = nxt.astype(np.int64)
    return states


def numpy_generate(model, primer, table, start_state, can_end, eos_id, clock_steps, is_note,
                   length_kind, length, max_tokens, seeds, temperature, top_k, top_p,
                   progress=None):
    """The sampling loop of ``LstmEngine::generate`` in NumPy (same arguments, same results).

    Returns (tokens int32 [n, max_tokens] padded with -1, lengths int64 [n]).
    """
    from ..errors import CodecError

    n, plen = primer.shape
    states = check_primer(primer, table, start_state, eos_id)
    out = np.full((n, max_tokens), -1, dtype=np.int32)
    lengths = np.zeros(n, dtype=np.int64)
    count = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    if n == 0:
        return out, lengths
    state = model.zero_state(n)
    for t in range(plen):
        logits, state = model.step(primer[:, t], state)
    for s in range(n):
        if ((eos_id >= 0 and primer[s, -1] == eos_id) or max_tokens == 0
                or (length <= 0 and can_end[states[s]])):
            done[s] = True
    nxt = np.zeros(n, dtype=np.int64)
    step = 0
    while not done.all():
        u = philox_uniform(seeds, step, np.arange(n, dtype=np.uint64))
        sampled = 0
        for s in np.flatnonzero(~done):
            st = int(states[s])
            allowed = table[st] >= 0
            if eos_id >= 0 and not can_end[st]:
                allowed[eos_id] = False
            v = sample_token(logits[s], allowed, float(temperature[s]), int(top_k[s]),
                             float(top_p[s]), float(u[s]))
            if v < 0:
                raise CodecError(f"generate: grammar state {st} allows no token (stream {s})")
            out[s, lengths[s]] = v
            lengths[s] += 1
            sampled += 1
            nxt[s] = v
            states[s] = table[st, v]
            count[s] += 1 if length_kind == 0 else (int(is_note[v]) if length_kind == 1
                                                     else int(clock_steps[v]))
            if (v == eos_id or lengths[s] >= max_tokens
                    or (count[s] >= length and can_end[states[s]])):
                done[s] = True
        if progress is not None:
            progress(sampled)
        if done.all():
            break
        logits, state = model.step(nxt, state)
        step += 1
    return out, lengths

