"""Pure-Python (NumPy) codec version 2: the reference the C++ core (cpp/src/codec/v2_*.cpp)
must match token for token and note for note. Called through musgen.codec only.

``analyse`` turns a Score into a ``Piece`` (what the stream holds: parts, header conditions,
notes on the grid, bars, tempo and meter changes), ``piece_tokens`` writes its tokens, and
``decode_tokens`` reads tokens back into a ``Piece``; ``musgen.codec.assemble`` makes the
Score of a Piece, so ``quantize`` (analyse + assemble) and ``decode`` (tokens + assemble) meet
in one definition of the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import CodecError
from ..score import DEFAULT_TEMPO
from .config import DRUM_CHANNEL, MAX_TOKENS
from .grammar import violation_message
from .names import DRUMS

#: Krumhansl-Kessler key profiles (Krumhansl 1990), x100 so key finding runs on integers.
KK_MAJOR = (635, 223, 348, 233, 438, 409, 252, 519, 239, 366, 229, 288)
KK_MINOR = (633, 268, 352, 538, 260, 353, 254, 475, 398, 269, 334, 317)
#: A key signature is believed when its key correlates at least this well, relative to the
#: best key found on the notes.
KEY_SIGNATURE_TRUST = 0.9


@dataclass
class Piece:
    """A score as a version-2 stream holds it. Steps are grid steps of the OUTPUT timeline
    (after long silences were shortened). Notes are in stream order: (onset, part, code).

    Attributes
    ----------
    programs : list of int
        One per part, 0..127 or 128 (drums).
    key, style, density, tempo, meter : int
        Header: key index 0..23, style index (0 = unknown), density bin, initial tempo bin,
        initial meter (index into ``config.time_signatures``).
    on, dur, code, vel, part : int64 arrays [n]
        Onset and duration (steps), pitch code (pitched ``pitch - lo``, drums ``n_pitches +
        pitch - drum_lo``), velocity bin, part index.
    bars : int64 array [B]
        Start step of every bar the stream holds (one Bar token each); ``bar_meter`` [B] its
        meter. Filled by ``analyse`` (decode does not need them).
    tempo_changes, meter_changes : list of (step, value)
        Tempo bin changes at onsets, meter changes at bar starts (none at step 0: the header
        holds those).
    end : int
        Where a closing Bar ends the piece (-1: no closing bar).
    report : dict
        What encode shortened, cut, merged or dropped.
    """

    programs: list
    key: int = 0
    style: int = 0
    density: int = 0
    tempo: int = 0
    meter: int = 0
    on: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dur: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    code: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    vel: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    part: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bars: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bar_meter: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tempo_changes: list = field(default_factory=list)
    meter_changes: list = field(default_factory=list)
    end: int = -1
    report: dict = field(default_factory=dict)
    input_on: np.ndarray | None = None  # analyse: onsets in the input timeline


# ------------------------------------------------------------------------------ parts
def note_programs(notes: np.ndarray, programs: np.ndarray) -> np.ndarray:
    """The program of every note (int64): drums (channel 9) -> 128, else the last Program
    Change of its (track, channel) at or before its start tick (0 when there is none)."""
    n = notes.shape[0]
    out = np.zeros(n, np.int64)
    if n and programs.size:
        key_n = notes["track"].astype(np.int64) * 16 + notes["channel"]
        key_p = programs["track"].astype(np.int64) * 16 + programs["channel"]
        K = np.concatenate([key_p, key_n])
        T = np.concatenate([programs["tick"].astype(np.int64), notes["start"].astype(np.int64)])
        is_note = np.r_[np.zeros(key_p.size, np.int64), np.ones(n, np.int64)]
        order = np.lexsort((is_note, T, K))  # stable: programs of one tick keep file order
        pos = np.where(is_note[order] == 0, np.arange(order.size), -1)
        last = np.maximum.accumulate(pos)
        note_at = np.flatnonzero(is_note[order] == 1)
        which = last[note_at]
        ok = which >= 0
        ok[ok] = K[order[which[ok]]] == K[order[note_at[ok]]]
        prog = np.zeros(note_at.size, np.int64)
        prog[ok] = programs["program"][order[which[ok]]].astype(np.int64)
        out[order[note_at] - key_p.size] = prog
    out[notes["channel"] == DRUM_CHANNEL] = DRUMS
    return out


def assign_parts(notes: np.ndarray, programs: np.ndarray, max_parts: int):
    """Part index of every note, the program of every part, and a report.

    A part is a (track, channel, program) with notes; parts are ordered by (track, channel,
    first start tick, program). Beyond ``max_parts``, the last part that shares its (track,
    channel) with an earlier part is merged into the first such part; then the last one that
    shares its program; then the part with the fewest notes (the last of equals) is dropped
    (its notes get part -1)."""
    if notes.size == 0:
        return np.zeros(0, np.int64), [], {}
    prog = note_programs(notes, programs)
    tc = notes["track"].astype(np.int64) * 16 + notes["channel"]
    key = tc * 129 + prog
    uniq, inv = np.unique(key, return_inverse=True)
    first = np.full(uniq.size, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, inv, notes["start"].astype(np.int64))
    count = np.bincount(inv, minlength=uniq.size)
    u_tc, u_prog = uniq // 129, uniq % 129
    order = np.lexsort((u_prog, first, u_tc))
    parts = [[int(u_tc[i]), int(u_prog[i]), int(count[i]), [int(i)]] for i in order]
    merged = dropped = dropped_notes = 0
    while len(parts) > max_parts:
        j = _last_sharing(parts, 0)
        fld = 0
        if j is None:
            j, fld = _last_sharing(parts, 1), 1
        if j is not None:
            i = next(i for i in range(j) if parts[i][fld] == parts[j][fld])
            parts[i][2] += parts[j][2]
            parts[i][3] += parts[j][3]
            del parts[j]
            merged += 1
            continue
        fewest = min(range(len(parts)), key=lambda k: (parts[k][2], -k))
        dropped += 1
        dropped_notes += parts[fewest][2]
        del parts[fewest]
    part_of_key = np.full(uniq.size, -1, np.int64)
    for p, (_, _, _, members) in enumerate(parts):
        part_of_key[members] = p
    report = {}
    if merged:
        report["parts_merged"] = merged
    if dropped:
        report["parts_dropped"] = dropped
        report["notes_dropped"] = dropped_notes
    return part_of_key[inv], [p[1] for p in parts], report


def part_sources(notes, programs, config) -> list:
    """(track, channel) of every part a score's notes make, in part order (the part's first
    source when encode merged several into it): where a continuation of the score puts the
    notes the model writes in each part."""
    sel, _ = _kept_notes(notes, config)
    part, progs, _ = assign_parts(sel, programs, config.max_parts)
    out = []
    for p in range(len(progs)):
        first = np.flatnonzero(part == p)[0]
        out.append((int(sel["track"][first]), int(sel["channel"][first])))
    return out


def _last_sharing(parts, fld):
    """The last part whose field ``fld`` (0: track/channel, 1: program) an earlier part has."""
    for j in range(len(parts) - 1, 0, -1):
        if any(parts[i][fld] == parts[j][fld] for i in range(j)):
            return j
    return None


# ------------------------------------------------------------------------------ bars
class Bars:
    """The bar grid of a piece in the input timeline: meter segments ``(start, length, meter)``
    from the time signatures; a change takes effect at the first bar line at or after its
    step (several at one bar line: the last wins; one that changes nothing is dropped)."""

    def __init__(self, meter_steps: list, lengths, header: int):
        segs = [[0, int(lengths[header]), header]]
        for s, m in meter_steps:
            start, L, cur = segs[-1]
            b = start + max(0, -(-(s - start) // L)) * L
            if b == start and len(segs) > 1:
                segs[-1] = [b, int(lengths[m]), m]
                if segs[-2][2] == m:
                    segs.pop()
            elif m != cur and b > start:
                segs.append([b, int(lengths[m]), m])
        self.start = [s[0] for s in segs]
        self.length = [s[1] for s in segs]
        self.meter = [s[2] for s in segs]

    def at(self, t: int) -> tuple:
        """(segment, bar in segment) of the bar holding step t >= 0."""
        k = _bisect_right(self.start, t) - 1
        return k, (t - self.start[k]) // self.length[k]

    def begin(self, bar: tuple) -> int:
        return self.start[bar[0]] + bar[1] * self.length[bar[0]]

    def first_at_or_after(self, t: int) -> tuple:
        k, j = self.at(t)
        return (k, j) if self.begin((k, j)) == t else self.following((k, j))

    def following(self, bar: tuple) -> tuple:
        k, j = bar
        if k + 1 < len(self.start) and self.begin((k, j + 1)) >= self.start[k + 1]:
            return k + 1, 0
        return k, j + 1

    def count(self, a: tuple, b: tuple) -> int:
        """Bars from a (inclusive) to b (exclusive)."""
        if b <= a:
            return 0
        if a[0] == b[0]:
            return b[1] - a[1]
        n = self._bars_in(a[0]) - a[1]
        for k in range(a[0] + 1, b[0]):
            n += self._bars_in(k)
        return n + b[1]

    def _bars_in(self, k: int) -> int:
        return (self.start[k + 1] - self.start[k]) // self.length[k]


def _bisect_right(a: list, x) -> int:
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


# ------------------------------------------------------------------------------ analysis
@dataclass
class Events:
    """What a score holds besides its notes, as both backends take it (the facade makes it):
    Program Changes (PROGRAM_DTYPE), tempo events (ticks, Tempo bins; none for SMPTE files),
    time signatures (ticks, index of the TimeSig token they map to), the first key signature's
    key (-1: none or out of range) and the piece's style index."""

    programs: np.ndarray
    tempo_ticks: np.ndarray
    tempo_bins: np.ndarray
    meter_ticks: np.ndarray
    meter_index: np.ndarray
    meta_key: int
    style: int


def analyse(notes, ev: Events, seg_ticks, seg_rates, divisor, config) -> Piece:
    """Everything a version-2 stream holds (see ``Piece``); ``notes`` are the score's notes
    after the facade's checks, ticks convert to steps through the time base."""
    from ._python import end_restrikes, ticks_to_steps

    hi = int(max(notes["start"].max(), notes["end"].max())) if notes.size else 0

    def steps(t):
        # events past the last note change nothing; clipping them keeps U(t) in int64
        t = np.minimum(np.asarray(t, np.int64), hi + 1)
        return ticks_to_steps(t, seg_ticks, seg_rates, divisor)

    sel, code = _kept_notes(notes, config)
    part, programs, report = assign_parts(sel, ev.programs, config.max_parts)
    keep = part >= 0
    sel, code, part = sel[keep], code[keep], part[keep]
    on = steps(sel["start"])
    dur = np.maximum(steps(sel["end"]) - on, 1)
    cap = config.note_cap_steps
    if cap:
        n_capped = int(np.count_nonzero(dur > cap))
        if n_capped:
            report["notes_capped"] = n_capped
        dur = np.minimum(dur, cap)
    vel = np.maximum(sel["velocity"].astype(np.int64), 1) >> config.velocity_shift
    order = np.lexsort((vel, dur, code, part, on))
    on, dur, code, vel, part = on[order], dur[order], code[order], vel[order], part[order]
    if on.size:
        last = np.ones(on.size, bool)
        last[:-1] = (on[1:] != on[:-1]) | (part[1:] != part[:-1]) | (code[1:] != code[:-1])
        on, dur, code, vel, part = on[last], dur[last], code[last], vel[last], part[last]
    n_codes = config.n_pitches + config.n_drums
    dur = end_restrikes(on, dur, part * n_codes + code)
    piece = Piece(programs=programs or [0], style=ev.style, on=on, dur=dur, code=code,
                  vel=vel, part=part, report=report)
    _meter_and_bars(piece, steps(ev.meter_ticks).tolist(), ev.meter_index.tolist(), config)
    _tempo_changes(piece, steps(ev.tempo_ticks), ev.tempo_bins.tolist(), config)
    piece.key = find_key(piece, ev.meta_key, config)
    piece.density = density_bin(piece, config)
    return piece


def _kept_notes(notes, config):
    """The notes the stream keeps (pitched in range; drums in range when kept) and their
    codes."""
    lo, hi = config.pitch_range
    pitch = notes["pitch"].astype(np.int64)
    drum = notes["channel"] == DRUM_CHANNEL
    keep = ~drum & (pitch >= lo) & (pitch <= hi)
    code = pitch - lo
    if config.keep_drums:
        dlo, dhi = config.drum_pitch_range
        keep |= drum & (pitch >= dlo) & (pitch <= dhi)
        code = np.where(drum, config.n_pitches + pitch - dlo, code)
    return notes[keep], code[keep]


def _meter_and_bars(piece: Piece, st: list, idx: list, config) -> None:
    """The bars the stream holds and where the onsets land in the output timeline: silent bars
    (no onset, nothing sounding) beyond ``max_silence_beats`` in a row are removed. ``st`` and
    ``idx``: the time signatures' steps and meter indices."""
    header = config.meter_index(4, 4)
    for s, m in zip(st, idx):
        if s <= 0:
            header = m
    lengths = config.meter_bar_steps
    grid = Bars([(s, m) for s, m in zip(st, idx) if s > 0], lengths, header)
    piece.meter = header
    limit = config.silence_steps
    on, dur = piece.on, piece.dur
    bars, meters, new_on = [], [], np.empty_like(on)
    out_at = 0  # output start of the next bar
    removed_steps = shortened = 0
    prev = None  # the last bar emitted (input timeline)
    sounding = 0
    if on.size:
        starts = np.flatnonzero(np.r_[True, on[1:] != on[:-1]])
        group_end = np.maximum.reduceat(on + dur, starts)
    else:
        starts = group_end = np.zeros(0, np.int64)
    total_bars = 0

    def emit(bar):
        nonlocal out_at, total_bars
        total_bars += 1
        if total_bars + on.size * 3 > MAX_TOKENS:
            raise CodecError(f"encode: the score needs more than {MAX_TOKENS} tokens (a gap "
                             "or a note is far too long)")
        bars.append(out_at)
        meters.append(grid.meter[bar[0]])
        out_at += grid.length[bar[0]]

    for g, first in enumerate(starts.tolist()):
        t = int(on[first])
        bar_t = grid.at(t)
        stop = starts[g + 1] if g + 1 < starts.size else on.size
        if bar_t == prev:  # another onset in the bar
            new_on[first:stop] = bars[-1] + (t - grid.begin(bar_t))
            sounding = max(sounding, int(group_end[g]))
            continue
        nxt = (0, 0) if prev is None else grid.following(prev)
        silent_from = max(nxt, grid.first_at_or_after(sounding)) if sounding else nxt
        silent_from = min(silent_from, bar_t)
        if grid.count(nxt, silent_from) + len(bars) + on.size * 3 > MAX_TOKENS or (
                not limit and grid.count(nxt, bar_t) > MAX_TOKENS):
            raise CodecError(f"encode: the score needs more than {MAX_TOKENS} tokens (a gap "
                             "or a note is far too long)")
        b = nxt
        while b < silent_from:  # bars where something still sounds
            emit(b)
            b = grid.following(b)
        kept = 0
        while b < bar_t and (not limit or kept < limit):  # the silence kept
            kept += grid.length[b[0]]
            emit(b)
            b = grid.following(b)
        if b < bar_t:  # the rest of the silence goes
            shortened += 1
            removed_steps += grid.begin(bar_t) - grid.begin(b)
        emit(bar_t)
        new_on[first:stop] = bars[-1] + (t - grid.begin(bar_t))
        sounding = max(sounding, int(group_end[g]))
        prev = bar_t
    piece.on = new_on
    piece.bars = np.array(bars, np.int64)
    piece.bar_meter = np.array(meters, np.int64)
    last = header
    for start, m in zip(bars, meters):
        if m != last:
            piece.meter_changes.append((start, m))
            last = m
    if shortened:
        piece.report["silences_shortened"] = shortened
        piece.report["beats_removed"] = removed_steps / config.steps_per_beat
    piece.input_on = on  # for the tempo lookup


def _tempo_changes(piece: Piece, t_steps: np.ndarray, bins: list, config) -> None:
    """Header tempo bin (the tempo in effect at step 0) and a change wherever the bin in effect
    at an onset differs from the last one written. ``t_steps``, ``bins``: the tempo events'
    steps (non-decreasing) and bins."""
    default = config.tempo_bin(DEFAULT_TEMPO)

    def bin_at(s):
        i = int(np.searchsorted(t_steps, s, side="right")) - 1
        return bins[i] if i >= 0 else default

    piece.tempo = bin_at(0)
    cur = piece.tempo
    inp = piece.input_on
    if inp.size:
        starts = np.flatnonzero(np.r_[True, inp[1:] != inp[:-1]])
        for first in starts.tolist():
            b = bin_at(int(inp[first]))
            if b != cur:
                piece.tempo_changes.append((int(piece.on[first]), b))
                cur = b


def key_profile_scores(hist) -> list:
    """Krumhansl-Schmuckler: for the 24 keys (index = tonic + 12 x minor) the correlation of the
    duration-weighted pitch-class histogram with the key's profile, up to a factor common to
    all keys (computed exactly on integers, then one float division: both backends agree)."""
    H = sum(hist)
    out = []
    for prof in (KK_MAJOR, KK_MINOR):
        P = sum(prof)
        spread = 12 * sum(p * p for p in prof) - P * P
        for tonic in range(12):
            c = 12 * sum(hist[i] * prof[(i - tonic) % 12] for i in range(12)) - H * P
            out.append(float(c) / math.sqrt(float(spread)))
    return out


def choose_key(hist, meta: int | None) -> int:
    """The Key token: the key signature's key when it is plausible (its correlation at least
    KEY_SIGNATURE_TRUST x the best key's; a major signature may also stand for its relative
    minor, the better of the two), else the best key found on the notes (C major when there is
    no pitched note and no signature)."""
    if sum(hist) == 0:
        return 0 if meta is None else meta
    r = key_profile_scores(hist)
    best = 0
    for k in range(1, 24):
        if r[k] > r[best]:
            best = k
    if meta is None:
        return best
    pick = meta
    if meta < 12:
        rel = (meta + 9) % 12 + 12
        if r[rel] > r[meta]:
            pick = rel
    if r[best] <= 0.0 or r[pick] >= KEY_SIGNATURE_TRUST * r[best]:
        return pick
    return best


def find_key(piece: Piece, meta_key: int, config) -> int:
    """Key index of the piece: its pitched notes' histogram (duration in steps, each note
    counting at most 32 beats) and its first key signature's key (-1: none)."""
    pitched = piece.code < config.n_pitches
    pc = (piece.code[pitched] + config.pitch_range[0]) % 12
    weight = np.minimum(piece.dur[pitched], 32 * config.steps_per_beat)
    acc = np.zeros(12, np.int64)
    np.add.at(acc, pc, weight)
    hist = [int(x) for x in acc]
    return choose_key(hist, None if meta_key < 0 else meta_key)


def density_bin(piece: Piece, config) -> int:
    """Density bin: notes per beat over the piece (to the last note's end, at least a beat),
    compared with the bin edges in integers."""
    n = int(piece.on.size)
    spb = config.steps_per_beat
    length = max(int((piece.on + piece.dur).max()) if n else 0, spb)
    lhs = n * spb * 1000
    return sum(1 for e in config.density_bounds_milli.tolist() if lhs >= e * length)


# ------------------------------------------------------------------------------ tokens
def piece_tokens(piece: Piece, config) -> np.ndarray:
    """The token stream of a Piece (int32): BOS, header, bars and notes, EOS."""
    c = config
    out = [c.bos_id]
    out += [c.program_base + p for p in piece.programs]
    out += [c.key_base + piece.key, c.style_base + piece.style, c.density_base + piece.density,
            c.tempo_base + piece.tempo, c.timesig_base + piece.meter]
    M, D = c.max_time_shift, c.max_duration
    tempo_at = dict(piece.tempo_changes)
    bars, bar_meter = piece.bars.tolist(), piece.bar_meter.tolist()
    on, dur, code = piece.on.tolist(), piece.dur.tolist(), piece.code.tolist()
    vel, part = piece.vel.tolist(), piece.part.tolist()
    meter = piece.meter
    b = -1
    clock = 0
    cur_part = 0
    for i in range(len(on)):
        t = on[i]
        if i == 0 or t != on[i - 1]:
            while b + 1 < len(bars) and bars[b + 1] <= t:
                b += 1
                out.append(c.bar_id)
                if bar_meter[b] != meter:
                    meter = bar_meter[b]
                    out.append(c.timesig_base + meter)
                clock = bars[b]
            if t > clock:
                _span(out, t - clock, M, c.time_base)
                clock = t
            if t in tempo_at:
                out.append(c.tempo_base + tempo_at[t])
        if part[i] != cur_part:
            out.append(c.part_base + part[i])
            cur_part = part[i]
        out += [c.pitch_base + code[i], c.velocity_base + vel[i]]
        _span(out, dur[i], D, c.duration_base)
        if len(out) > MAX_TOKENS:
            break
    out.append(c.eos_id)
    if len(out) > MAX_TOKENS:
        raise CodecError(f"encode: the score needs more than {MAX_TOKENS} tokens (a gap or a "
                         "note is far too long)")
    return np.array(out, np.int32)


def _span(out: list, value: int, largest: int, base: int) -> None:
    q, r = divmod(value, largest)
    if q > MAX_TOKENS:
        raise CodecError(f"encode: the score needs more than {MAX_TOKENS} tokens (a gap or a "
                         "note is far too long)")
    out += [base + largest - 1] * q
    if r:
        out.append(base + r - 1)


def encode(notes, events: Events, seg_ticks, seg_rates, divisor, config):
    """(tokens, report) of one score; the facade's checks have been done."""
    piece = analyse(notes, events, seg_ticks, seg_rates, divisor, config)
    return piece_tokens(piece, config), piece.report


# ------------------------------------------------------------------------------ decode
def decode_tokens(tokens: np.ndarray, grammar, config) -> Piece:
    """The Piece of a token sequence (complete, or a grammar-valid prefix), walking the
    automaton; note hygiene (re-strikes, the closing bar, the cap) applied."""
    from ._python import _rows

    c = config
    table = grammar.table
    rows = _rows(grammar)
    V = c.vocab_size
    programs: list = []
    head = {}
    on_l, dur_l, code_l, vel_l, part_l = [], [], [], [], []
    tempo_changes, meter_changes = [], []
    lengths = c.meter_bar_steps.tolist()
    state = grammar.start_state
    clock = bar_start = 0
    bar_len = 0
    started = False
    part = code = vel = 0
    after_velocity = False
    prev_bar = False
    end = -1
    n_states = len(rows)
    if not 0 <= state < n_states:
        raise CodecError("decode_tokens: bad grammar table")
    for pos, t in enumerate(tokens.tolist()):
        nxt = rows[state][t] if 0 <= t < V else -1
        if nxt < 0:
            raise CodecError(violation_message(c, table, state, pos, t))
        if nxt >= n_states:
            raise CodecError("decode_tokens: bad grammar table (state out of range)")
        state = nxt
        was_bar, prev_bar = prev_bar, False
        if t >= c.duration_base:
            d = t - c.duration_base + 1
            if after_velocity:
                on_l.append(clock)
                dur_l.append(d)
                code_l.append(code)
                vel_l.append(vel)
                part_l.append(part)
            elif dur_l:
                dur_l[-1] += d
            else:  # only a damaged table lets a Duration come first
                raise CodecError(f"decode_tokens: bad grammar table (Duration token {t} at "
                                 f"position {pos} continues no note)")
            after_velocity = False
            continue
        after_velocity = False
        if t >= c.velocity_base:
            vel = t - c.velocity_base
            after_velocity = True
        elif t >= c.pitch_base:
            code = t - c.pitch_base
        elif t >= c.part_base:
            part = min(t - c.part_base, max(len(programs) - 1, 0))
        elif t >= c.time_base:
            clock += t - c.time_base + 1
        elif t == c.bar_id:
            if started:
                bar_start += bar_len * ((clock - bar_start) // bar_len + 1)
            started = True
            clock = bar_start
            prev_bar = True
        elif t >= c.timesig_base:
            m = t - c.timesig_base
            if started:
                meter_changes.append((bar_start, m))
            else:
                head["meter"] = m
            bar_len = lengths[m]
        elif t >= c.tempo_base:
            if "tempo" in head:
                tempo_changes.append((clock, t - c.tempo_base))
            else:
                head["tempo"] = t - c.tempo_base
        elif t >= c.density_base:
            head["density"] = t - c.density_base
        elif t >= c.style_base:
            head["style"] = t - c.style_base
        elif t >= c.key_base:
            head["key"] = t - c.key_base
        elif t >= c.program_base:
            programs.append(t - c.program_base)
        elif t == c.eos_id and was_bar:
            end = bar_start
    piece = Piece(programs=programs, key=head.get("key", 0), style=head.get("style", 0),
                  density=head.get("density", 0), tempo=head.get("tempo", -1),
                  meter=head.get("meter", -1), on=np.array(on_l, np.int64),
                  dur=np.array(dur_l, np.int64), code=np.array(code_l, np.int64),
                  vel=np.array(vel_l, np.int64), part=np.array(part_l, np.int64),
                  tempo_changes=tempo_changes, meter_changes=meter_changes, end=end)
    apply_hygiene(piece, config)
    return piece


def voices(piece: Piece, config) -> np.ndarray:
    """The key a decoded note sounds on, as (part, channel 9 or not, MIDI pitch): a DrumPitch,
    or any note of a drum part, sounds on channel 9."""
    drum_part = np.array([p == DRUMS for p in piece.programs] or [False], bool)
    drum = (piece.code >= config.n_pitches) | drum_part[np.minimum(piece.part, drum_part.size - 1)]
    pitch = np.where(piece.code >= config.n_pitches,
                     piece.code - config.n_pitches + config.drum_pitch_range[0],
                     piece.code + config.pitch_range[0])
    return piece.part * 256 + drum * 128 + pitch


def apply_hygiene(piece: Piece, config) -> None:
    """Decode's note hygiene: of the notes one part strikes on one key (``voices``) at one
    onset the longest (then the loudest) stays; a note still sounding when its part strikes the
    same key again ends there; at a closing bar (``Bar EOS``) every note sounding at the last
    onset is held to the bar line and nothing sounds past it; no note is longer than the cap."""
    from ._python import end_restrikes

    voice = voices(piece, config)
    if piece.on.size:  # one note per (onset, key): the longest, then the loudest, stays
        order = np.lexsort((piece.vel, piece.dur, voice, piece.on))
        o, vo = piece.on[order], voice[order]
        drop = np.zeros(o.size, bool)
        drop[order[:-1][(o[1:] == o[:-1]) & (vo[1:] == vo[:-1])]] = True
        if drop.any():
            keep = ~drop
            for name in ("on", "dur", "code", "vel", "part"):
                setattr(piece, name, getattr(piece, name)[keep])
            voice = voice[keep]
    on = piece.on
    dur = end_restrikes(on, piece.dur, voice)
    if piece.end >= 0 and on.size:
        last = int(on.max())
        held = on + dur > last
        dur = np.where(held | (on == last), piece.end - on, np.minimum(dur, piece.end - on))
    if config.note_cap_steps:
        dur = np.minimum(dur, config.note_cap_steps)
    piece.dur = dur
