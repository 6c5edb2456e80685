// Shared pieces of the libFuzzer harnesses: the codec configurations of fuzz/configs.py (with
// the grammar tables Python builds, from the generated tables.inc) and the time base that
// musgen.codec gives a score on a beat grid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
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
  musgen::codec::VocabParams p;
  p.max_time_shift = c.max_time_shift;
  p.max_duration = c.max_duration;
  p.pitch_lo = c.pitch_lo;
  p.pitch_hi = c.pitch_hi;
  p.keep_drums = c.keep_drums != 0;
  p.drum_lo = c.drum_lo;
  p.drum_hi = c.drum_hi;
  p.velocity_bins = c.velocity_bins;
  p.cap_steps = c.cap_steps;
  p.silence_steps = c.silence_steps;
  p.silence_unit = c.silence_unit;
  return musgen::codec::make_vocab(p);
}

using fuzz_tables::ConfigV2;

inline const ConfigV2& config_v2(std::uint8_t selector) {
  return fuzz_tables::kConfigsV2[selector % fuzz_tables::kNumConfigsV2];
}

inline musgen::codec::Vocab vocab(const ConfigV2& c) {
  musgen::codec::VocabParams p;
  p.version = 2;
  p.max_time_shift = c.max_time_shift;
  p.max_duration = c.max_duration;
  p.pitch_lo = c.pitch_lo;
  p.pitch_hi = c.pitch_hi;
  p.keep_drums = c.keep_drums != 0;
  p.drum_lo = c.drum_lo;
  p.drum_hi = c.drum_hi;
  p.velocity_bins = c.velocity_bins;
  p.cap_steps = c.cap_steps;
  p.silence_steps = c.silence_steps;
  p.silence_unit = c.silence_unit;
  p.steps_per_beat = c.steps_per_beat;
  p.max_parts = c.max_parts;
  for (int i = 0; i < c.n_styles; ++i) p.styles.push_back("s" + std::to_string(i));
  p.tempo_bins = c.tempo_bins;
  p.default_tempo_bin = c.default_tempo_bin;
  p.meter_44 = c.meter_44;
  for (int i = 0; i < c.n_meters; ++i) {
    p.meters.emplace_back(c.meters[2 * i], c.meters[2 * i + 1]);
    p.meter_bar_steps.push_back(c.bar_steps[i]);
  }
  for (int i = 0; i < c.n_density_edges; ++i) p.density_bounds_milli.push_back(c.density_edges[i]);
  return musgen::codec::make_vocab(p);
}

inline musgen::codec::GrammarTable grammar(const ConfigV2& c) {
  return {c.table, c.n_states, c.start_state};
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

// musgen.codec.tokens._time_base: a beat grid is one segment of `steps_per_beat` steps per beat
// (SMPTE files: one beat per half second); a millisecond grid follows the tempo map (SMPTE
// files: real time). The segments are owned here; base() views them.
struct Time {
  std::vector<std::int64_t> ticks, rates;
  std::int64_t divisor = 0;
  musgen::codec::TimeBase base() const {
    return {ticks.data(), rates.data(), ticks.size(), divisor};
  }
};

inline Time time_base(const musgen::midi::ScoreData& s, const Config& c) {
  constexpr std::int64_t kDefaultTempo = 500000;
  Time t;
  const std::int64_t fps100 = s.smpte_fps == 29 ? 2997 : 100 * s.smpte_fps;
  if (c.step_ms == 0) {
    t.ticks = {0};
    if (s.smpte_fps == 0) {
      t.rates = {c.steps_per_beat};
      t.divisor = s.ticks_per_beat;
    } else {
      t.rates = {static_cast<std::int64_t>(c.steps_per_beat) * 200};
      t.divisor = fps100 * s.smpte_ticks_per_frame;
    }
    return t;
  }
  const std::int64_t unit = 1000 * static_cast<std::int64_t>(c.step_ms);
  if (s.smpte_fps != 0) {
    t.ticks = {0};
    t.rates = {100000000};
    t.divisor = fps100 * s.smpte_ticks_per_frame * unit;
    return t;
  }
  t.ticks = {0};
  t.rates = {kDefaultTempo};
  for (const auto& e : s.tempos) {  // sorted by tick; the last event on a tick wins
    if (e.tick <= 0) {
      t.rates[0] = e.tempo;
    } else if (e.tick == t.ticks.back()) {
      t.rates.back() = e.tempo;
    } else {
      t.ticks.push_back(e.tick);
      t.rates.push_back(e.tempo);
    }
  }
  t.divisor = static_cast<std::int64_t>(s.ticks_per_beat) * unit;
  return t;
}

// Decode at 8 ticks per grid step and re-encode from there: exact on the grid, so a complete
// sentence must come back token for token. Beat grids: `r` = steps per beat, decoded at 8 r
// ticks per beat; millisecond grids: `r` = microseconds per step, one tempo of r.
struct RoundTrip {
  std::int64_t num, den;          // decode_tokens' tick scale
  std::int64_t tick0 = 0, rate;   // the re-encode's one time-base segment
  musgen::codec::TimeBase base() const { return {&tick0, &rate, 1, 8 * rate}; }
};

inline RoundTrip round_trip(const Config& c) {
  const std::int64_t r = c.step_ms == 0 ? c.steps_per_beat : 1000 * std::int64_t{c.step_ms};
  return {8 * r, r, 0, r};
}

}  // namespace fuzz
