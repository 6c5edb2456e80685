// libFuzzer harness: encode of a Score's notes. Input: one byte choosing a codec configuration
// (fuzz/configs.py), then a MIDI file; the file is read (bad files are the reader harness's
// business) and its notes are encoded on the configuration's grid (beats, or milliseconds
// through the tempo map), as musgen.codec.encode does. Any score
// either encodes or raises CodecError, and what it encodes to is a complete sentence of the
// grammar that generation masks with (BOS ... EOS), and decoding it then encoding again gives
// the same tokens (what encode writes is hygienic and its silences are already shortened).
// With bit 0x40 of the first byte set, the score is also encoded twice by encode_many on two
// threads.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "harness.hpp"
#include "musgen/errors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const fuzz::Config& c = fuzz::config(data[0]);
  musgen::midi::ScoreData s;
  try {
    s = musgen::midi::read_midi_bytes(data + 1, size - 1);
  } catch (const musgen::MidiError&) {
    return 0;
  }
  const musgen::codec::Vocab v = fuzz::vocab(c);
  const fuzz::Time time = fuzz::time_base(s, c);
  musgen::codec::ScoreView view;
  view.notes = s.notes.data();
  view.n_notes = s.notes.size();
  view.time = time.base();
  musgen::codec::Tokens tokens;
  musgen::codec::EncodeScratch scratch;
  musgen::codec::EncodeReport report;
  try {
    musgen::codec::encode_score(view, v, tokens, scratch, report);
  } catch (const musgen::CodecError&) {
    return 0;
  }
  FUZZ_CHECK(tokens.size() >= 2 && tokens.front() == v.bos_id && tokens.back() == v.eos_id);
  if (data[0] & 0x40) {  // the threaded batch path (prepare's) gives the same tokens
    std::vector<musgen::codec::Tokens> many;
    std::vector<musgen::codec::EncodeReport> reports;
    musgen::codec::encode_many({view, view}, v, 2, many, reports);
    FUZZ_CHECK(many.size() == 2 && many[0] == tokens && many[1] == tokens);
  }
  const std::int32_t end = fuzz::walk(c, std::vector<std::int32_t>(tokens.begin(), tokens.end()));
  FUZZ_CHECK(end >= 0);
  // encode -> decode -> encode is the identity on the grid (decode(encode(s)) == quantize(s)).
  // Decode may refuse only times too large for ticks.
  const fuzz::RoundTrip rt = fuzz::round_trip(c);
  std::vector<musgen::codec::Note> notes;
  try {
    notes = musgen::codec::decode_tokens(tokens.data(), tokens.size(), fuzz::grammar(c), v,
                                         rt.num, rt.den);
  } catch (const musgen::CodecError&) {
    return 0;
  }
  musgen::codec::ScoreView again{notes.data(), notes.size(), rt.base()};
  musgen::codec::Tokens tokens2;
  musgen::codec::encode_score(again, v, tokens2, scratch, report);
  FUZZ_CHECK(tokens2 == tokens);
  return 0;
}
