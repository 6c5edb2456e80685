// Shared pieces of the libFuzzer harnesses: the codec configurations of fuzz/configs.py (with
// the grammar tables Python builds, from the generated tables.inc) and the time base that
// musgen.codec gives a score on a beat grid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <vector>

#include "musgen/codec.hpp"
#include "musgen/midi.hpp"
#include "tables.inc"

namespace fuzz {

using fuzz_tables::Config;

inline const Config& config(std::uint8_t selector) {
  return fuzz_tables::kConfigs[selector % fuzz_tables::kNumConfigs];
}

inline musgen::codec::Vocab vocab(const Config& c) {
  return musgen::codec::make_vocab(c.max_time_shift, c.max_duration, c.pitch_lo, c.pitch_hi,
                                   c.keep_drums != 0, c.drum_lo, c.drum_hi, c.velocity_bins);
}

inline musgen::codec::GrammarTable grammar(const Config& c) {
  return {c.table, c.n_states, c.start_state};
}

// A property the code under test must keep: abort (libFuzzer saves the input) when it fails.
#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

// The state after `tokens`, or -1 at the first token the grammar forbids.
inline std::int32_t walk(const Config& c, const std::vector<std::int32_t>& tokens) {
  std::int32_t state = c.start_state;
  for (std::int32_t t : tokens) {
    if (t < 0 || t >= c.vocab) return -1;
    state = c.table[static_cast<std::size_t>(state) * c.vocab + t];
    if (state < 0) return -1;
  }
  return state;
}

// musgen.codec.tokens._time_base for a beat grid: one segment of `steps_per_beat` steps per
// beat; SMPTE files count one beat per half second.
struct BeatTime {
  std::int64_t tick0 = 0, rate = 0;
  musgen::codec::TimeBase base() const { return {&tick0, &rate, 1, divisor}; }
  std::int64_t divisor = 0;
};

inline BeatTime beat_time(const musgen::midi::ScoreData& s, int steps_per_beat) {
  BeatTime t;
  if (s.smpte_fps == 0) {
    t.rate = steps_per_beat;
    t.divisor = s.ticks_per_beat;
  } else {
    const std::int64_t fps100 = s.smpte_fps == 29 ? 2997 : 100 * s.smpte_fps;
    t.rate = static_cast<std::int64_t>(steps_per_beat) * 200;
    t.divisor = fps100 * s.smpte_ticks_per_frame;
  }
  return t;
}

}  // namespace fuzz
