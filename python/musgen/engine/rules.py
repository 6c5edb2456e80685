"""The generation rules of the engine loop in NumPy: the readable statement of
``cpp/include/musgen/rules.hpp`` (which the C++ loop and the CUDA kernels run), operation for
operation, so every backend samples the same tokens.

What the rules read: per-token tables of the codec (:class:`TokenTables`). What they track per
stream, from the primer on (:class:`RuleState`): the clock in grid steps, the position in the bar
and its length (codecs with bars), the current part and the number of declared parts, the notes
sounding (for ``max_voices``), the latest end of any note (for ``max_rest_steps``), the length
budget's count and the notes and steps generated (for
the density rule).

One sampling step of a stream with rules (:func:`step_mask_bias`):

1. ``allowed(v)`` = the grammar allows ``v`` and :func:`allows` (EOS only where the rules and the
   grammar allow it; the static mask; no clock advance past the closing point; the bar clock:
   no TimeShift reaching the bar line; no clock advance, after the first note, that leaves a
   rest (no note sounding) longer than ``max_rest_steps`` or fewer than ``min_voices`` notes
   sounding (the latter only while a note can still come at this point); parts: ``Part_i`` below the declared count, not the
   current part, not below it at an onset that has notes; voices: no note while
   ``max_voices`` notes sound; a note of the kind its part plays; no token into a grammar state
   that needs a note where no note could start).
2. ``logit'(v) = logit(v) + bias(v)`` in float32: the static bias (key strictness) plus, on
   tokens that move the clock, the density bias: how many notes closer to the target the
   running count gets by taking the token, times the strength, clamped to +-6 logits.
3. Sampling as without rules (``sampling.sample_token``), then :func:`record` and
   :func:`stop_reason`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..codec.tables import TokenTables  # what the rules read: the codec's per-token tables

__all__ = ["TokenTables", "Rules", "RuleState", "ENDINGS", "REASONS", "MAX_VOICES",
           "derive_state_flags", "step_mask_bias", "record", "stop_reason", "start_state"]

MAX_VOICES = 32
MAX_PARTS = 32
DENSITY_CAP = 6.0
NO_LIMIT = 0x3FFFFFFFFFFFFFFF
UNITS = ("tokens", "notes", "steps")
#: Ending names in the engine's numbering (rules.hpp ``Ending``).
ENDINGS = ("none", "beat", "bar", "model")
#: Why a stream stopped, in the engine's numbering (rules.hpp ``Reason``).
REASONS = ("running", "closed", "eos", "eos early", "cut", "budget")
CLOSED, EOS_AFTER, EOS_EARLY, CUT, BUDGET = 1, 2, 3, 4, 5


@dataclass(frozen=True, eq=False)
class Rules:
    """The rules of one ``generate_tokens`` call (every stream of it).

    Parameters
    ----------
    tables : TokenTables
    allow_early_end : bool
        EOS allowed before the budget is met (False: the min_length rule, EOS masked until then).
    ending : {"none", "beat", "bar", "model"}
        How the piece ends after its budget (see rules.hpp ``Ending``); "bar" needs bars.
    grace_steps : int
        ``ending="model"``: grid steps after the budget during which the model may end the
        piece with EOS before it is closed at the next beat (bar).
    allowed : bool [V] or None
        Static mask (key, pitch range, conditions): False forbids a token everywhere.
    bias : float32 [V] or None
        Static logit bias (key strictness).
    max_voices : int
        0: off; 1..32: most notes sounding at once.
    min_voices : int
        0: off; 1..32: no clock advance, after the first note, past the point where fewer
        notes would sound (with ``max_voices`` of the same value: exactly that many voices).
    max_rest_steps : int
        -1: off; else the longest rest (no note sounding) a clock advance may leave after the
        first note, in grid steps (0: none at all).
    density : float
        0: off; else target notes per beat (rounded to 1/1000).
    density_strength : float
        Logits per note of imbalance of the density bias.
    """

    tables: TokenTables
    allow_early_end: bool = False
    ending: str = "beat"
    grace_steps: int = 0
    allowed: np.ndarray | None = None
    bias: np.ndarray | None = None
    max_voices: int = 0
    min_voices: int = 0
    max_rest_steps: int = -1
    density: float = 0.0
    density_strength: float = 1.0
    derived: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        V = self.tables.vocab_size
        if self.ending not in ENDINGS:
            raise ValueError(f"ending: {self.ending!r}, expected one of {', '.join(ENDINGS)}")
        if self.ending == "bar" and not self.tables.has_bars:
            raise ValueError("ending: 'bar' needs a codec with bars (version 2); use 'beat'")
        if int(self.grace_steps) < 0:
            raise ValueError(f"grace_steps: {self.grace_steps}, expected >= 0")
        if not 0 <= int(self.max_voices) <= MAX_VOICES:
            raise ValueError(f"max_voices: {self.max_voices}, expected 1..{MAX_VOICES} "
                             "(0 or None: off)")
        if not 0 <= int(self.min_voices) <= MAX_VOICES:
            raise ValueError(f"min_voices: {self.min_voices}, expected 1..{MAX_VOICES} "
                             "(0 or None: off)")
        if int(self.max_voices) and int(self.min_voices) > int(self.max_voices):
            raise ValueError(f"min_voices: {self.min_voices} is more than max_voices="
                             f"{self.max_voices}")
        if isinstance(self.max_rest_steps, bool) or int(self.max_rest_steps) < -1:
            raise ValueError(f"max_rest_steps: {self.max_rest_steps}, expected grid steps >= 0 "
                             "(-1: off)")
        if not (np.isfinite(self.density) and self.density >= 0):
            raise ValueError(f"density: {self.density}, expected notes per beat > 0")
        if not (np.isfinite(self.density_strength) and self.density_strength >= 0):
            raise ValueError(f"density_strength: {self.density_strength}, expected >= 0")
        for name, dtype in (("allowed", np.uint8), ("bias", np.float32)):
            value = getattr(self, name)
            if value is not None:
                arr = np.ascontiguousarray(value, dtype=dtype)
                if arr.shape != (V,):
                    raise ValueError(f"{name}: shape {list(arr.shape)}, expected [{V}]")
                if name == "bias" and not np.all(np.isfinite(arr)):
                    raise ValueError("bias: must be finite (mask tokens with `allowed`)")
                arr.setflags(write=False)
                object.__setattr__(self, name, arr)

    @property
    def density_milli(self) -> int:
        return int(round(float(self.density) * 1000))

    def as_dict(self) -> dict:
        """The form the C++ and CUDA engines take."""
        t = self.tables
        d = {name: getattr(t, name) for name in TokenTables._DTYPES if name != "tempo_bpm"}
        d.update(steps_per_beat=t.steps_per_beat, default_bar_steps=t.default_bar_steps,
                 allow_early_end=bool(self.allow_early_end),
                 ending=ENDINGS.index(self.ending), grace_steps=int(self.grace_steps),
                 allowed=self.allowed, bias=self.bias, max_voices=int(self.max_voices),
                 min_voices=int(self.min_voices),
                 max_rest_steps=int(self.max_rest_steps), density_milli=self.density_milli,
                 density_strength=float(self.density_strength))
        return d


class RuleState:
    """One stream's rule state (rules.hpp ``State``)."""

    __slots__ = ("clock", "gen_steps", "count", "notes_gen", "met_clock", "end_clock",
                 "close_after", "bar_pos", "bar_len", "in_bar", "cur_part", "n_parts",
                 "onset_notes", "open_voice", "ended", "drum_parts", "voice_end", "voice_key",
                 "note_end", "sound_end")

    def __init__(self, t: TokenTables):
        self.clock = self.gen_steps = self.count = self.notes_gen = 0
        self.met_clock = self.end_clock = self.close_after = -1
        self.bar_pos = 0
        self.bar_len = t.default_bar_steps
        self.in_bar = False
        self.cur_part = self.n_parts = self.onset_notes = 0
        self.open_voice = -1
        self.ended = False
        self.drum_parts = 0
        self.voice_end: list = []
        self.voice_key: list = []
        self.note_end = self.sound_end = -1  # the note being written ends / the latest end


def _advance(s: RuleState, t: TokenTables, v: int) -> int:
    a = int(t.clock_steps[v])
    if t.is_bar[v] and s.in_bar:
        a += s.bar_len - s.bar_pos
    return a


def _advances(s: RuleState, t: TokenTables) -> np.ndarray:
    """int64 [V]: every token's clock advance in this state."""
    a = t.clock_steps.astype(np.int64)
    if s.in_bar:
        a = a + t.is_bar.astype(np.int64) * (s.bar_len - s.bar_pos)
    return a


def _ceil_to(x: int, step: int) -> int:
    return (x + step - 1) // step * step


def _start_voice(s: RuleState, key: int) -> None:
    keep = [(e, k) for e, k in zip(s.voice_end, s.voice_key) if e > s.clock and k != key]
    if len(keep) == MAX_VOICES:
        low = min(range(len(keep)), key=lambda i: (keep[i][0], i))
        del keep[low]
    keep.append((s.clock, key))
    s.voice_end = [e for e, _ in keep]
    s.voice_key = [k for _, k in keep]
    s.open_voice = len(keep) - 1


def _meet_budget(s: RuleState, t: TokenTables, r: Rules, adv: int, is_bar: bool) -> None:
    s.met_clock = s.clock
    target = s.clock + (int(r.grace_steps) if r.ending == "model" else 0)
    if r.ending == "bar" or (r.ending == "model" and t.has_bars):
        s.close_after = target
        if is_bar and s.clock >= s.close_after:
            s.ended = True
    elif r.ending in ("beat", "model"):
        if s.end_clock < 0:
            lo = target if adv > 0 else max(target, s.clock + 1)
            s.end_clock = _ceil_to(lo, t.steps_per_beat)
        if adv > 0 and s.clock == s.end_clock:
            s.ended = True


def record(s: RuleState, t: TokenTables, r: Rules, unit: int, length: int, v: int,
           generated: bool) -> None:
    """Token ``v`` was taken (``generated``: after the primer): update the state."""
    adv = _advance(s, t, v)
    if t.is_note[v]:
        s.onset_notes += 1
        if generated:
            s.notes_gen += 1
        if r.max_voices > 0 or r.min_voices > 0:
            _start_voice(s, s.cur_part * 65536 + v)
        s.note_end = s.clock
        s.sound_end = max(s.sound_end, s.clock)
    elif t.duration[v] > 0:
        if s.open_voice >= 0 and (r.max_voices > 0 or r.min_voices > 0):
            s.voice_end[s.open_voice] += int(t.duration[v])
        if s.note_end >= 0:
            s.note_end += int(t.duration[v])
            s.sound_end = max(s.sound_end, s.note_end)
    if adv > 0:
        s.clock += adv
        s.onset_notes = 0
        if generated:
            s.gen_steps += adv
    if t.is_bar[v]:
        s.in_bar = True
        s.bar_pos = 0
        s.onset_notes = 0
    else:
        s.bar_pos += int(t.clock_steps[v])
    if t.bar_steps[v] > 0:
        s.bar_len = int(t.bar_steps[v])
    if t.part[v] >= 0:
        s.cur_part = int(t.part[v])
    if t.program[v] >= 0:
        if t.program[v] == 128 and s.n_parts < MAX_PARTS:
            s.drum_parts |= 1 << s.n_parts
        s.n_parts += 1
    if not generated or s.ended:
        return
    s.count += 1 if unit == 0 else (int(t.is_note[v]) if unit == 1 else adv)
    if s.met_clock < 0:
        if s.count >= length:
            _meet_budget(s, t, r, adv, bool(t.is_bar[v]))
    elif s.end_clock >= 0 and adv > 0 and s.clock == s.end_clock:
        s.ended = True
    elif s.close_after >= 0 and t.is_bar[v] and s.clock >= s.close_after:
        s.ended = True


def start_state(t: TokenTables, r: Rules, unit: int, length: int, primer) -> RuleState:
    """The rule state after walking ``primer`` (token ids)."""
    s = RuleState(t)
    for v in np.asarray(primer).tolist():
        record(s, t, r, unit, length, int(v), False)
    beat = r.ending == "beat" or (r.ending == "model" and not t.has_bars)
    if unit == 2 and beat:
        grace = int(r.grace_steps) if r.ending == "model" else 0
        s.end_clock = _ceil_to(s.clock + length + grace, t.steps_per_beat)
    return s


def _kth_end(s: RuleState, k: int) -> int:
    """The k-th largest end clock of the tracked notes (k <= their count; rules.hpp
    ``kth_end``): fewer than k notes sound at a clock iff the clock is >= it."""
    return sorted(s.voice_end, reverse=True)[k - 1]


def _free_at(s: RuleState, r: Rules) -> int:
    """Notes may start at clocks >= this: the max_voices-th largest end of the tracked notes."""
    if r.max_voices <= 0 or len(s.voice_end) < r.max_voices:
        return -NO_LIMIT
    return _kth_end(s, r.max_voices)


def _held_until(s: RuleState, r: Rules) -> int:
    """min_voices notes sound up to this clock: the min_voices-th largest end of the tracked
    notes (the clock itself with fewer tracked; NO_LIMIT when off or before the first note)."""
    if r.min_voices <= 0 or s.sound_end < 0:
        return NO_LIMIT
    if len(s.voice_end) < r.min_voices:
        return s.clock
    return _kth_end(s, r.min_voices)


def derive_state_flags(table: np.ndarray, t: TokenTables, allowed, eos_id: int = -1) -> tuple:
    """(needs_note bool [S], note_kinds uint8 [S]) as rules.hpp's derive_state_flags: no way on
    without a note first (every usable token is a note, or a token that neither moves the
    clock nor ends the piece and leads to such a state), and the kinds of note reachable that
    way (bit 0 pitched, bit 1 drums). A greatest fixpoint over the table."""
    V = t.vocab_size
    ids = np.arange(V)
    usable = (table >= 0) & ((ids == eos_id) | (np.ones(V, bool) if allowed is None
                                                  else allowed.astype(bool)))
    note = t.is_note.astype(bool)
    passes = ~note & (ids != eos_id) & (t.clock_steps == 0) & (t.is_bar == 0)
    pitched = t.pitch >= 0
    needs = usable.any(axis=1)
    kinds = ((usable & note & pitched).any(axis=1).astype(np.uint8)
             | ((usable & note & ~pitched).any(axis=1).astype(np.uint8) << 1))
    others = usable & ~note  # the tokens that are not notes
    nxt = np.where(table >= 0, table, 0)
    # first which states need a note (shrinking from "all"), then the kinds reachable from
    # them (growing), each to its fixpoint, as rules.hpp does
    while True:
        new = needs & ~(others & ~(passes & needs[nxt])).any(axis=1)
        if np.array_equal(new, needs):
            break
        needs = new
    rows, cols = np.nonzero(others & needs[:, None])
    while True:
        new = kinds.copy()
        np.bitwise_or.at(new, rows, kinds[nxt[rows, cols]])
        if np.array_equal(new, kinds):
            return needs, kinds
        kinds = new


def _kind_ok(s: RuleState, part, kinds):
    """Vectorized over tokens: can a note of the part's kind come where ``kinds`` is left."""
    part = np.asarray(part)
    if s.n_parts <= 0:
        return kinds != 0
    drum = (s.drum_parts >> np.minimum(part, MAX_PARTS - 1)) & 1
    need = np.where(drum == 1, 2, 1)
    return np.where(part >= MAX_PARTS, kinds != 0, (kinds & need) != 0)


def step_mask_bias(s: RuleState, t: TokenTables, r: Rules, row: np.ndarray, can_end: bool,
                   eos_id: int) -> tuple:
    """One step's (allowed bool [V], bias float32 [V]); the bias is None without any bias."""
    V = t.vocab_size
    ids = np.arange(V)
    met = s.met_clock >= 0
    eos_ok = r.allow_early_end or (met and r.ending in ("none", "model"))
    max_adv = s.end_clock - s.clock if s.end_clock >= 0 else NO_LIMIT
    free_at = _free_at(s, r)
    adv = _advances(s, t)
    ok = row >= 0
    if r.allowed is not None:
        ok &= r.allowed.astype(bool)
    ok &= adv <= max_adv
    if t.has_bars and s.in_bar:
        ok &= ~((t.clock_steps > 0) & (s.bar_pos + t.clock_steps.astype(np.int64) >= s.bar_len))
    if r.max_rest_steps >= 0 and s.sound_end >= 0:
        ok &= ~((adv > 0) & (s.clock + adv - s.sound_end > int(r.max_rest_steps)))
    p = t.part.astype(np.int64)
    bad_part = (p >= 0) & ((p >= s.n_parts) | (p == s.cur_part)
                           | ((s.onset_notes > 0) & (p < s.cur_part)))
    ok &= ~bad_part
    note = t.is_note.astype(bool)
    if s.clock < free_at:
        ok &= ~note
    if s.n_parts > 0 and s.cur_part < MAX_PARTS:
        drum = bool((s.drum_parts >> s.cur_part) & 1)
        ok &= ~(note & (drum != (t.pitch < 0)))
    needs, kinds = r.derived["needs_note"], r.derived["note_kinds"]
    nxt = np.where(row >= 0, row, 0)
    landing = needs[nxt] & (row >= 0)
    closes = (adv > 0) & (s.end_clock >= 0) & (s.clock + adv == s.end_clock)
    check = landing & ~closes
    part_after = np.where(p >= 0, p, s.cur_part)
    fail = check & (~_kind_ok(s, part_after, kinds[nxt]) | (s.clock + adv < free_at))
    ok &= ~fail
    held = _held_until(s, r)
    # time waits for notes only while a note can come (rules.hpp settle_view)
    if held != NO_LIMIT and (held > s.clock or (ok & note).any()):
        ok &= ~((adv > 0) & (s.clock + adv > held))
    if 0 <= eos_id < V:
        ok[eos_id] = bool(row[eos_id] >= 0) and bool(can_end) and eos_ok
    bias = None
    if r.bias is not None or r.density_milli > 0:
        bias = (np.zeros(V, np.float32) if r.bias is None else r.bias.copy())
        if r.density_milli > 0:
            deficit = r.density_milli * s.gen_steps - 1000 * t.steps_per_beat * s.notes_gen
            moves = ids[adv > 0]
            after = deficit + r.density_milli * adv[moves]
            gain = abs(deficit) - np.abs(after)
            notes = gain.astype(np.float64) / float(1000 * t.steps_per_beat)
            x = np.clip(float(r.density_strength) * notes, -DENSITY_CAP, DENSITY_CAP)
            bias[moves] = bias[moves] + x.astype(np.float32)
    return ok, bias


def stop_reason(s: RuleState, r: Rules, v: int, eos_id: int, length_so_far: int, cap: int,
                next_can_end: bool) -> int:
    """Why the stream stops after token ``v`` (0: it goes on); see ``REASONS``."""
    if v == eos_id:
        return EOS_AFTER if s.met_clock >= 0 else EOS_EARLY
    if s.ended:
        return CLOSED
    if r.ending == "none" and s.met_clock >= 0 and next_can_end:
        return BUDGET
    if length_so_far >= cap:
        return CUT
    return 0
