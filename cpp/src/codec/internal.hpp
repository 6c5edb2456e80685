// Pieces shared by the codec's translation units (version 1 in codec.cpp, version 2 in
// v2_encode.cpp and v2_decode.cpp): the checked time base, tick-to-step conversion and the
// greedy spelling of long spans. Not part of the public header.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <string>

#include "musgen/codec.hpp"
#include "musgen/errors.hpp"

namespace musgen::codec {

// Largest tick x rate product accepted, so that 2 U + divisor stays inside int64.
constexpr std::int64_t kMaxUnits = std::int64_t{1} << 61;

// The segments of the time base that matter (up to the last tick), after the checks the
// Python side makes too: no negative tick, no int64 overflow in U(t). `hi` is the largest
// note tick.
struct CheckedTime {
  std::size_t n_seg = 1;
  std::int64_t hi = 0, max_rate = 0;
};
inline CheckedTime check_time_base(const ScoreView& score) {
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


// Ticks (>= 0, <= CheckedTime::hi + 1) -> grid steps, round half up (python:
// _python.ticks_to_steps). A beat grid (one segment) whose numerators fit 32 bits divides by
// multiplying with the divisor's reciprocal (exact for every 32-bit numerator n: with
// M = ceil(2^64 / d), floor(n M / 2^64) = floor(n / d)); the 64-bit division it replaces was
// the costliest instruction of the encoders, twice per note.
class StepConverter {
 public:
  StepConverter(const TimeBase& tb, const CheckedTime& c) : tb_(tb), n_seg_(c.n_seg) {
    cum_.assign(n_seg_, 0);
    for (std::size_t s = 1; s < n_seg_; ++s)
      cum_[s] = cum_[s - 1] + (tb.seg_ticks[s] - tb.seg_ticks[s - 1]) * tb.seg_rates[s - 1];
    constexpr std::int64_t k32 = std::int64_t{1} << 32;
    // (c.hi + 1) * rate <= 2^61 + rate: checked by check_time_base, no overflow here
    fast_ = n_seg_ == 1 && 2 * (c.hi + 1) * tb.seg_rates[0] + tb.divisor < k32 &&
            2 * tb.divisor < k32;
    if (fast_) {
      const std::uint64_t d = 2 * static_cast<std::uint64_t>(tb.divisor);
      magic_ = d == 1 ? 0 : ~std::uint64_t{0} / d + 1;
      one_ = d == 1;
    }
  }
  std::int64_t operator()(std::int64_t t) const {
    if (fast_) {
      const std::uint64_t n = 2 * static_cast<std::uint64_t>(t) *
                                  static_cast<std::uint64_t>(tb_.seg_rates[0]) +
                              static_cast<std::uint64_t>(tb_.divisor);
      if (one_) return static_cast<std::int64_t>(n);
      return static_cast<std::int64_t>((static_cast<unsigned __int128>(n) * magic_) >> 64);
    }
    std::size_t i = 0;
    if (n_seg_ > 1)
      i = static_cast<std::size_t>(std::upper_bound(tb_.seg_ticks, tb_.seg_ticks + n_seg_, t) -
                                   tb_.seg_ticks) -
          1;
    const std::int64_t units = cum_[i] + (t - tb_.seg_ticks[i]) * tb_.seg_rates[i];
    return (2 * units + tb_.divisor) / (2 * tb_.divisor);
  }

 private:
  TimeBase tb_;
  std::size_t n_seg_;
  std::vector<std::int64_t> cum_;
  bool fast_ = false, one_ = false;
  std::uint64_t magic_ = 0;
};

// Greedy spelling of `value` steps: full tokens of `largest`, then the remainder.
inline void push_span(Tokens& out, std::int64_t value, std::int32_t largest,
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

}  // namespace musgen::codec
