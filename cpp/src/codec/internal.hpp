// Pieces shared by the codec's translation units (version 1 in codec.cpp, version 2 in
// v2_encode.cpp and v2_decode.cpp): the checked time base, tick-to-step conversion and the
// greedy spelling of long spans. Not part of the public header.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "musgen/codec.hpp"

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
CheckedTime check_time_base(const ScoreView& score);

// Ticks (>= 0, <= CheckedTime::hi + 1) -> grid steps, round half up (python:
// _python.ticks_to_steps).
class StepConverter {
 public:
  StepConverter(const TimeBase& tb, const CheckedTime& c) : tb_(tb), n_seg_(c.n_seg) {
    cum_.assign(n_seg_, 0);
    for (std::size_t s = 1; s < n_seg_; ++s)
      cum_[s] = cum_[s - 1] + (tb.seg_ticks[s] - tb.seg_ticks[s - 1]) * tb.seg_rates[s - 1];
  }
  std::int64_t operator()(std::int64_t t) const {
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
};

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

}  // namespace musgen::codec
