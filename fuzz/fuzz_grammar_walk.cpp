// libFuzzer harness: the grammar walk, two ways.
//
// Walk mode (first byte < 0x80): the first byte picks a codec configuration (fuzz/configs.py);
// each next byte picks one of the tokens the grammar allows in the current state, as masked
// generation does. Every such sequence must pass the engine's request check as a primer
// (engine::prepare_request walks it), decode without error, and, once it ends with EOS, be a
// fixed point of decode/encode after one round (the first may end re-struck notes, cap long
// ones and shorten long silences: note hygiene).
//
// Table mode (first byte >= 0x80): the grammar table itself comes from the input (a damaged or
// hostile table), with token ids; prepare_request and decode_tokens must refuse or accept it
// without touching memory outside what they were given.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "harness.hpp"
#include "musgen/engine.hpp"
#include "musgen/errors.hpp"

namespace {

musgen::engine::GenerateRequest primer_request(const std::vector<std::int32_t>& primer,
                                               const std::int32_t* table, std::int64_t n_states,
                                               std::int32_t start, const std::uint8_t* can_end,
                                               std::int32_t eos) {
  musgen::engine::GenerateRequest r;
  r.n = 1;
  r.primer = primer.data();
  r.primer_len = static_cast<std::int64_t>(primer.size());
  r.table = table;
  r.n_states = n_states;
  r.start_state = start;
  r.can_end = can_end;
  r.eos_id = eos;
  // The request check wants somewhere to put a stream's tokens; nothing is generated here.
  static std::vector<std::int32_t> sink;
  r.out_tokens = &sink;
  return r;
}

void walk_mode(const std::uint8_t* data, std::size_t size) {
  const fuzz::Config& c = fuzz::config(data[0]);
  const musgen::codec::Vocab v = fuzz::vocab(c);
  std::vector<std::int32_t> tokens;
  std::int32_t state = c.start_state;
  std::vector<std::int32_t> allowed;
  for (std::size_t i = 1; i < size && state != 1 /* S_END */; ++i) {
    allowed.clear();
    const std::int32_t* row = c.table + static_cast<std::size_t>(state) * c.vocab;
    for (std::int32_t t = 0; t < c.vocab; ++t)
      if (row[t] >= 0 && t != v.pad_id) allowed.push_back(t);
    if (allowed.empty()) break;
    const std::int32_t t = allowed[data[i] % allowed.size()];
    tokens.push_back(t);
    state = row[t];
  }
  if (tokens.empty()) return;
  const bool complete = tokens.back() == v.eos_id;
  // The engine accepts every grammar-valid prefix as a primer (EOS only last).
  const auto state0 = musgen::engine::prepare_request(
      primer_request(tokens, c.table, c.n_states, c.start_state, c.can_end, v.eos_id), c.vocab)
                          .state;
  FUZZ_CHECK(state0.size() == 1 && state0[0] == state);
  const fuzz::RoundTrip rt = fuzz::round_trip(c);
  const auto notes = musgen::codec::decode_tokens(tokens.data(), tokens.size(), fuzz::grammar(c),
                                                  v, rt.num, rt.den);
  if (!complete) return;
  // What decode gives is hygienic (no note sounds through a re-strike of its key, none is
  // longer than the cap), so encoding it and decoding again is the identity after one round
  // (the first round may shorten a long silence); sentences that need neither give themselves.
  musgen::codec::ScoreView view{notes.data(), notes.size(), rt.base()};
  musgen::codec::Tokens again;
  musgen::codec::EncodeScratch scratch;
  musgen::codec::EncodeReport report;
  musgen::codec::encode_score(view, v, again, scratch, report);
  const auto notes2 = musgen::codec::decode_tokens(again.data(), again.size(), fuzz::grammar(c),
                                                   v, rt.num, rt.den);
  musgen::codec::ScoreView view2{notes2.data(), notes2.size(), rt.base()};
  musgen::codec::Tokens again2;
  musgen::codec::encode_score(view2, v, again2, scratch, report);
  FUZZ_CHECK(again2 == again);
}

void table_mode(const std::uint8_t* data, std::size_t size) {
  // [mode][n_states][vocab as a config's][start][n_states*vocab table bytes][tokens...]
  if (size < 4) return;
  const fuzz::Config& c = fuzz::config(data[0] & 0x7f);
  const musgen::codec::Vocab v = fuzz::vocab(c);
  const std::int32_t n_states = 1 + data[1] % 8;
  const std::int32_t start = static_cast<std::int8_t>(data[2]);
  const std::int32_t V = c.vocab;
  std::size_t pos = 3;
  std::vector<std::int32_t> table(static_cast<std::size_t>(n_states) * V, -1);
  for (std::size_t i = 0; i < table.size() && pos < size; ++i, ++pos)
    table[i] = static_cast<std::int8_t>(data[pos]) % (n_states + 1);  // mostly -1..n_states-1
  std::vector<std::uint8_t> can_end(n_states, 1);
  std::vector<std::int32_t> tokens;
  for (; pos + 1 < size; pos += 2)
    tokens.push_back(static_cast<std::int16_t>(data[pos] | (data[pos + 1] << 8)) % (V + 2));
  try {
    musgen::codec::decode_tokens(tokens.data(), tokens.size(), {table.data(), n_states, start}, v,
                                 480, c.steps_per_beat);
  } catch (const musgen::CodecError&) {
  }
  if (tokens.empty()) return;
  try {
    musgen::engine::prepare_request(
        primer_request(tokens, table.data(), n_states, start, can_end.data(), v.eos_id), V);
  } catch (const std::invalid_argument&) {  // CodecError is one too
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  if (data[0] < 0x80)
    walk_mode(data, size);
  else
    table_mode(data, size);
  return 0;
}
