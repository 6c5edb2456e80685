// libFuzzer harness: decode of codec-version-2 token ids (the decoder generated pieces go
// through). Input: one byte, whose bit 0x80 picks the mode and the rest a configuration of
// fuzz/configs.py CONFIGS_V2; then, raw mode, token ids as little-endian int16 (out-of-range ids
// included): they decode exactly when the grammar accepts them, else CodecError; walk mode, one
// byte per token picking among those the grammar allows (headers, bars, meters, tempos, parts,
// notes in any order the grammar admits): they always decode. Decoded pieces hold notes of the
// declared parts, in the vocabulary's ranges, not longer than the cap, without two notes of one
// part sounding on one key at once, and tempo and meter changes of the config's bins.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <tuple>
#include <vector>

#include "harness.hpp"
#include "musgen/errors.hpp"

namespace {

std::int32_t walk_v2(const fuzz::ConfigV2& c, const std::vector<std::int32_t>& tokens) {
  std::int32_t state = c.start_state;
  for (std::int32_t t : tokens) {
    if (t < 0 || t >= c.vocab) return -1;
    state = c.table[static_cast<std::size_t>(state) * c.vocab + t];
    if (state < 0) return -1;
  }
  return state;
}

void check(const fuzz::ConfigV2& c, const musgen::codec::Vocab& v,
           const musgen::codec::DecodedPiece& d) {
  const std::size_t n = d.on.size();
  FUZZ_CHECK(d.dur.size() == n && d.code.size() == n && d.vel.size() == n && d.part.size() == n);
  FUZZ_CHECK(d.programs.size() <= static_cast<std::size_t>(c.max_parts));
  std::map<std::tuple<std::int64_t, bool, std::int64_t>, std::int64_t> sounding_until;
  for (std::size_t i = 0; i < n; ++i) {
    FUZZ_CHECK(d.on[i] >= 0 && d.dur[i] >= 0);
    FUZZ_CHECK(c.cap_steps == 0 || d.dur[i] <= c.cap_steps);
    FUZZ_CHECK(d.code[i] >= 0 && d.code[i] < v.n_codes());
    FUZZ_CHECK(d.vel[i] >= 0 && d.vel[i] < c.velocity_bins);
    FUZZ_CHECK(d.part[i] >= 0 && d.part[i] < static_cast<std::int64_t>(d.programs.size()));
    if (i > 0) FUZZ_CHECK(d.on[i] >= d.on[i - 1]);  // stream order
    const bool drum = d.code[i] >= v.n_pitches || d.programs[d.part[i]] == musgen::codec::kDrums;
    const auto key = std::make_tuple(d.part[i], drum, d.code[i] >= v.n_pitches
                                                          ? d.code[i] - v.n_pitches + c.drum_lo
                                                          : d.code[i] + c.pitch_lo);
    auto it = sounding_until.find(key);
    if (it != sounding_until.end()) FUZZ_CHECK(it->second <= d.on[i]);  // note hygiene
    sounding_until[key] = d.on[i] + d.dur[i];
  }
  for (std::size_t i = 0; i + 1 < d.tempo_changes.size(); i += 2)
    FUZZ_CHECK(d.tempo_changes[i + 1] >= 0 && d.tempo_changes[i + 1] < c.tempo_bins);
  for (std::size_t i = 0; i + 1 < d.meter_changes.size(); i += 2)
    FUZZ_CHECK(d.meter_changes[i + 1] >= 0 && d.meter_changes[i + 1] < c.n_meters);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const fuzz::ConfigV2& c = fuzz::config_v2(data[0] & 0x7f);
  const musgen::codec::Vocab v = fuzz::vocab(c);
  FUZZ_CHECK(v.vocab_size == c.vocab);
  std::vector<std::int32_t> tokens;
  if (data[0] & 0x80) {  // walk mode
    std::int32_t state = c.start_state;
    std::vector<std::int32_t> allowed;
    for (std::size_t i = 1; i < size && state != 1 /* END */; ++i) {
      allowed.clear();
      const std::int32_t* row = c.table + static_cast<std::size_t>(state) * c.vocab;
      for (std::int32_t t = 0; t < c.vocab; ++t)
        if (row[t] >= 0 && t != v.pad_id) allowed.push_back(t);
      if (allowed.empty()) break;
      const std::int32_t t = allowed[data[i] % allowed.size()];
      tokens.push_back(t);
      state = row[t];
    }
    const auto d = musgen::codec::decode_tokens_v2(tokens.data(), tokens.size(),
                                                   fuzz::grammar(c), v);
    check(c, v, d);
    return 0;
  }
  tokens.resize((size - 1) / 2);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::int16_t t;
    std::memcpy(&t, data + 1 + 2 * i, 2);
    tokens[i] = t;
  }
  musgen::codec::DecodedPiece d;
  try {
    d = musgen::codec::decode_tokens_v2(tokens.data(), tokens.size(), fuzz::grammar(c), v);
  } catch (const musgen::CodecError&) {
    FUZZ_CHECK(walk_v2(c, tokens) < 0);  // refused only what the grammar refuses
    return 0;
  }
  FUZZ_CHECK(walk_v2(c, tokens) >= 0);
  check(c, v, d);
  return 0;
}
