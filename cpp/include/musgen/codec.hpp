// musgen::codec: notes <-> token ids, the C++ twin of python/musgen/codec/_python.py (identical
// tokens, notes and error messages). The vocabulary layout and the grammar table are defined
// once, in python/musgen/codec/vocab.py and grammar.py; this side rebuilds the layout from the
// same parameters and receives the grammar table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "musgen/midi.hpp"

namespace musgen::codec {

// One note: the MIDI reader's (NOTE_DTYPE of python/musgen/score.py, 24 bytes, absolute ticks).
using Note = musgen::midi::Note;

enum TokenType : std::uint8_t {
  kSpecial = 0,
  kTime = 1,
  kPitch = 2,
  kVelocity = 3,
  kDuration = 4,
  kDrumPitch = 5
};

constexpr int kDrumChannel = 9;

// The vocabulary: PAD, BOS, EOS, TimeShift_1..M, Pitch_lo..hi, [DrumPitch_lo..hi],
// Velocity_0..B-1, Duration_1..D. Built only through make_vocab, which validates.
struct Vocab {
  std::int32_t max_time_shift = 0, max_duration = 0;
  std::int32_t pitch_lo = 0, pitch_hi = 0;
  bool keep_drums = false;
  std::int32_t drum_lo = 0, drum_hi = 0;
  std::int32_t velocity_bins = 0, velocity_shift = 0;
  // Derived ids.
  std::int32_t pad_id = 0, bos_id = 1, eos_id = 2;
  std::int32_t time_base = 3, pitch_base = 0, n_pitches = 0, drum_base = 0, n_drums = 0;
  std::int32_t velocity_base = 0, duration_base = 0, vocab_size = 0;

  TokenType type_of(std::int32_t id) const;
  // "Pitch_60", "TimeShift_3", "EOS", ... (the names of python's CodecConfig.token_names).
  std::string token_name(std::int32_t id) const;
};

// Throws CodecError("make_vocab: ...") on a bad parameter.
Vocab make_vocab(std::int32_t max_time_shift, std::int32_t max_duration, std::int32_t pitch_lo,
                 std::int32_t pitch_hi, bool keep_drums, std::int32_t drum_lo,
                 std::int32_t drum_hi, std::int32_t velocity_bins);

// Ticks -> grid steps. With i the last segment whose tick <= t:
//   U(t) = cum_i + (t - seg_ticks[i]) * seg_rates[i],  step = (2 U + divisor) / (2 divisor)
// (round half up). Beat grids use one segment with rate = steps_per_beat and
// divisor = ticks_per_beat; millisecond grids use the tempo map (rates in microseconds per
// beat) and divisor = ticks_per_beat * 1000 * step_ms. seg_ticks[0] must be 0, ascending.
struct TimeBase {
  const std::int64_t* seg_ticks = nullptr;
  const std::int64_t* seg_rates = nullptr;
  std::size_t n_segments = 0;
  std::int64_t divisor = 0;
};

// One score to encode (views; nothing is owned).
struct ScoreView {
  const Note* notes = nullptr;
  std::size_t n_notes = 0;
  TimeBase time;
};

// Reusable buffers, so that encoding many scores allocates nothing per note.
struct EncodeScratch {
  struct Item {
    std::int64_t onset;     // steps
    std::int64_t duration;  // steps, >= 1
    std::int32_t code;      // pitched: pitch - pitch_lo; drums: n_pitches + pitch - drum_lo
    std::int32_t velocity;  // bin
  };
  std::vector<Item> items;
  std::vector<std::int64_t> cum;
};

// Tokens of one score into `out` (cleared first): BOS, notes, EOS. Throws CodecError on a
// negative tick, a time base that would overflow int64, or a malformed time base.
void encode_score(const ScoreView& score, const Vocab& vocab, std::vector<std::int32_t>& out,
                  EncodeScratch& scratch);

// Many scores on `threads` threads (1 = the calling thread). out[i] holds score i's tokens.
// The first failing score's error is rethrown, prefixed with "encode_many: score i: ".
void encode_many(const std::vector<ScoreView>& scores, const Vocab& vocab, int threads,
                 std::vector<std::vector<std::int32_t>>& out);

// The grammar automaton built by python's musgen.codec.grammar(config).
struct GrammarTable {
  const std::int32_t* table = nullptr;  // [n_states, vocab_size], -1 = forbidden
  std::int32_t n_states = 0;
  std::int32_t start_state = 0;
};

// Notes of a token sequence (a complete one or a grammar-valid prefix), in stream order, which
// is the Score order. Step s becomes tick (2 s num + den) / (2 den). Throws CodecError naming
// the position, the token and what was allowed at the first violation.
std::vector<Note> decode_tokens(const std::int32_t* tokens, std::size_t n_tokens,
                                const GrammarTable& grammar, const Vocab& vocab,
                                std::int64_t num, std::int64_t den);

}  // namespace musgen::codec
