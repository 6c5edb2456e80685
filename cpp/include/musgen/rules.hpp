// musgen::rules: the generation rules of the engine loop (length budget and min_length, endings,
// the bar clock and parts of codecs with bars, most and fewest voices, the longest rest, static
// masks and logit biases, note density), as plain functions on plain structs. The CPU engine calls them, the CUDA kernels
// call them as __host__ __device__ code, and the host emulation of the kernels calls them too,
// so every backend runs the very same rule code. python/musgen/engine/rules.py states the same
// rules in NumPy (the reference the tests compare with).
//
// The rules read per-token tables of the codec (clock steps, notes, pitches, durations, bars,
// time signatures, parts, programs; see Tables) and track per stream, from the primer on: the
// clock in grid steps, the position in the bar and the bar length, the current part and the
// number of declared parts, the notes sounding (for the voice rule), when the last note sounding
// ends (for the rest rule), and the counts of the length budget and of the density rule (State).
//
// Order of one sampling step (every backend):
//   v = view(state); settle_view(v, ...)  once per stream and step
//   allowed(v) = grammar row[v] >= 0 and allows(view, state, v, can_end)
//   logit'(v)  = logit(v) + token_bias(view, state, v)          (float32 addition)
//   sample on (logit', allowed) as without rules; then record(state, v), stop_reason(...).
// Everything here is integer arithmetic except the density bias (one float64 division and one
// multiplication, no fused multiply-add pattern), so every backend computes the same bits.
#pragma once

#include <cstdint>

#if !defined(MUSGEN_HD)
#if defined(__CUDACC__)
#define MUSGEN_HD __host__ __device__ __forceinline__
#else
#define MUSGEN_HD inline
#endif
#endif

namespace musgen::rules {

constexpr int kMaxVoices = 32;   // notes the voice rule tracks (max_voices is 1..kMaxVoices)
constexpr int kMaxParts = 32;    // parts whose kind (drums or pitched) the part rule knows
constexpr double kDensityCap = 6.0;  // largest |bias| of the density rule, in logits
constexpr long long kNoLimit = 0x3fffffffffffffffLL;

// Length units (GenerateRequest::length_kind).
enum Unit : int { kTokens = 0, kNotes = 1, kSteps = 2 };
// How a piece ends once its budget is met.
//   none:  the stream stops at the first point after the budget where the grammar may end
//          (the loop before these rules; EOS is then allowed anywhere the grammar allows it).
//   beat:  no time advance past the next beat boundary; reaching it closes the piece.
//   bar:   the next Bar token closes the piece (codecs with bars; TimeShifts never cross bars).
//   model: as beat / bar, but counted from the budget point plus a grace window, during which
//          the model may end the piece itself with EOS.
enum Ending : int { kEndNone = 0, kEndBeat = 1, kEndBar = 2, kEndModel = 3 };
// Why a stream stopped (GenerateRequest::out_reason).
enum Reason : int {
  kRunning = 0,
  kClosed = 1,    // reached its closing point after the budget (beat / bar / model endings)
  kEosAfter = 2,  // the model sampled EOS after the budget
  kEosEarly = 3,  // the model sampled EOS before the budget (allow_early_end)
  kCut = 4,       // the hard token cap (max_tokens) stopped it
  kBudget = 5,    // ending "none": the budget was met where the grammar may end
};

// Per-token tables, each [V] (the codec's token_tables; neutral entries for what a codec lacks).
struct Tables {
  int V = 0;
  const std::int32_t* clock_steps = nullptr;  // grid steps a TimeShift advances, else 0
  const std::uint8_t* is_note = nullptr;      // the token starts a note (Pitch or DrumPitch)
  const std::int16_t* pitch = nullptr;        // MIDI pitch of a Pitch token, else -1
  const std::int32_t* duration = nullptr;     // grid steps a Duration token adds, else 0
  const std::uint8_t* is_bar = nullptr;       // the Bar token
  const std::int32_t* bar_steps = nullptr;    // a TimeSig token: its bar length in steps, else 0
  const std::int16_t* part = nullptr;         // Part_i -> i, else -1
  const std::int16_t* program = nullptr;      // header Program token -> 0..127, 128 drums, else -1
  int steps_per_beat = 1;
  int default_bar_steps = 0;                  // 0: the codec has no bars
};

// The rules asked for one generate() call (shared by its streams).
struct Settings {
  int on = 0;                   // 0: none of this runs (the grammar and the legacy stop only)
  int unit = kTokens;           // the length budget's unit
  long long length = 0;         // the budget (generated tokens, notes or steps)
  int allow_early_end = 0;      // EOS allowed before the budget (min_length off)
  int ending = kEndNone;
  long long grace_steps = 0;    // ending model: the grace window, in grid steps
  const std::uint8_t* allowed = nullptr;  // [V] static mask (key, range, conditions), or null
  const float* bias = nullptr;            // [V] static logit bias (key strictness), or null
  int max_voices = 0;           // 0: off; else most notes sounding at once (1..kMaxVoices)
  int min_voices = 0;           // 0: off; else no time advance, after the first note, past
                                // the point where fewer notes would sound (1..kMaxVoices)
  long long max_rest_steps = -1;  // -1: off; else the longest silence (no note sounding) a time
                                  // advance may leave after the first note, in grid steps
  long long density_milli = 0;  // 0: off; else target notes per beat x 1000
  double density_strength = 1.0;  // logits per note of imbalance
  // Per grammar state, derived once per call (derive_state_flags): no way on without a note
  // first, and which kinds of note the grammar and the static mask leave on the way (bit 0
  // pitched, bit 1 drums).
  const std::uint8_t* needs_note = nullptr;
  const std::uint8_t* note_kinds = nullptr;
  // 0 when no token can fail the needs-a-note check (no voices, no parts, a note of some kind
  // left wherever one is needed): the check is skipped, its verdict being "allowed" anyway.
  int check_landing = 1;
};

// One stream's rule state. Plain data: copied, gathered and kept in device memory as is.
struct State {
  long long clock;       // grid steps from the start of the piece (primer included)
  long long gen_steps;   // grid steps generated (after the primer)
  long long count;       // the budget's count (generated tokens, notes or steps)
  long long notes_gen;   // notes generated (density)
  long long met_clock;   // clock when the budget was met, -1 before
  long long end_clock;   // closing clock of the beat endings, -1 while unknown
  long long close_after;  // bar endings: a Bar at a clock >= this closes the piece; -1 unknown
  int bar_pos, bar_len, in_bar;  // position in the current bar, its length, a Bar was seen
  int cur_part, n_parts, onset_notes;  // current part, header Program tokens, notes at this onset
  int open_voice, n_voices, ended;
  unsigned drum_parts;   // bit i: part i is a drum part (Program_Drums)
  long long note_end;    // end clock of the note being written (its Duration tokens add to it)
  long long sound_end;   // the latest end clock of any note so far; -1 before the first note
  long long voice_end[kMaxVoices];  // end clock of each tracked note
  int voice_key[kMaxVoices];        // part * 65536 + token id
};

// What one step's decisions need, computed once per stream and step.
struct View {
  int eos_ok;           // the rules allow EOS (the grammar's can_end still applies)
  long long max_adv;    // largest clock advance a token may take (kNoLimit: none)
  long long free_at;    // notes may start at clocks >= free_at (the voice rule)
  long long held_until;  // min_voices: min_voices notes sound up to this clock (kNoLimit: off)
  long long deficit;    // density: target x steps - notes, in notes x 1000 x steps_per_beat
};

MUSGEN_HD void init(State& s, const Tables& t) {
  s.clock = s.gen_steps = s.count = s.notes_gen = 0;
  s.met_clock = s.end_clock = s.close_after = -1;
  s.bar_pos = 0;
  s.bar_len = t.default_bar_steps;
  s.in_bar = 0;
  s.cur_part = s.n_parts = s.onset_notes = 0;
  s.open_voice = -1;
  s.n_voices = s.ended = 0;
  s.drum_parts = 0u;
  s.note_end = s.sound_end = -1;
}

// Grid steps token v moves the clock: a TimeShift its steps, a Bar the rest of the bar (the
// first Bar of a piece opens bar 1 and moves nothing).
MUSGEN_HD long long advance(const State& s, const Tables& t, int v) {
  long long a = t.clock_steps[v];
  if (t.is_bar[v] && s.in_bar) a += s.bar_len - s.bar_pos;
  return a;
}

MUSGEN_HD bool with_bars(const Tables& t) { return t.default_bar_steps > 0; }

// The smallest multiple of `step` that is >= x (x >= 0).
MUSGEN_HD long long ceil_to(long long x, long long step) { return (x + step - 1) / step * step; }

// A note starts at the clock (voice rule): notes that ended are dropped, a note still sounding
// on the same key (part and token) ends here (a re-strike), and when every slot holds a
// sounding note the one ending first (lowest slot on ties) makes room.
MUSGEN_HD void start_voice(State& s, int key) {
  int n = 0;
  for (int i = 0; i < s.n_voices; ++i)
    if (s.voice_end[i] > s.clock && s.voice_key[i] != key) {
      s.voice_end[n] = s.voice_end[i];
      s.voice_key[n] = s.voice_key[i];
      ++n;
    }
  if (n == kMaxVoices) {
    int low = 0;
    for (int i = 1; i < n; ++i)
      if (s.voice_end[i] < s.voice_end[low]) low = i;
    for (int i = low; i + 1 < n; ++i) {
      s.voice_end[i] = s.voice_end[i + 1];
      s.voice_key[i] = s.voice_key[i + 1];
    }
    --n;
  }
  s.voice_end[n] = s.clock;
  s.voice_key[n] = key;
  s.open_voice = n;
  s.n_voices = n + 1;
}

// The budget was met with the token just recorded (clock already advanced by `adv`): fix
// where the piece closes. A time advance may close it right here (it landed on the closing
// point); otherwise the closing point lies after the clock, so the notes of this onset last.
MUSGEN_HD void meet_budget(State& s, const Tables& t, const Settings& c, long long adv,
                           int is_bar_token) {
  s.met_clock = s.clock;
  const long long target = s.clock + (c.ending == kEndModel ? c.grace_steps : 0);
  if (c.ending == kEndBar || (c.ending == kEndModel && with_bars(t))) {
    s.close_after = target;
    if (is_bar_token && s.clock >= s.close_after) s.ended = 1;
  } else if (c.ending == kEndBeat || c.ending == kEndModel) {
    if (s.end_clock < 0) {
      const long long lo = adv > 0 ? target : (target > s.clock ? target : s.clock + 1);
      s.end_clock = ceil_to(lo, t.steps_per_beat);
    }
    if (adv > 0 && s.clock == s.end_clock) s.ended = 1;
  }
}

// Token v was taken (generated: after the primer) -> the new state. Primer tokens go through
// here too, so the clock, bars, parts and sounding notes include the primer.
MUSGEN_HD void record(State& s, const Tables& t, const Settings& c, int v, bool generated) {
  const long long adv = advance(s, t, v);
  if (t.is_note[v]) {
    s.onset_notes += 1;
    if (generated) s.notes_gen += 1;
    if (c.max_voices > 0 || c.min_voices > 0) start_voice(s, s.cur_part * 65536 + v);
    s.note_end = s.clock;
    if (s.sound_end < s.clock) s.sound_end = s.clock;
  } else if (t.duration[v] > 0) {
    if (s.open_voice >= 0 && (c.max_voices > 0 || c.min_voices > 0))
      s.voice_end[s.open_voice] += t.duration[v];
    if (s.note_end >= 0) {
      s.note_end += t.duration[v];
      if (s.sound_end < s.note_end) s.sound_end = s.note_end;
    }
  }
  if (adv > 0) {
    s.clock += adv;
    s.onset_notes = 0;
    if (generated) s.gen_steps += adv;
  }
  if (t.is_bar[v]) {
    s.in_bar = 1;
    s.bar_pos = 0;
    s.onset_notes = 0;
  } else {
    s.bar_pos += t.clock_steps[v];
  }
  if (t.bar_steps[v] > 0) s.bar_len = t.bar_steps[v];
  if (t.part[v] >= 0) s.cur_part = t.part[v];
  if (t.program[v] >= 0) {
    if (t.program[v] == 128 && s.n_parts < kMaxParts) s.drum_parts |= 1u << s.n_parts;
    s.n_parts += 1;
  }
  if (!generated || s.ended) return;
  if (c.unit == kTokens) s.count += 1;
  else if (c.unit == kNotes) s.count += t.is_note[v] ? 1 : 0;
  else s.count += adv;
  if (s.met_clock < 0) {
    if (s.count >= c.length) meet_budget(s, t, c, adv, t.is_bar[v]);
  } else if (s.end_clock >= 0 && adv > 0 && s.clock == s.end_clock) {
    s.ended = 1;
  } else if (s.close_after >= 0 && t.is_bar[v] && s.clock >= s.close_after) {
    s.ended = 1;
  }
}

// After the primer: a budget in steps with a beat-type ending knows its closing point from the
// start, so no time advance ever jumps over it.
MUSGEN_HD void start(State& s, const Tables& t, const Settings& c) {
  const bool beat = c.ending == kEndBeat || (c.ending == kEndModel && !with_bars(t));
  if (c.unit == kSteps && beat) {
    const long long grace = c.ending == kEndModel ? c.grace_steps : 0;
    s.end_clock = ceil_to(s.clock + c.length + grace, t.steps_per_beat);
  }
}

// The k-th largest end clock of the tracked notes (k <= n_voices): fewer than k notes sound at
// a clock iff the clock is >= it.
MUSGEN_HD long long kth_end(const State& s, int k) {
  long long taken_above = kNoLimit;
  int taken_index = -1;
  long long kth = 0;
  for (int r = 0; r < k; ++r) {
    int best = -1;
    for (int i = 0; i < s.n_voices; ++i) {
      const long long e = s.voice_end[i];
      const bool below = e < taken_above || (e == taken_above && i > taken_index);
      if (below && (best < 0 || e > s.voice_end[best])) best = i;
    }
    kth = s.voice_end[best];
    taken_above = kth;
    taken_index = best;
  }
  return kth;
}

MUSGEN_HD View view(const State& s, const Tables& t, const Settings& c) {
  View w;
  const bool met = s.met_clock >= 0;
  w.eos_ok = c.allow_early_end || (met && (c.ending == kEndNone || c.ending == kEndModel));
  w.max_adv = s.end_clock >= 0 ? s.end_clock - s.clock : kNoLimit;
  w.free_at = -kNoLimit;
  if (c.max_voices > 0 && s.n_voices >= c.max_voices) w.free_at = kth_end(s, c.max_voices);
  w.held_until = kNoLimit;
  if (c.min_voices > 0 && s.sound_end >= 0)
    w.held_until = s.n_voices >= c.min_voices ? kth_end(s, c.min_voices) : s.clock;
  w.deficit = 0;
  if (c.density_milli > 0)
    w.deficit = c.density_milli * s.gen_steps - 1000LL * t.steps_per_beat * s.notes_gen;
  return w;
}

MUSGEN_HD long long abs_ll(long long x) { return x < 0 ? -x : x; }

// May the part of the next note be `drum` (1) or pitched (0) given the kinds left in a state?
MUSGEN_HD bool kind_ok(const State& s, const Tables& t, int part, std::uint8_t kinds) {
  if (s.n_parts <= 0 || part >= kMaxParts) return kinds != 0;
  (void)t;
  const bool drum = (s.drum_parts >> part) & 1u;
  return (kinds & (drum ? 2 : 1)) != 0;
}

// The rules' verdict on token v, whose grammar row entry is next_state (>= 0): EOS where the
// rules allow it (and the grammar can end), the static mask, no time advance past the closing
// point, the bar clock, no time advance that leaves a longer rest than max_rest_steps or fewer
// than min_voices notes sounding (after the first note), parts, voices, the part's kind of
// note, and no token into a state that needs a note where no note could start.
MUSGEN_HD bool allows(const View& w, const State& s, const Tables& t, const Settings& c,
                      int next_state, bool can_end, int eos, int v) {
  if (v == eos) return can_end && w.eos_ok;
  if (c.allowed != nullptr && !c.allowed[v]) return false;
  const long long adv = advance(s, t, v);
  if (adv > w.max_adv) return false;
  if (with_bars(t) && s.in_bar && t.clock_steps[v] > 0 && s.bar_pos + t.clock_steps[v] >= s.bar_len)
    return false;
  if (adv > 0 && c.max_rest_steps >= 0 && s.sound_end >= 0 &&
      s.clock + adv - s.sound_end > c.max_rest_steps)
    return false;
  if (adv > 0 && s.clock + adv > w.held_until) return false;
  const int p = t.part[v];
  if (p >= 0 && (p >= s.n_parts || p == s.cur_part || (s.onset_notes > 0 && p < s.cur_part)))
    return false;
  if (t.is_note[v]) {
    if (s.clock < w.free_at) return false;
    if (s.n_parts > 0 && s.cur_part < kMaxParts) {
      const bool drum = (s.drum_parts >> s.cur_part) & 1u;
      if (drum != (t.pitch[v] < 0)) return false;
    }
  }
  if (c.check_landing && c.needs_note != nullptr && c.needs_note[next_state]) {
    const bool closes = adv > 0 && s.end_clock >= 0 && s.clock + adv == s.end_clock;
    if (!closes) {
      if (!kind_ok(s, t, p >= 0 ? p : s.cur_part, c.note_kinds[next_state])) return false;
      if (s.clock + adv < w.free_at) return false;
    }
  }
  return true;
}

// min_voices makes time wait for notes only while a note can come: where it blocks every time
// advance (held_until at the clock) and the grammar and the other rules leave no note here
// (a chord already at the top of the pitch range, a full voice count), time may go on, so the
// rule never leaves a stream without a token. Called once per stream and step, after view().
MUSGEN_HD void settle_view(View& w, const State& s, const Tables& t, const Settings& c,
                           const std::int32_t* row, bool can_end, int eos) {
  if (w.held_until > s.clock) return;
  for (int v = 0; v < t.V; ++v)
    if (t.is_note[v] && row[v] >= 0 && allows(w, s, t, c, row[v], can_end, eos, v)) return;
  w.held_until = kNoLimit;
}

// The logit bias of token v (added to its float32 logit): the static bias, plus, for tokens
// that move the clock, the density rule: how much taking the token brings the running note
// count toward the target (in notes, times the strength, clamped to +-kDensityCap).
MUSGEN_HD float token_bias(const View& w, const State& s, const Tables& t, const Settings& c,
                           int v) {
  float b = c.bias != nullptr ? c.bias[v] : 0.0f;
  if (c.density_milli > 0) {
    const long long adv = advance(s, t, v);
    if (adv > 0) {
      const long long after = w.deficit + c.density_milli * adv;
      const long long gain = abs_ll(w.deficit) - abs_ll(after);
      const double notes =
          static_cast<double>(gain) / static_cast<double>(1000LL * t.steps_per_beat);
      double x = c.density_strength * notes;
      x = x > kDensityCap ? kDensityCap : (x < -kDensityCap ? -kDensityCap : x);
      b = b + static_cast<float>(x);
    }
  }
  return b;
}

// After token v (already recorded; next_can_end: the grammar may end in the new state; len:
// tokens generated so far, cap: max_tokens): why the stream stops, or kRunning.
MUSGEN_HD int stop_reason(const State& s, const Settings& c, int v, int eos, long long len,
                          long long cap, bool next_can_end) {
  if (v == eos) return s.met_clock >= 0 ? kEosAfter : kEosEarly;
  if (s.ended) return kClosed;
  if (c.ending == kEndNone && s.met_clock >= 0 && next_can_end) return kBudget;
  if (len >= cap) return kCut;
  return kRunning;
}

// Per grammar state: needs_note (no way on without a note first: every token the grammar and
// the static mask leave is a note, or a token that neither moves the clock nor ends the piece
// and leads to such a state, e.g. a Part or Tempo token) and note_kinds (the kinds of note
// reachable that way: bit 0 pitched, bit 1 drums). A greatest fixpoint over the table. Returns
// whether the needs-a-note check can ever refuse a token (Settings::check_landing).
inline int derive_state_flags(const std::int32_t* table, long long n_states, const Tables& t,
                              const std::uint8_t* allowed, int eos, int max_voices,
                              std::uint8_t* needs_note, std::uint8_t* note_kinds) {
  int check = max_voices > 0 ? 1 : 0;
  for (int v = 0; v < t.V; ++v)
    if (t.part[v] >= 0 || t.program[v] >= 0) check = 1;
  auto usable = [&](const std::int32_t* row, int v) {
    return row[v] >= 0 && (v == eos || allowed == nullptr || allowed[v]);
  };
  auto passes = [&](int v) {  // a token on the way to a note: no clock advance, not the end
    return !t.is_note[v] && v != eos && t.clock_steps[v] == 0 && !t.is_bar[v];
  };
  for (long long st = 0; st < n_states; ++st) {
    const std::int32_t* row = table + st * t.V;
    bool any = false;
    std::uint8_t kinds = 0;
    for (int v = 0; v < t.V; ++v)
      if (usable(row, v)) {
        any = true;
        if (t.is_note[v]) kinds |= t.pitch[v] >= 0 ? 1 : 2;
      }
    needs_note[st] = any ? 1 : 0;
    note_kinds[st] = kinds;
  }
  // First which states need a note (shrinking from "all"), then the kinds reachable from
  // them (growing), each to its fixpoint: the result does not depend on the visiting order.
  for (bool changed = true; changed;) {
    changed = false;
    for (long long st = 0; st < n_states; ++st) {
      if (!needs_note[st]) continue;
      const std::int32_t* row = table + st * t.V;
      for (int v = 0; v < t.V; ++v)
        if (usable(row, v) && !t.is_note[v] && (!passes(v) || !needs_note[row[v]])) {
          needs_note[st] = 0;
          changed = true;
          break;
        }
    }
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (long long st = 0; st < n_states; ++st) {
      if (!needs_note[st]) continue;
      const std::int32_t* row = table + st * t.V;
      std::uint8_t kinds = note_kinds[st];
      for (int v = 0; v < t.V; ++v)
        if (usable(row, v) && !t.is_note[v]) kinds |= note_kinds[row[v]];
      if (kinds != note_kinds[st]) {
        note_kinds[st] = kinds;
        changed = true;
      }
    }
  }
  for (long long st = 0; st < n_states; ++st)
    if (needs_note[st] && note_kinds[st] == 0) check = 1;
  return check;
}

}  // namespace musgen::rules
