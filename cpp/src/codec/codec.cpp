// musgen::codec: the token encoder and decoder. Every rule here mirrors
// python/musgen/codec/_python.py exactly (same integer rounding, order, merging and messages); the
// test suite compares the two on random and real scores.
#include "musgen/codec.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "musgen/errors.hpp"

namespace musgen::codec {

namespace {

constexpr std::int64_t kMaxUnits = std::int64_t{1} << 61;
// Longest token sequence encode produces (python: codec.MAX_TOKENS). A huge gap or note length
// (a damaged file's tick far away) must not allocate without bound.
constexpr std::int64_t kMaxTokens = std::int64_t{1} << 25;

[[noreturn]] void too_many_tokens() {
  throw CodecError("encode: the score needs more than " + std::to_string(kMaxTokens) +
                   " tokens (a gap or a note is far too long)");
}

bool item_less(const EncodeScratch::Item& a, const EncodeScratch::Item& b) {
  if (a.onset != b.onset) return a.onset < b.onset;
  if (a.code != b.code) return a.code < b.code;
  if (a.duration != b.duration) return a.duration < b.duration;
  return a.velocity < b.velocity;
}

// Greedy spelling of `value` steps: full tokens of `largest`, then the remainder.
inline void push_span(std::vector<std::int32_t>& out, std::int64_t value, std::int32_t largest,
                      std::int32_t base) {
  if (value <= largest) {  // the common case: one token, no division
    out.push_back(base + static_cast<std::int32_t>(value) - 1);
    return;
  }
  const std::int32_t full = base + largest - 1;
  const std::int64_t r = value % largest;
  if (static_cast<std::int64_t>(out.size()) + value / largest + (r > 0) > kMaxTokens)
    too_many_tokens();
  for (std::int64_t q = value / largest; q > 0; --q) out.push_back(full);
  if (r > 0) out.push_back(base + static_cast<std::int32_t>(r) - 1);
}

// Select the notes the stream keeps, quantize and bin them into `items` (stream order not yet
// established). Returns whether the onsets came out non-decreasing (the usual case: the Score
// is sorted by start).
template <class ToSteps>
bool select_notes(const Note* notes, std::size_t n, const Vocab& v,
                  std::vector<EncodeScratch::Item>& items, ToSteps to_steps) {
  bool sorted = true;
  std::int64_t last_onset = 0;
  const int shift = v.velocity_shift;
  // Written through a pointer, field by field: building an Item on the stack and copying it in
  // (push_back) made the store forwarding stall the hot loop.
  items.resize(n);
  EncodeScratch::Item* out = items.data();
  std::size_t m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Note& nt = notes[i];
    std::int32_t code;
    if (nt.channel == kDrumChannel) {
      if (!v.keep_drums || nt.pitch < v.drum_lo || nt.pitch > v.drum_hi) continue;
      code = v.n_pitches + nt.pitch - v.drum_lo;
    } else {
      if (nt.pitch < v.pitch_lo || nt.pitch > v.pitch_hi) continue;
      code = nt.pitch - v.pitch_lo;
    }
    const std::int64_t on = to_steps(nt.start);
    const std::int64_t off = to_steps(nt.end);
    const std::int32_t vel = std::max<std::int32_t>(nt.velocity, 1) >> shift;
    sorted &= on >= last_onset;
    last_onset = on;
    EncodeScratch::Item& it = out[m++];
    it.onset = on;
    it.duration = std::max<std::int64_t>(off - on, 1);
    it.code = code;
    it.velocity = vel;
  }
  items.resize(m);
  return sorted;
}

}  // namespace

TokenType Vocab::type_of(std::int32_t id) const {
  if (id < time_base) return kSpecial;
  if (id < pitch_base) return kTime;
  if (id < drum_base) return kPitch;
  if (id < velocity_base) return kDrumPitch;
  if (id < duration_base) return kVelocity;
  return kDuration;
}

std::string Vocab::token_name(std::int32_t id) const {
  if (id < 0 || id >= vocab_size) return "<" + std::to_string(id) + "?>";
  switch (type_of(id)) {
    case kSpecial:
      return id == pad_id ? "PAD" : id == bos_id ? "BOS" : "EOS";
    case kTime:
      return "TimeShift_" + std::to_string(id - time_base + 1);
    case kPitch:
      return "Pitch_" + std::to_string(id - pitch_base + pitch_lo);
    case kDrumPitch:
      return "DrumPitch_" + std::to_string(id - drum_base + drum_lo);
    case kVelocity:
      return "Velocity_" + std::to_string(id - velocity_base);
    case kDuration:
      return "Duration_" + std::to_string(id - duration_base + 1);
  }
  return "?";
}

Vocab make_vocab(std::int32_t max_time_shift, std::int32_t max_duration, std::int32_t pitch_lo,
                 std::int32_t pitch_hi, bool keep_drums, std::int32_t drum_lo,
                 std::int32_t drum_hi, std::int32_t velocity_bins) {
  auto fail = [](const std::string& what) { throw CodecError("make_vocab: " + what); };
  if (max_time_shift < 1 || max_time_shift > 10000)
    fail("max_time_shift must be in [1, 10000], got " + std::to_string(max_time_shift));
  if (max_duration < 1 || max_duration > 10000)
    fail("max_duration must be in [1, 10000], got " + std::to_string(max_duration));
  if (!(0 <= pitch_lo && pitch_lo <= pitch_hi && pitch_hi <= 127))
    fail("pitch range must satisfy 0 <= low <= high <= 127, got (" + std::to_string(pitch_lo) +
         ", " + std::to_string(pitch_hi) + ")");
  if (!(0 <= drum_lo && drum_lo <= drum_hi && drum_hi <= 127))
    fail("drum pitch range must satisfy 0 <= low <= high <= 127, got (" +
         std::to_string(drum_lo) + ", " + std::to_string(drum_hi) + ")");
  if (velocity_bins < 1 || velocity_bins > 64 || (velocity_bins & (velocity_bins - 1)) != 0)
    fail("velocity_bins must be a power of two in [1, 64], got " + std::to_string(velocity_bins));
  Vocab v;
  v.max_time_shift = max_time_shift;
  v.max_duration = max_duration;
  v.pitch_lo = pitch_lo;
  v.pitch_hi = pitch_hi;
  v.keep_drums = keep_drums;
  v.drum_lo = drum_lo;
  v.drum_hi = drum_hi;
  v.velocity_bins = velocity_bins;
  int log2 = 0;
  while ((1 << log2) < velocity_bins) ++log2;
  v.velocity_shift = 7 - log2;
  v.pitch_base = v.time_base + max_time_shift;
  v.n_pitches = pitch_hi - pitch_lo + 1;
  v.drum_base = v.pitch_base + v.n_pitches;
  v.n_drums = keep_drums ? drum_hi - drum_lo + 1 : 0;
  v.velocity_base = v.drum_base + v.n_drums;
  v.duration_base = v.velocity_base + velocity_bins;
  v.vocab_size = v.duration_base + max_duration;
  return v;
}

namespace {

// The segments of the time base that matter (up to the last tick), after the checks the
// Python side makes too: no negative tick, no int64 overflow in U(t).
struct CheckedTime {
  std::size_t n_seg = 1;
  std::int64_t hi = 0, max_rate = 0;
};

CheckedTime check_time_base(const ScoreView& score) {
  const TimeBase& tb = score.time;
  if (tb.n_segments == 0 || tb.seg_ticks == nullptr || tb.seg_rates == nullptr ||
      tb.seg_ticks[0] != 0)
    throw CodecError("encode_score: the time base needs at least one segment, starting at tick 0");
  if (tb.divisor <= 0)
    throw CodecError("encode: the score's time division gives " + std::to_string(tb.divisor) +
                     " units per step (ticks_per_beat must be positive)");
  std::int64_t lo = 0, hi = 0;
  for (std::size_t i = 0; i < score.n_notes; ++i) {
    lo = std::min({lo, score.notes[i].start, score.notes[i].end});
    hi = std::max({hi, score.notes[i].start, score.notes[i].end});
  }
  if (lo < 0)
    throw CodecError("encode: the score has a note at negative tick " + std::to_string(lo));
  CheckedTime c;
  c.hi = hi;
  // Segments after the last tick play no part (the Python side cuts them the same way).
  while (c.n_seg < tb.n_segments && tb.seg_ticks[c.n_seg] <= hi) ++c.n_seg;
  for (std::size_t s = 0; s < c.n_seg; ++s) {
    if (tb.seg_rates[s] < 0 || (s > 0 && tb.seg_ticks[s] <= tb.seg_ticks[s - 1]))
      throw CodecError("encode_score: time base segments must have rising ticks and rates >= 0");
    c.max_rate = std::max(c.max_rate, tb.seg_rates[s]);
  }
  if (c.max_rate > 0 && hi > kMaxUnits / c.max_rate)
    throw CodecError("encode: tick " + std::to_string(hi) +
                     " is too large to convert to grid steps without overflow");
  return c;
}

// Quantizes the kept notes into scratch.items; returns whether their onsets rose (no sort).
bool quantize_items(const ScoreView& score, const Vocab& v, const CheckedTime& c,
                    EncodeScratch& scratch) {
  const TimeBase& tb = score.time;
  const std::size_t n_seg = c.n_seg;
  std::vector<std::int64_t>& cum = scratch.cum;
  cum.assign(n_seg, 0);
  for (std::size_t s = 1; s < n_seg; ++s)
    cum[s] = cum[s - 1] + (tb.seg_ticks[s] - tb.seg_ticks[s - 1]) * tb.seg_rates[s - 1];
  const std::int64_t* seg_ticks = tb.seg_ticks;
  const std::int64_t* seg_rates = tb.seg_rates;
  const std::int64_t divisor = tb.divisor;
  // One segment (every beat grid) whose largest 2 U + divisor fits 32 bits: a 32-bit division
  // is several times cheaper than a 64-bit one and gives the same quotient.
  // (hi * max_rate <= 2^61 was checked, so this bound is computed without overflow.)
  constexpr std::int64_t k32 = std::int64_t{1} << 32;
  if (n_seg == 1 && 2 * c.hi * c.max_rate + divisor < k32 && 2 * divisor < k32) {
    const auto rate = static_cast<std::uint32_t>(seg_rates[0]);
    const auto half = static_cast<std::uint32_t>(divisor);
    const auto two_div = 2 * half;
    return select_notes(score.notes, score.n_notes, v, scratch.items,
                        [=](std::int64_t t) -> std::int64_t {
                          return (2 * static_cast<std::uint32_t>(t) * rate + half) / two_div;
                        });
  }
  const std::int64_t two_div = 2 * divisor;
  return select_notes(score.notes, score.n_notes, v, scratch.items,
                      [&](std::int64_t t) -> std::int64_t {
                        std::size_t i = 0;
                        if (n_seg > 1)
                          i = static_cast<std::size_t>(
                                  std::upper_bound(seg_ticks, seg_ticks + n_seg, t) - seg_ticks) -
                              1;
                        const std::int64_t units = cum[i] + (t - seg_ticks[i]) * seg_rates[i];
                        return (2 * units + divisor) / two_div;  // units >= 0: floor division
                      });
}

// Stream order (onset, code, duration, velocity). Sorted onsets need only each group of notes
// sharing an onset put in order: an insertion sort of each (small) group.
void order_items(std::vector<EncodeScratch::Item>& items, bool sorted) {
  if (!sorted) {
    std::sort(items.begin(), items.end(), item_less);
    return;
  }
  const std::size_t m = items.size();
  for (std::size_t g = 0; g < m;) {
    std::size_t e = g + 1;
    while (e < m && items[e].onset == items[g].onset) ++e;
    for (std::size_t j = g + 1; j < e; ++j) {
      const EncodeScratch::Item x = items[j];
      std::size_t k = j;
      while (k > g && item_less(x, items[k - 1])) {
        items[k] = items[k - 1];
        --k;
      }
      items[k] = x;
    }
    g = e;
  }
}

// BOS, then per note TimeShift* Pitch Velocity Duration+, then EOS.
void write_tokens(const std::vector<EncodeScratch::Item>& items, const Vocab& v,
                  std::vector<std::int32_t>& out) {
  out.clear();
  out.reserve(items.size() * 4 + 2);
  out.push_back(v.bos_id);
  std::int64_t clock = 0;
  const std::size_t m = items.size();
  for (std::size_t i = 0; i < m; ++i) {
    const EncodeScratch::Item& it = items[i];
    // Same (onset, code) twice: only the last of the group (longest, then loudest) is kept.
    if (i + 1 < m && items[i + 1].onset == it.onset && items[i + 1].code == it.code) continue;
    if (it.onset > clock) push_span(out, it.onset - clock, v.max_time_shift, v.time_base);
    clock = it.onset;
    out.push_back(v.pitch_base + it.code);
    out.push_back(v.velocity_base + it.velocity);
    push_span(out, it.duration, v.max_duration, v.duration_base);
  }
  if (static_cast<std::int64_t>(out.size()) + 1 > kMaxTokens) too_many_tokens();
  out.push_back(v.eos_id);
}

}  // namespace

void encode_score(const ScoreView& score, const Vocab& v, std::vector<std::int32_t>& out,
                  EncodeScratch& scratch) {
  const CheckedTime c = check_time_base(score);
  const bool sorted = quantize_items(score, v, c, scratch);
  order_items(scratch.items, sorted);
  write_tokens(scratch.items, v, out);
}

void encode_many(const std::vector<ScoreView>& scores, const Vocab& vocab, int threads,
                 std::vector<std::vector<std::int32_t>>& out) {
  const std::size_t n = scores.size();
  out.assign(n, {});
  std::size_t n_threads = static_cast<std::size_t>(std::max(1, threads));
  n_threads = std::min(n_threads, std::max<std::size_t>(n, 1));
  std::atomic<std::size_t> next{0};
  std::mutex error_mutex;
  std::size_t error_index = n;
  std::string error_message;
  auto work = [&]() {
    EncodeScratch scratch;
    for (std::size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      try {
        encode_score(scores[i], vocab, out[i], scratch);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (i < error_index) {  // report the first failing score, whatever the scheduling
          error_index = i;
          error_message = e.what();
        }
      }
    }
  };
  if (n_threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(n_threads);
    for (std::size_t t = 0; t < n_threads; ++t) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
  if (error_index < n)
    throw CodecError("encode_many: score " + std::to_string(error_index) + ": " + error_message);
}

namespace {

// The allowed tokens of one grammar row as runs of names, e.g.
// "EOS, TimeShift_1..TimeShift_48, Pitch_0..Pitch_127" (python: codec._allowed_runs).
std::string allowed_runs(const Vocab& v, const std::int32_t* row) {
  std::string s;
  std::int32_t start = -1, prev = -1;
  auto flush = [&]() {
    if (start < 0) return;
    if (!s.empty()) s += ", ";
    s += v.token_name(start);
    if (prev != start) s += ".." + v.token_name(prev);
  };
  for (std::int32_t i = 0; i < v.vocab_size; ++i) {
    if (row[i] < 0) continue;
    if (start >= 0 && i == prev + 1 && v.type_of(i) == v.type_of(prev) &&
        v.type_of(i) != kSpecial) {
      prev = i;
      continue;
    }
    flush();
    start = prev = i;
  }
  flush();
  return s.empty() ? "nothing" : s;
}

}  // namespace

std::vector<Note> decode_tokens(const std::int32_t* tokens, std::size_t n_tokens,
                                const GrammarTable& g, const Vocab& v, std::int64_t num,
                                std::int64_t den) {
  if (num <= 0 || den <= 0)
    throw CodecError("decode_tokens: the tick scale must be positive, got " +
                     std::to_string(num) + "/" + std::to_string(den));
  if (g.table == nullptr || g.start_state < 0 || g.start_state >= g.n_states)
    throw CodecError("decode_tokens: bad grammar table");
  const std::int32_t V = v.vocab_size;
  struct Pending {
    std::int64_t onset, duration;
    std::int32_t code, velocity;
  };
  std::vector<Pending> decoded;
  decoded.reserve(n_tokens / 3 + 1);
  std::int32_t state = g.start_state;
  std::int64_t clock = 0, max_end = 0;
  std::int32_t code = 0, vel = 0;
  bool after_velocity = false;
  for (std::size_t pos = 0; pos < n_tokens; ++pos) {
    const std::int32_t t = tokens[pos];
    if (t < 0 || t >= V)
      throw CodecError("decode: token " + std::to_string(t) + " at position " +
                       std::to_string(pos) + " is outside the vocabulary (ids 0.." +
                       std::to_string(V - 1) + ")");
    const std::int32_t* row = g.table + static_cast<std::size_t>(state) * V;
    const std::int32_t nxt = row[t];
    if (nxt < 0)
      throw CodecError("decode: token " + std::to_string(t) + " (" + v.token_name(t) +
                       ") at position " + std::to_string(pos) + " is not allowed here; allowed: " +
                       allowed_runs(v, row));
    if (nxt >= g.n_states)
      throw CodecError("decode_tokens: bad grammar table (state out of range)");
    state = nxt;
    if (t >= v.duration_base) {
      const std::int64_t d = t - v.duration_base + 1;
      if (after_velocity)
        decoded.push_back({clock, d, code, vel});
      else if (!decoded.empty())
        decoded.back().duration += d;  // the grammar only allows this right after a Duration
      else  // only a damaged table lets a Duration come first (found by fuzz_grammar_walk)
        throw CodecError("decode_tokens: bad grammar table (Duration token " + std::to_string(t) +
                         " at position " + std::to_string(pos) + " continues no note)");
      max_end = std::max(max_end, decoded.back().onset + decoded.back().duration);
      after_velocity = false;
      continue;
    }
    after_velocity = false;
    if (t >= v.velocity_base) {
      vel = t - v.velocity_base;
      after_velocity = true;
    } else if (t >= v.pitch_base) {
      code = t - v.pitch_base;
    } else if (t >= v.time_base) {
      clock += t - v.time_base + 1;
    }
  }
  if (max_end > kMaxUnits / (2 * num))
    throw CodecError("decode: the decoded time of " + std::to_string(max_end) +
                     " steps is too large to convert to ticks");
  std::vector<Note> notes(decoded.size());
  const int s = v.velocity_shift;
  const std::int32_t half = (1 << s) >> 1;
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    const Pending& p = decoded[i];
    Note& nt = notes[i];
    nt.track = 0;
    const bool drum = p.code >= v.n_pitches;
    nt.channel = drum ? kDrumChannel : 0;
    nt.pitch = static_cast<std::uint8_t>(drum ? p.code - v.n_pitches + v.drum_lo
                                               : p.code + v.pitch_lo);
    nt.velocity = static_cast<std::uint8_t>((p.velocity << s) + half);
    nt.start = (2 * p.onset * num + den) / (2 * den);
    nt.end = (2 * (p.onset + p.duration) * num + den) / (2 * den);
  }
  return notes;
}

}  // namespace musgen::codec
