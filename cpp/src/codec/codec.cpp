// musgen::codec: the vocabulary, and the version-1 token encoder and decoder. Every rule here
// mirrors python/musgen/codec/_python.py exactly (same integer rounding, order, merging, note
// hygiene and messages); the test suite compares the two on random and real scores. Version 2
// lives in v2_encode.cpp and v2_decode.cpp.
#include "musgen/codec.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
#include <mutex>
#include <string>
#include <thread>

#include "internal.hpp"
#include "musgen/errors.hpp"

namespace musgen::codec {

namespace {

bool item_less(const EncodeScratch::Item& a, const EncodeScratch::Item& b) {
  if (a.onset != b.onset) return a.onset < b.onset;
  if (a.code != b.code) return a.code < b.code;
  if (a.duration != b.duration) return a.duration < b.duration;
  return a.velocity < b.velocity;
}

// Select the notes the stream keeps, quantize and bin them into `items` (stream order not yet
// established). Returns whether the onsets came out non-decreasing (the usual case: the Score
// is sorted by start).
template <class ToSteps>
bool select_notes(const Note* notes, std::size_t n, const Vocab& v,
                  std::vector<EncodeScratch::Item>& items, ToSteps to_steps,
                  EncodeReport& report) {
  bool sorted = true;
  std::int64_t last_onset = 0;
  const int shift = v.velocity_shift;
  const std::int64_t cap =
      v.p.cap_steps > 0 ? v.p.cap_steps : std::numeric_limits<std::int64_t>::max();
  std::int64_t capped = 0;
  // Written through a pointer, field by field: building an Item on the stack and copying it in
  // (push_back) made the store forwarding stall the hot loop.
  items.resize(n);
  EncodeScratch::Item* out = items.data();
  std::size_t m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Note& nt = notes[i];
    std::int32_t code;
    if (nt.channel == kDrumChannel) {
      if (!v.p.keep_drums || nt.pitch < v.p.drum_lo || nt.pitch > v.p.drum_hi) continue;
      code = v.n_pitches + nt.pitch - v.p.drum_lo;
    } else {
      if (nt.pitch < v.p.pitch_lo || nt.pitch > v.p.pitch_hi) continue;
      code = nt.pitch - v.p.pitch_lo;
    }
    const std::int64_t on = to_steps(nt.start);
    const std::int64_t off = to_steps(nt.end);
    const std::int32_t vel = std::max<std::int32_t>(nt.velocity, 1) >> shift;
    sorted &= on >= last_onset;
    last_onset = on;
    EncodeScratch::Item& it = out[m++];
    it.onset = on;
    const std::int64_t dur = std::max<std::int64_t>(off - on, 1);
    capped += dur > cap;
    it.duration = std::min(dur, cap);
    it.code = code;
    it.velocity = vel;
  }
  items.resize(m);
  report.notes_capped = capped;
  return sorted;
}

}  // namespace

namespace {

// Key names in Key-token order (python: codec.names.KEY_NAMES).
const char* const kKeyNames[kKeys] = {
    "C",  "Db",  "D",  "Eb",  "E",  "F",  "F#",  "G",  "Ab",  "A",  "Bb",  "B",
    "Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm"};

}  // namespace

TokenType Vocab::type_of(std::int32_t id) const {
  if (id < 3) return kSpecial;
  if (p.version == 2 && id < time_base) {
    if (id < key_base) return kProgram;
    if (id < style_base) return kKey;
    if (id < density_base) return kStyle;
    if (id < tempo_base) return kDensity;
    if (id < timesig_base) return kTempo;
    if (id < bar_id) return kTimeSig;
    return kBar;
  }
  if (id < time_base + p.max_time_shift) return kTime;
  if (id < pitch_base) return kPart;
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
      return "Pitch_" + std::to_string(id - pitch_base + p.pitch_lo);
    case kDrumPitch:
      return "DrumPitch_" + std::to_string(id - drum_base + p.drum_lo);
    case kVelocity:
      return "Velocity_" + std::to_string(id - velocity_base);
    case kDuration:
      return "Duration_" + std::to_string(id - duration_base + 1);
    case kProgram:
      return id - program_base == kDrums ? "Program_Drums"
                                          : "Program_" + std::to_string(id - program_base);
    case kKey:
      return std::string("Key_") + kKeyNames[id - key_base];
    case kStyle:
      return id == style_base ? "Style_unknown" : "Style_" + p.styles[id - style_base - 1];
    case kDensity:
      return "Density_" + std::to_string(id - density_base);
    case kTempo:
      return "Tempo_" + std::to_string(id - tempo_base);
    case kTimeSig: {
      const auto& m = p.meters[static_cast<std::size_t>(id - timesig_base)];
      return "TimeSig_" + std::to_string(m.first) + "_" + std::to_string(m.second);
    }
    case kBar:
      return "Bar";
    case kPart:
      return "Part_" + std::to_string(id - part_base);
  }
  return "?";
}

Vocab make_vocab(const VocabParams& params) {
  auto fail = [](const std::string& what) { throw CodecError("make_vocab: " + what); };
  const VocabParams& q = params;
  if (q.version != 1 && q.version != 2) fail("version must be 1 or 2");
  if (q.max_time_shift < 1 || q.max_time_shift > 10000)
    fail("max_time_shift must be in [1, 10000], got " + std::to_string(q.max_time_shift));
  if (q.max_duration < 1 || q.max_duration > 10000)
    fail("max_duration must be in [1, 10000], got " + std::to_string(q.max_duration));
  if (!(0 <= q.pitch_lo && q.pitch_lo <= q.pitch_hi && q.pitch_hi <= 127))
    fail("pitch range must satisfy 0 <= low <= high <= 127, got (" + std::to_string(q.pitch_lo) +
         ", " + std::to_string(q.pitch_hi) + ")");
  if (!(0 <= q.drum_lo && q.drum_lo <= q.drum_hi && q.drum_hi <= 127))
    fail("drum pitch range must satisfy 0 <= low <= high <= 127, got (" +
         std::to_string(q.drum_lo) + ", " + std::to_string(q.drum_hi) + ")");
  if (q.velocity_bins < 1 || q.velocity_bins > 64 || (q.velocity_bins & (q.velocity_bins - 1)) != 0)
    fail("velocity_bins must be a power of two in [1, 64], got " +
         std::to_string(q.velocity_bins));
  if (q.cap_steps < 0 || q.silence_steps < 0 || q.silence_unit < 1)
    fail("the note and silence limits must be >= 0 and the unit >= 1");
  if (q.version == 2) {
    if (q.max_parts < 1 || q.max_parts > 128) fail("max_parts must be in [1, 128]");
    if (q.steps_per_beat < 1) fail("steps_per_beat must be positive");
    if (q.tempo_bins < 1 || q.default_tempo_bin < 0 || q.default_tempo_bin >= q.tempo_bins)
      fail("tempo bins must be >= 1 and hold the default bin");
    if (q.meters.empty() || q.meters.size() != q.meter_bar_steps.size() || q.meter_44 < 0 ||
        q.meter_44 >= static_cast<std::int32_t>(q.meters.size()))
      fail("meters and their bar lengths must match and hold 4/4");
    for (std::int64_t b : q.meter_bar_steps)
      if (b < 1) fail("bar lengths must be positive");
  }
  Vocab v;
  v.p = params;
  int log2 = 0;
  while ((1 << log2) < q.velocity_bins) ++log2;
  v.velocity_shift = 7 - log2;
  std::int32_t at = 3;
  if (q.version == 2) {
    v.program_base = at;
    at += kDrums + 1;
    v.key_base = at;
    at += kKeys;
    v.style_base = at;
    at += 1 + static_cast<std::int32_t>(q.styles.size());
    v.density_base = at;
    at += static_cast<std::int32_t>(q.density_bounds_milli.size()) + 1;
    v.tempo_base = at;
    at += q.tempo_bins;
    v.timesig_base = at;
    at += static_cast<std::int32_t>(q.meters.size());
    v.bar_id = at++;
  }
  v.time_base = at;
  at += q.max_time_shift;
  v.part_base = at;
  if (q.version == 2) at += q.max_parts;
  v.pitch_base = at;
  v.n_pitches = q.pitch_hi - q.pitch_lo + 1;
  v.drum_base = v.pitch_base + v.n_pitches;
  v.n_drums = q.keep_drums ? q.drum_hi - q.drum_lo + 1 : 0;
  v.velocity_base = v.drum_base + v.n_drums;
  v.duration_base = v.velocity_base + q.velocity_bins;
  v.vocab_size = v.duration_base + q.max_duration;
  return v;
}

[[noreturn]] void too_many_tokens() {
  throw CodecError("encode: the score needs more than " + std::to_string(kMaxTokens) +
                   " tokens (a gap or a note is far too long)");
}


namespace {

// Quantizes the kept notes into scratch.items; returns whether their onsets rose (no sort).
bool quantize_items(const ScoreView& score, const Vocab& v, const CheckedTime& c,
                    EncodeScratch& scratch, EncodeReport& report) {
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
    // Division by the constant 2 * divisor as a multiply by its reciprocal, exact for every
    // 32-bit numerator: with M = ceil(2^64 / d) and n < 2^32, floor(n M / 2^64) = floor(n / d)
    // (the error n (M d - 2^64) / 2^64 stays below 1). The division was the encoder's costliest
    // instruction, twice per note.
    const std::uint64_t two_div = 2 * static_cast<std::uint64_t>(half);
    const std::uint64_t magic = two_div == 1 ? 0 : ~std::uint64_t{0} / two_div + 1;
    return select_notes(score.notes, score.n_notes, v, scratch.items,
                        [=](std::int64_t t) -> std::int64_t {
                          const std::uint64_t n = 2 * static_cast<std::uint32_t>(t) * rate + half;
                          return static_cast<std::int64_t>(
                              (static_cast<unsigned __int128>(n) * magic) >> 64);
                        },
                        report);
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
                      },
                      report);
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

// Greedy spelling of `value` steps at w (full tokens of `largest`, then the remainder); the
// caller made room for span_tokens(value, largest) tokens.
inline std::int32_t* write_span(std::int32_t* w, std::int64_t value, std::int32_t largest,
                                std::int32_t base) {
  if (value <= largest) {
    *w++ = base + static_cast<std::int32_t>(value) - 1;
    return w;
  }
  const std::int32_t full = base + largest - 1;
  for (std::int64_t q = value / largest; q > 0; --q) *w++ = full;
  const std::int64_t r = value % largest;
  if (r > 0) *w++ = base + static_cast<std::int32_t>(r) - 1;
  return w;
}

inline std::int64_t span_tokens(std::int64_t value, std::int32_t largest) {
  return value <= largest ? 1 : value / largest + (value % largest > 0);
}

// The tokens of the ordered items, BOS, then per note TimeShift* Pitch Velocity Duration+,
// then EOS, written in one pass that also keeps what the stream keeps (python:
// _python.hygienic_steps): of the notes sharing (onset, code) the last (longest, then
// loudest); a note still sounding when its code is struck again ends there (its Duration
// tokens, already written, are rewritten: a few percent of notes); a silence longer than the
// limit loses whole units. Tokens go through a pointer into a buffer sized for the common case
// (one TimeShift and one Duration per note), grown only before a note that needs more: a
// push_back per token cost a tenth of the encoder.
class TokenWriter {
 public:
  TokenWriter(const Vocab& v, EncodeScratch& s, Tokens& out, EncodeReport& report)
      : v_(v), ends_(s.ends), pos_(s.last), out_(out), report_(report),
        limit_(v.p.silence_steps > 0 ? v.p.silence_steps
                                     : std::numeric_limits<std::int64_t>::max() / 4) {
    ends_.assign(static_cast<std::size_t>(v.n_codes()), -1);
    pos_.assign(static_cast<std::size_t>(v.n_codes()), 0);
  }

  void write(const std::vector<EncodeScratch::Item>& items) {
    const std::int32_t M = v_.p.max_time_shift, D = v_.p.max_duration;
    const std::int32_t pitch_base = v_.pitch_base, velocity_base = v_.velocity_base;
    out_.resize(items.size() * 4 + 2);
    w_ = out_.data();
    end_ = w_ + out_.size();
    *w_++ = v_.bos_id;
    std::int64_t* ends = ends_.data();  // per code: where its latest note ends (-1: none)
    std::int64_t* pos = pos_.data();    // per code: where its latest note's Pitch token is
    const std::size_t n = items.size();
    const EncodeScratch::Item* it = items.data();
    std::int64_t clock = 0, shift = 0, t = 0, group_onset = -1, group_end = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (i + 1 < n && it[i + 1].onset == it[i].onset && it[i + 1].code == it[i].code) continue;
      const EncodeScratch::Item& x = it[i];
      if (x.onset != group_onset) {
        group_onset = x.onset;
        // the previous onset's notes sound until this onset at least (only a re-strike here
        // ends them): a silence longer than the limit needs a gap longer than it after them,
        // and only then is the exact end of everything sounding worth computing
        if (x.onset - shift - group_end > limit_) shift += shortened(x.onset - shift);
        group_end = 0;
        t = x.onset - shift;
      }
      const std::int64_t gap = t - clock;
      if (gap > M || x.duration > D || end_ - w_ < 4) room(gap, x.duration);
      if (gap > 0) w_ = write_span(w_, gap, M, v_.time_base);
      clock = t;
      const std::size_t c = static_cast<std::size_t>(x.code);
      if (ends[c] > t) restruck(c, t);
      pos[c] = w_ - out_.data();
      *w_++ = pitch_base + x.code;
      *w_++ = velocity_base + x.velocity;
      w_ = write_span(w_, x.duration, D, v_.duration_base);
      const std::int64_t e = t + x.duration;
      ends[c] = e;
      group_end = std::max(group_end, e);
    }
    report_.steps_removed = shift;
    const std::int64_t size = w_ - out_.data();
    if (size + 1 > kMaxTokens) too_many_tokens();
    if (w_ == end_) {
      out_.push_back(v_.eos_id);
      return;
    }
    *w_ = v_.eos_id;
    out_.resize(static_cast<std::size_t>(size + 1));
  }

 private:
  // Steps to cut from the silence before output time t: what still sounds is the latest note
  // of each code (an earlier one of a code ended where the next was struck).
  std::int64_t shortened(std::int64_t t) {
    std::int64_t sounding = 0;
    for (std::int64_t e : ends_) sounding = std::max(sounding, e);
    const std::int64_t silence = t - sounding;
    const std::int64_t unit = v_.p.silence_unit;
    const std::int64_t cut = silence > limit_ ? (silence - limit_) / unit * unit : 0;
    if (cut > 0) ++report_.silences_shortened;
    return cut;
  }

  // Code c is struck again at t while its latest note sounds: that note ends at t. Its
  // Duration tokens (right after its Pitch and Velocity) are rewritten in place; when the
  // shorter duration needs fewer of them, the tokens written since move back (a few: notes
  // are capped) and so do the recorded positions after them.
  void restruck(std::size_t c, std::int64_t t) {
    std::int32_t* first = out_.data() + pos_[c] + 2;
    std::int64_t old = 0;
    std::int32_t* p = first;
    for (; p < w_ && *p >= v_.duration_base; ++p) old += *p - v_.duration_base + 1;
    const std::int64_t dur = t - (ends_[c] - old);
    const std::int64_t k_old = p - first, k_new = span_tokens(dur, v_.p.max_duration);
    write_span(first, dur, v_.p.max_duration, v_.duration_base);
    if (k_new == k_old) return;
    std::move(p, w_, first + k_new);
    w_ -= k_old - k_new;
    for (std::int64_t& q : pos_)
      if (q > pos_[c]) q -= k_old - k_new;
  }

  // Room for one note with a gap and duration of these lengths (and EOS).
  void room(std::int64_t gap, std::int64_t duration) {
    const std::int64_t need = (gap > 0 ? span_tokens(gap, v_.p.max_time_shift) : 0) + 2 +
                              span_tokens(duration, v_.p.max_duration) + 1;
    const std::int64_t at = w_ - out_.data();
    if (at + need > kMaxTokens) too_many_tokens();
    if (end_ - w_ >= need) return;
    out_.resize(static_cast<std::size_t>(
        std::max<std::int64_t>(at + need, static_cast<std::int64_t>(out_.size()) * 2)));
    w_ = out_.data() + at;
    end_ = out_.data() + out_.size();
  }

  const Vocab& v_;
  std::vector<std::int64_t>& ends_;
  std::vector<std::int64_t>& pos_;
  Tokens& out_;
  EncodeReport& report_;
  const std::int64_t limit_;
  std::int32_t* w_ = nullptr;
  std::int32_t* end_ = nullptr;
};

}  // namespace

void encode_score(const ScoreView& score, const Vocab& v, Tokens& out,
                  EncodeScratch& scratch, EncodeReport& report) {
  report = EncodeReport{};
  const CheckedTime c = check_time_base(score);
  const bool sorted = quantize_items(score, v, c, scratch, report);
  order_items(scratch.items, sorted);
  TokenWriter(v, scratch, out, report).write(scratch.items);
}

void encode_many(const std::vector<ScoreView>& scores, const Vocab& vocab, int threads,
                 std::vector<Tokens>& out, std::vector<EncodeReport>& reports) {
  const std::size_t n = scores.size();
  out.assign(n, {});
  reports.assign(n, {});
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
        if (vocab.p.version == 2)
          encode_score_v2(scores[i], vocab, out[i], reports[i]);
        else
          encode_score(scores[i], vocab, out[i], scratch, reports[i]);
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

std::string violation_message(const Vocab& v, const std::int32_t* row, std::size_t pos,
                              std::int32_t t) {
  if (t < 0 || t >= v.vocab_size)
    return "decode: token " + std::to_string(t) + " at position " + std::to_string(pos) +
           " is outside the vocabulary (ids 0.." + std::to_string(v.vocab_size - 1) + ")";
  return "decode: token " + std::to_string(t) + " (" + v.token_name(t) + ") at position " +
         std::to_string(pos) + " is not allowed here; allowed: " + allowed_runs(v, row);
}

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
  std::int64_t clock = 0;
  std::int32_t code = 0, vel = 0;
  bool after_velocity = false;
  for (std::size_t pos = 0; pos < n_tokens; ++pos) {
    const std::int32_t t = tokens[pos];
    const std::int32_t* row = g.table + static_cast<std::size_t>(state) * V;
    if (t < 0 || t >= V || row[t] < 0) throw CodecError(violation_message(v, row, pos, t));
    const std::int32_t nxt = row[t];
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
  // Note hygiene (python: _python.end_restrikes and the cap): onsets rise in stream order and
  // a code appears once per onset, so the previous note of a code is the one struck again.
  std::vector<std::int64_t> last(static_cast<std::size_t>(v.n_codes()), -1);
  std::int64_t max_end = 0;
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    std::int64_t& prev = last[static_cast<std::size_t>(decoded[i].code)];
    if (prev >= 0) {
      Pending& p = decoded[static_cast<std::size_t>(prev)];
      p.duration = std::min(p.duration, decoded[i].onset - p.onset);
    }
    prev = static_cast<std::int64_t>(i);
  }
  for (Pending& p : decoded) {
    if (v.p.cap_steps > 0) p.duration = std::min(p.duration, v.p.cap_steps);
    max_end = std::max(max_end, p.onset + p.duration);
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
    nt.pitch = static_cast<std::uint8_t>(drum ? p.code - v.n_pitches + v.p.drum_lo
                                               : p.code + v.p.pitch_lo);
    nt.velocity = static_cast<std::uint8_t>((p.velocity << s) + half);
    nt.start = (2 * p.onset * num + den) / (2 * den);
    nt.end = (2 * (p.onset + p.duration) * num + den) / (2 * den);
  }
  return notes;
}

}  // namespace musgen::codec
