"""The token grammar: a deterministic finite automaton over token ids, built from a
``CodecConfig``. Generation masks every token it forbids, so every generated sequence decodes;
the C++ decoder and every engine receive its table.

Version 2's automaton enforces the header (BOS, 1..max_parts Program tokens, Key, Style,
Density, Tempo, TimeSig), a Bar before the first note, TimeSig only right after a Bar, Tempo
only where an onset begins (after a Bar, TimeSig or TimeShift, before that onset's first note),
a note after every Part token, and version 1's note rules (Pitch/DrumPitch, Velocity,
Duration+, pitches ascending within an onset and part). What a table of this size cannot check
(the bar clock, Part indices below the number of declared parts, parts ascending within an
onset) is left to the engine's rules, driven by ``codec.token_tables``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import CodecError
from .config import CodecConfig, default_config
from .vocab import TYPE_SPECIAL

__all__ = ["Grammar", "grammar", "grammar_mask", "violation_message", "S_START", "S_END"]


@dataclass(frozen=True, eq=False)
class Grammar:
    """The token grammar as a deterministic finite automaton.

    Attributes
    ----------
    table : np.int32 [n_states, vocab]
        Next state after a token, -1 where the token is forbidden.
    start_state : int
        The state before the first token (only BOS is allowed there).
    can_end : np.bool_ [n_states]
        EOS is allowed: the tokens so far decode to a complete score. After EOS (state
        ``S_END``) only PAD may follow, and can_end is False there.
    state_names : list of str
        One per state, for debugging ("onset 0", "after Pitch_60 Velocity", ...).

    Every sequence the automaton accepts, and every prefix of one, decodes without error; and
    a complete sequence that needs no note hygiene (no re-struck or over-long note, no long
    silence) is a fixed point: ``encode(decode(tokens)) == tokens``; any complete sequence is
    one after a first round.
    """

    table: np.ndarray
    start_state: int
    can_end: np.ndarray
    config: CodecConfig
    state_names: list = field(default_factory=list)

    @property
    def n_states(self) -> int:
        return int(self.table.shape[0])

    def mask(self, state: int) -> np.ndarray:
        """bool [vocab]: the tokens allowed in ``state``."""
        return self.table[state] >= 0

    grammar_mask = mask

    def walk(self, tokens) -> int:
        """The state after ``tokens`` from ``start_state``; CodecError at the first violation."""
        state = self.start_state
        table = self.table
        vocab = table.shape[1]
        for pos, t in enumerate(np.asarray(tokens).tolist()):
            nxt = table[state, t] if 0 <= t < vocab else -1
            if nxt < 0:
                raise CodecError(violation_message(self.config, table, state, pos, t))
            state = int(nxt)
        return state


# State numbering (same in the C++ decoder, which receives the table).
S_START, S_END, S_ONSET0, S_SHIFTED, S_SHIFTED_MAX = 0, 1, 2, 3, 4
_N_FIXED = 5  # then for every pitch code c: NOTE_PITCH, NOTE_VELOCITY, NOTE_DURATION_MAX, DONE


def grammar(config: CodecConfig | None = None) -> Grammar:
    """The grammar of ``config`` (cached per config)."""
    config = config or default_config()
    return _grammar_cached(config)


_GRAMMARS: dict = {}


def _grammar_cached(config: CodecConfig) -> Grammar:
    g = _GRAMMARS.get(config)
    if g is None:
        g = _build_grammar(config)
        if len(_GRAMMARS) > 32:
            _GRAMMARS.clear()
        _GRAMMARS[config] = g
    return g


def _build_grammar(c: CodecConfig) -> Grammar:
    return _build_v2(c) if c.version == 2 else _build_v1(c)


def _build_v1(c: CodecConfig) -> Grammar:
    """States: START, END (after EOS: only PAD), ONSET0 (after BOS: nothing sounded yet),
    SHIFTED (after a TimeShift shorter than the longest: a note must follow), SHIFTED_MAX (after
    the longest TimeShift: more time or a note), and for each pitch code c (pitched pitches,
    then drums) PITCH_c, VELOCITY_c, DURMAX_c (after the longest Duration: more duration or
    the note is done) and DONE_c (note done; a later note at this onset needs a higher code)."""
    n_codes = c.n_pitches + c.n_drums
    n_states = _N_FIXED + 4 * n_codes
    V = c.vocab_size
    T = np.full((n_states, V), -1, dtype=np.int32)
    tb, M = c.time_base, c.max_time_shift
    db, D = c.duration_base, c.max_duration
    codes = np.arange(n_codes)
    note_ids = c.pitch_base + codes  # pitch and drum blocks are contiguous, in code order
    PITCH = _N_FIXED + 4 * codes
    VEL, DURMAX, DONE = PITCH + 1, PITCH + 2, PITCH + 3

    def time_and_notes(rows, lowest_code):
        """Rows where a TimeShift or a note (code >= lowest_code) may come."""
        rows = np.atleast_1d(rows)
        for r, low in zip(rows.tolist(), np.broadcast_to(lowest_code, rows.shape).tolist()):
            T[r, tb:tb + M - 1] = S_SHIFTED
            T[r, tb + M - 1] = S_SHIFTED_MAX
            T[r, note_ids[low:]] = PITCH[low:]

    T[S_START, c.bos_id] = S_ONSET0
    T[S_END, c.pad_id] = S_END
    time_and_notes(S_ONSET0, 0)
    T[S_ONSET0, c.eos_id] = S_END
    T[S_SHIFTED, note_ids] = PITCH
    time_and_notes(S_SHIFTED_MAX, 0)
    T[PITCH[:, None], np.arange(c.velocity_base, c.duration_base)[None, :]] = VEL[:, None]
    for rows in (VEL, DURMAX):
        T[rows[:, None], np.arange(db, db + D - 1)[None, :]] = DONE[:, None]
        T[rows, db + D - 1] = DURMAX
    for rows in (DURMAX, DONE):
        time_and_notes(rows, np.minimum(codes + 1, n_codes))
        T[rows, c.eos_id] = S_END
    # A note code c+1 beyond the last code: time_and_notes(…, n_codes) allows no note, as wanted.
    can_end = np.zeros(n_states, dtype=bool)
    can_end[[S_ONSET0]] = True
    can_end[DURMAX] = True
    can_end[DONE] = True
    names = ["start", "end", "onset 0", "after TimeShift", "after longest TimeShift"]
    tn = c.token_names
    for k in range(n_codes):
        p = tn[note_ids[k]]
        names += [f"after {p}", f"after {p} Velocity", f"after {p} longest Duration",
                  f"after note {p}"]
    T.setflags(write=False)
    can_end.setflags(write=False)
    return Grammar(table=T, start_state=S_START, can_end=can_end, config=c, state_names=names)


# Version 2 states: START, END, then the header states after k Program tokens (k = 0..max_parts),
# after Key, Style, Density, Tempo and TimeSig; then the body states below; then, as in
# version 1, four states per note code (PITCH, VELOCITY, DURMAX, DONE).
_V2_BODY = ("after Bar", "after Bar TimeSig", "after TimeShift", "after longest TimeShift",
            "after Tempo", "after Part")


def _build_v2(c: CodecConfig) -> Grammar:
    """The version-2 automaton (see the module docstring for what it enforces)."""
    P = c.max_parts
    h_prog = 2 + np.arange(P + 1)  # after k Program tokens
    h_key, h_style, h_density, h_tempo, h_timesig = 2 + P + 1 + np.arange(5)
    bar, bar_ts, shifted, shifted_max, tempo, part = h_timesig + 1 + np.arange(6)
    n_fixed = int(part) + 1
    n_codes = c.n_pitches + c.n_drums
    n_states = n_fixed + 4 * n_codes
    T = np.full((n_states, c.vocab_size), -1, dtype=np.int32)
    codes = np.arange(n_codes)
    note_ids = c.pitch_base + codes
    PITCH = n_fixed + 4 * codes
    VEL, DURMAX, DONE = PITCH + 1, PITCH + 2, PITCH + 3
    tb, M = c.time_base, c.max_time_shift
    db, D = c.duration_base, c.max_duration

    def ids(name):
        first, stop = c.block(name)
        return np.arange(first, stop)

    def shifts(rows):
        T[rows, tb:tb + M - 1] = shifted
        T[rows, tb + M - 1] = shifted_max

    # header
    T[0, c.bos_id] = h_prog[0]
    T[1, c.pad_id] = 1
    for k in range(P):
        T[h_prog[k], ids("Program")] = h_prog[k + 1]
    T[h_prog[1:], c.key_base:c.key_base + 24] = h_key
    T[h_key, ids("Style")] = h_style
    T[h_style, ids("Density")] = h_density
    T[h_density, ids("Tempo")] = h_tempo
    T[h_tempo, ids("TimeSig")] = h_timesig
    T[h_timesig, c.bar_id] = bar
    T[h_timesig, c.eos_id] = 1
    # body: what may start an onset, or end a bar
    for row in (bar, bar_ts):
        shifts(row)
        T[row, ids("Tempo")] = tempo
        T[row, ids("Part")] = part
        T[row, note_ids] = PITCH
        T[row, c.bar_id] = bar
    T[bar, ids("TimeSig")] = bar_ts
    T[bar, c.eos_id] = 1
    for row in (shifted, shifted_max, tempo, part):
        T[row, note_ids] = PITCH
        if row != part:
            T[row, ids("Part")] = part
        if row in (shifted, shifted_max):
            T[row, ids("Tempo")] = tempo
    shifts(shifted_max)
    # notes: Velocity, Duration+, then the next note of this onset and part (a higher code),
    # a Part, a TimeShift, a Bar or EOS
    T[PITCH[:, None], np.arange(c.velocity_base, c.duration_base)[None, :]] = VEL[:, None]
    for rows in (VEL, DURMAX):
        T[rows[:, None], np.arange(db, db + D - 1)[None, :]] = DONE[:, None]
        T[rows, db + D - 1] = DURMAX
    for rows in (DURMAX, DONE):
        shifts(rows)
        T[rows[:, None], ids("Part")[None, :]] = part
        T[rows, c.bar_id] = bar
        T[rows, c.eos_id] = 1
        for k in range(n_codes - 1):
            T[rows[k], note_ids[k + 1:]] = PITCH[k + 1:]
    can_end = np.zeros(n_states, dtype=bool)
    can_end[[h_timesig, bar]] = True
    can_end[DURMAX] = True
    can_end[DONE] = True
    names = ["start", "end"] + [f"after {k} Program tokens" for k in range(P + 1)]
    names += ["after Key", "after Style", "after Density", "after Tempo", "after TimeSig"]
    names += list(_V2_BODY)
    tn = c.token_names
    for k in range(n_codes):
        p = tn[note_ids[k]]
        names += [f"after {p}", f"after {p} Velocity", f"after {p} longest Duration",
                  f"after note {p}"]
    T.setflags(write=False)
    can_end.setflags(write=False)
    return Grammar(table=T, start_state=0, can_end=can_end, config=c, state_names=names)


def grammar_mask(g: Grammar, state: int) -> np.ndarray:
    """bool [vocab]: the tokens allowed in ``state`` of grammar ``g``."""
    return g.mask(state)


def _allowed_runs(config: CodecConfig, row: np.ndarray) -> str:
    """The allowed tokens of one table row as runs of names ("TimeShift_1..TimeShift_48, EOS")."""
    ids = np.flatnonzero(row >= 0)
    if ids.size == 0:
        return "nothing"
    types = config.token_types
    names = config.token_names
    parts = []
    start = prev = int(ids[0])
    for i in list(ids[1:].tolist()) + [None]:
        if i is not None and i == prev + 1 and types[i] == types[prev] and types[i] != TYPE_SPECIAL:
            prev = i
            continue
        parts.append(names[start] if start == prev else f"{names[start]}..{names[prev]}")
        if i is not None:
            start = prev = i
    return ", ".join(parts)


def violation_message(config: CodecConfig, table, state, pos, token) -> str:
    """The one wording of a grammar violation (the C++ decoder builds the same string)."""
    V = table.shape[1]
    if not (0 <= token < V):
        return (f"decode: token {token} at position {pos} is outside the vocabulary "
                f"(ids 0..{V - 1})")
    tname = config.token_names[token]
    allowed = _allowed_runs(config, table[state])
    return (f"decode: token {token} ({tname}) at position {pos} is not allowed here; "
            f"allowed: {allowed}")
