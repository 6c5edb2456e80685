"""Pure-Python (NumPy) codec backend: the reference the C++ core in cpp/src/codec/codec.cpp must
match token for token, note for note and message for message. Called through musgen.codec only."""

from __future__ import annotations

import numpy as np

from ..errors import CodecError
from ..score import DEFAULT_TEMPO, NOTE_DTYPE
from .config import DRUM_CHANNEL, MAX_TOKENS
from .grammar import violation_message

_MAX_UNITS = 1 << 61


def ticks_to_steps(t: np.ndarray, seg_ticks: np.ndarray, seg_rates: np.ndarray,
                   divisor: int) -> np.ndarray:
    """Grid steps (int64) of ticks ``t`` (int64, >= 0): round-half-up of U(t) / divisor."""
    cum = np.zeros(seg_ticks.shape[0], dtype=np.int64)
    if seg_ticks.shape[0] > 1:
        cum[1:] = np.cumsum(np.diff(seg_ticks) * seg_rates[:-1])
    i = np.searchsorted(seg_ticks, t, side="right") - 1
    units = cum[i] + (t - seg_ticks[i]) * seg_rates[i]
    return (2 * units + divisor) // (2 * divisor)


def note_steps(notes: np.ndarray, seg_ticks, seg_rates, divisor, config):
    """The notes the stream will hold, in stream order: (onset steps, duration steps >= 1,
    pitch code, velocity bin), all int64. Codes: pitched notes ``pitch - pitch_range[0]``, then
    drums ``n_pitches + pitch - drum_pitch_range[0]``. Durations are capped at
    ``config.note_cap_steps``; then of the notes sharing (onset, code) the longest, then the
    loudest, is kept. The fifth value is how many kept notes were longer than the cap."""
    lo, hi = config.pitch_range
    pitch = notes["pitch"].astype(np.int64)
    drum = notes["channel"] == DRUM_CHANNEL
    code = pitch - lo
    keep = ~drum & (pitch >= lo) & (pitch <= hi)
    if config.keep_drums:
        dlo, dhi = config.drum_pitch_range
        in_drums = drum & (pitch >= dlo) & (pitch <= dhi)
        code = np.where(drum, config.n_pitches + pitch - dlo, code)
        keep |= in_drums
    sel = notes[keep]
    code = code[keep]
    on = ticks_to_steps(sel["start"].astype(np.int64), seg_ticks, seg_rates, divisor)
    off = ticks_to_steps(sel["end"].astype(np.int64), seg_ticks, seg_rates, divisor)
    dur = np.maximum(off - on, 1)
    n_capped = 0
    if config.note_cap_steps:
        n_capped = int(np.count_nonzero(dur > config.note_cap_steps))
        dur = np.minimum(dur, config.note_cap_steps)
    vel = np.maximum(sel["velocity"].astype(np.int64), 1) >> config.velocity_shift
    order = np.lexsort((vel, dur, code, on))
    on, dur, code, vel = on[order], dur[order], code[order], vel[order]
    if on.size:
        last = np.ones(on.shape[0], dtype=bool)
        last[:-1] = (on[1:] != on[:-1]) | (code[1:] != code[:-1])
        on, dur, code, vel = on[last], dur[last], code[last], vel[last]
    return on, dur, code, vel, n_capped


def end_restrikes(on: np.ndarray, dur: np.ndarray, voice: np.ndarray) -> np.ndarray:
    """Note hygiene: a note still sounding when its voice (the same code, or part and code) is
    struck again ends at the re-strike. ``on`` ascending (stream order), one note per (onset,
    voice). Returns the new durations (int64)."""
    dur = dur.copy()
    if on.size > 1:
        order = np.lexsort((on, voice))
        o, v = on[order], voice[order]
        nxt = np.flatnonzero(v[1:] == v[:-1])  # order[nxt] is struck again at order[nxt + 1]
        i = order[nxt]
        dur[i] = np.minimum(dur[i], o[nxt + 1] - o[nxt])
    return dur


def clamp_silences(on: np.ndarray, dur: np.ndarray, limit: int, unit: int):
    """Shorten every silence (no note sounding) longer than ``limit`` steps by whole ``unit``s,
    to between ``limit`` and ``limit + unit - 1`` steps: the leading one (before the first note)
    too. ``on`` ascending. Returns (new onsets, number of silences shortened, steps removed)."""
    if not limit or on.size == 0:
        return on, 0, 0
    starts = np.flatnonzero(np.r_[True, on[1:] != on[:-1]])  # first note of every onset
    group_end = np.maximum.reduceat(on + dur, starts)
    sounding = np.r_[0, np.maximum.accumulate(group_end)[:-1]]  # before each onset
    silence = on[starts] - sounding
    cut = np.where(silence > limit, (silence - limit) // unit * unit, 0)
    if not cut.any():
        return on, 0, 0
    shift = np.cumsum(cut)
    group = np.cumsum(np.r_[True, on[1:] != on[:-1]]) - 1
    return on - shift[group], int(np.count_nonzero(cut)), int(shift[-1])


def hygienic_steps(notes: np.ndarray, seg_ticks, seg_rates, divisor, config):
    """``note_steps`` with re-struck notes ended and long silences shortened: what a version-1
    stream holds. Returns (onset, duration, code, velocity bin, report) with report = (notes
    capped, silences shortened, steps removed), or None when nothing was capped or shortened
    (as the C++ core reports it)."""
    on, dur, code, vel, capped = note_steps(notes, seg_ticks, seg_rates, divisor, config)
    dur = end_restrikes(on, dur, code)
    on, n_silences, removed = clamp_silences(on, dur, config.silence_steps,
                                             config.silence_unit)
    return on, dur, code, vel, ((capped, n_silences, removed)
                                if capped or n_silences else None)


def _spans(values: np.ndarray, largest: int):
    """Greedy split of every value into tokens of at most ``largest``: (counts, q, r) with
    q = value // largest full tokens, then one token of r = value % largest when r > 0."""
    q = values // largest
    r = values % largest
    return q + (r > 0), q, r


def _fill_spans(out, starts, counts, q, r, largest, base):
    """Write each span's tokens (``q`` tokens of ``largest``, then ``r`` if > 0) at ``starts``."""
    total = int(counts.sum())
    if total == 0:
        return
    owner = np.repeat(np.arange(counts.shape[0]), counts)
    first = np.cumsum(counts) - counts
    j = np.arange(total) - first[owner]  # index inside the span
    size = np.where(j < q[owner], largest, r[owner])
    out[starts[owner] + j] = base + size - 1


def encode_notes(notes: np.ndarray, seg_ticks, seg_rates, divisor, config):
    """(tokens int32, report) of a notes array; the checks of codec._prepare have been done."""
    on, dur, code, vel, report = hygienic_steps(notes, seg_ticks, seg_rates, divisor, config)
    gaps = np.diff(on, prepend=0)
    M, D = config.max_time_shift, config.max_duration
    n_shift, qs, rs = _spans(gaps, M)
    n_dur, qd, rd = _spans(dur, D)
    per_note = n_shift + 2 + n_dur
    total = int(per_note.sum()) + 2
    if total > MAX_TOKENS:
        raise CodecError(f"encode: the score needs more than {MAX_TOKENS} tokens (a gap or a "
                         "note is far too long)")
    starts = 1 + np.cumsum(per_note) - per_note
    out = np.empty(total, dtype=np.int32)
    out[0] = config.bos_id
    out[-1] = config.eos_id
    _fill_spans(out, starts, n_shift, qs, rs, M, config.time_base)
    at = starts + n_shift
    out[at] = config.pitch_base + code
    out[at + 1] = config.velocity_base + vel
    _fill_spans(out, at + 2, n_dur, qd, rd, D, config.duration_base)
    return out, report


def first_tempo(score, config) -> int:
    """The piece's first tempo (the last of the events on the earliest tempo tick), else 120 BPM."""
    tempos = score.tempos
    if tempos.size == 0:
        return DEFAULT_TEMPO
    t0 = tempos["tick"].min()
    value = int(tempos["tempo"][tempos["tick"] == t0][-1])
    return min(max(value, 1), 0xFFFFFF)


def decode_tokens(tokens: np.ndarray, grammar, config, num: int, den: int) -> np.ndarray:
    """Notes (NOTE_DTYPE, sorted) of a token sequence, walking the grammar's automaton.

    A note exists once its first Duration token is read, so a prefix cut inside a note drops it.
    Note hygiene: a note still sounding when its pitch is struck again ends there, and no note
    is longer than the config's cap.
    """
    table = grammar.table
    rows = _rows(grammar)
    V = config.vocab_size
    toks = tokens.tolist()
    pitch_base = config.pitch_base
    vel_base, dur_base = config.velocity_base, config.duration_base
    time_base = config.time_base
    on_l, code_l, vel_l, dur_l = [], [], [], []
    state = grammar.start_state
    clock = 0
    code = vel = 0
    prev_type_velocity = False
    n_states = len(rows)
    if not 0 <= state < n_states:
        raise CodecError("decode_tokens: bad grammar table")
    for pos, t in enumerate(toks):
        nxt = rows[state][t] if 0 <= t < V else -1
        if nxt < 0:
            raise CodecError(violation_message(config, table, state, pos, t))
        if nxt >= n_states:
            raise CodecError("decode_tokens: bad grammar table (state out of range)")
        state = nxt
        if t >= dur_base:
            if prev_type_velocity:
                on_l.append(clock)
                code_l.append(code)
                vel_l.append(vel)
                dur_l.append(t - dur_base + 1)
            elif dur_l:
                dur_l[-1] += t - dur_base + 1
            else:  # only a damaged table lets a Duration come first
                raise CodecError(f"decode_tokens: bad grammar table (Duration token {t} at "
                                 f"position {pos} continues no note)")
            prev_type_velocity = False
            continue
        prev_type_velocity = False
        if t >= vel_base:
            vel = t - vel_base
            prev_type_velocity = True
        elif t >= pitch_base:
            code = t - pitch_base
        elif t >= time_base:
            clock += t - time_base + 1
    n = len(on_l)
    on = np.array(on_l, dtype=np.int64)
    codes = np.array(code_l, dtype=np.int64)
    bins = np.array(vel_l, dtype=np.int64)
    dur = end_restrikes(on, np.array(dur_l, dtype=np.int64), codes)
    if config.note_cap_steps:
        dur = np.minimum(dur, config.note_cap_steps)
    if n and int((on + dur).max()) > _MAX_UNITS // (2 * num):
        raise CodecError(f"decode: the decoded time of {int((on + dur).max())} steps is too "
                         "large to convert to ticks")
    notes = np.zeros(n, dtype=NOTE_DTYPE)
    is_drum = codes >= config.n_pitches
    notes["channel"] = np.where(is_drum, DRUM_CHANNEL, 0)
    notes["pitch"] = np.where(is_drum, codes - config.n_pitches + config.drum_pitch_range[0],
                              codes + config.pitch_range[0])
    s = config.velocity_shift
    notes["velocity"] = (bins << s) + ((1 << s) >> 1)
    notes["start"] = (2 * on * num + den) // (2 * den)
    notes["end"] = (2 * (on + dur) * num + den) // (2 * den)
    return notes


_ROWS: dict = {}


def _rows(grammar) -> list:
    """The table as nested lists (much faster to index per token than a NumPy array)."""
    key = id(grammar)
    hit = _ROWS.get(key)
    if hit is None or hit[0] is not grammar:
        if len(_ROWS) > 8:
            _ROWS.clear()
        hit = (grammar, grammar.table.tolist())
        _ROWS[key] = hit
    return hit[1]
