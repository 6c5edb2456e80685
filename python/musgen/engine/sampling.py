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

from . import rules as rule_mod
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


def _start_reasons(primer, states, can_end, eos_id, length, max_tokens, rules) -> np.ndarray:
    """Why each stream has nothing to generate (0: it has), as the C++ prepare_request."""
    n = primer.shape[0]
    out = np.zeros(n, np.int8)
    for s in range(n):
        if eos_id >= 0 and primer[s, -1] == eos_id:
            out[s] = rule_mod.EOS_AFTER
        elif max_tokens == 0:
            out[s] = rule_mod.CUT
        elif length <= 0 and rules is not None and rules.ending != "none":
            out[s] = rule_mod.CLOSED
        elif length <= 0 and can_end[states[s]]:
            out[s] = rule_mod.BUDGET
    return out


class _LegacyStream:
    """One stream's budget without rules: the stop rule of the loop before the rules existed."""

    def __init__(self, kind, length, clock_steps, is_note):
        self.kind, self.length, self.clock, self.notes = kind, length, clock_steps, is_note
        self.count = 0

    def after(self, v, eos_id, n_tokens, cap, next_can_end) -> int:
        self.count += 1 if self.kind == 0 else (int(self.notes[v]) if self.kind == 1
                                                else int(self.clock[v]))
        if v == eos_id:
            return rule_mod.EOS_AFTER if self.count >= self.length else rule_mod.EOS_EARLY
        if self.count >= self.length and next_can_end:
            return rule_mod.BUDGET
        if n_tokens >= cap:
            return rule_mod.CUT
        return 0


def numpy_generate(model, primer, table, start_state, can_end, eos_id, clock_steps, is_note,
                   length_kind, length, max_tokens, seeds, temperature, top_k, top_p,
                   progress=None, rules=None):
    """The sampling loop of ``LstmEngine::generate`` in NumPy (same arguments, same results).

    ``rules`` (a ``musgen.engine.rules.Rules``) adds the generation rules; None runs the grammar
    and the budget stop only. Finished streams are not dropped from the batch here (the results
    do not depend on it). Returns (list of n int32 arrays, reasons int8 [n]).
    """
    from ..errors import CodecError

    n, plen = primer.shape
    states = check_primer(primer, table, start_state, eos_id)
    reasons = _start_reasons(primer, states, can_end, eos_id, length, max_tokens, rules)
    out = [[] for _ in range(n)]
    if n == 0:
        return [np.zeros(0, np.int32) for _ in range(n)], reasons
    tracks = []
    for s in range(n):
        if rules is None:
            tracks.append(_LegacyStream(length_kind, length, clock_steps, is_note))
        else:
            tracks.append(rule_mod.start_state(rules.tables, rules, length_kind, length,
                                               primer[s]))
    if rules is not None and "needs_note" not in rules.derived:
        needs, kinds = rule_mod.derive_state_flags(table, rules.tables, rules.allowed, eos_id)
        rules.derived.update(needs_note=needs, note_kinds=kinds)
    if hasattr(model, "warm_up"):
        logits, state = model.warm_up(primer)
    else:  # any model with the engine's zero_state / step interface (e.g. an n-gram)
        state = model.zero_state(n)
        for t in range(plen):
            logits, state = model.step(primer[:, t], state)
    nxt = np.zeros(n, dtype=np.int64)
    while not reasons.all():
        u = philox_uniform(seeds, np.array([len(o) for o in out], np.uint64),
                           np.arange(n, dtype=np.uint64))
        sampled = 0
        for s in np.flatnonzero(reasons == 0):
            st = int(states[s])
            row = table[st]
            if rules is None:
                allowed = row >= 0
                if eos_id >= 0 and not can_end[st]:
                    allowed[eos_id] = False
                lg = logits[s]
            else:
                allowed, bias = rule_mod.step_mask_bias(tracks[s], rules.tables, rules, row,
                                                        bool(can_end[st]), eos_id)
                lg = logits[s] if bias is None else logits[s] + bias
            v = sample_token(lg, allowed, float(temperature[s]), int(top_k[s]),
                             float(top_p[s]), float(u[s]))
            if v < 0:
                raise CodecError(f"generate: grammar state {st} allows no token (stream {s}, "
                                 f"step {len(out[s])})")
            out[s].append(v)
            sampled += 1
            nxt[s] = v
            states[s] = table[st, v]
            next_can_end = bool(can_end[states[s]])
            if rules is None:
                reasons[s] = tracks[s].after(v, eos_id, len(out[s]), max_tokens, next_can_end)
            else:
                rule_mod.record(tracks[s], rules.tables, rules, length_kind, length, v, True)
                reasons[s] = rule_mod.stop_reason(tracks[s], rules, v, eos_id, len(out[s]),
                                                  max_tokens, next_can_end)
        if progress is not None:
            progress(sampled)
        if reasons.all():
            break
        logits, state = model.step(nxt, state)
    return [np.array(o, np.int32) for o in out], reasons
