// libFuzzer harness: decode of token ids against a grammar table. Input: one byte choosing a
// codec configuration (fuzz/configs.py), then token ids as little-endian int16 (out-of-range
// ids included). Any sequence either decodes or raises CodecError; decoded notes lie in the
// vocabulary's pitch ranges and never end before they start.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "harness.hpp"
#include "musgen/errors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const fuzz::Config& c = fuzz::config(data[0]);
  const musgen::codec::Vocab v = fuzz::vocab(c);
  std::vector<std::int32_t> tokens((size - 1) / 2);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::int16_t t;
    std::memcpy(&t, data + 1 + 2 * i, 2);
    tokens[i] = t;
  }
  std::vector<musgen::codec::Note> notes;
  try {
    notes = musgen::codec::decode_tokens(tokens.data(), tokens.size(), fuzz::grammar(c), v, 480,
                                         c.steps_per_beat);
  } catch (const musgen::CodecError&) {
    FUZZ_CHECK(fuzz::walk(c, tokens) < 0);  // refused only what the grammar refuses
    return 0;
  }
  FUZZ_CHECK(fuzz::walk(c, tokens) >= 0);
  for (const auto& n : notes) {
    FUZZ_CHECK(n.end >= n.start && n.start >= 0);
    if (n.channel == musgen::codec::kDrumChannel)
      FUZZ_CHECK(c.keep_drums && n.pitch >= c.drum_lo && n.pitch <= c.drum_hi);
    else
      FUZZ_CHECK(n.pitch >= c.pitch_lo && n.pitch <= c.pitch_hi);
  }
  return 0;
}
