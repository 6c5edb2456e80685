// musgen::codec: notes <-> token ids, the C++ twin of python/musgen/codec/_python.py (version 1)
// and _python_v2.py (version 2): identical tokens, notes and error messages. The vocabulary
// layout and the grammar table are defined once, in python/musgen/codec/vocab.py and
// grammar.py; this side rebuilds the layout from the same parameters and receives the grammar
// table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "musgen/midi.hpp"

namespace musgen::codec {

// One note: the MIDI reader's (NOTE_DTYPE of python/musgen/score.py, 24 bytes, absolute ticks).
using Note = musgen::midi::Note;
// One Program Change (PROGRAM_DTYPE).
using ProgramChange = musgen::midi::Program;

enum TokenType : std::uint8_t {
  kSpecial = 0,
  kTime = 1,
  kPitch = 2,
  kVelocity = 3,
  kDuration = 4,
  kDrumPitch = 5,
  kProgram = 6,
  kKey = 7,
  kStyle = 8,
  kDensity = 9,
  kTempo = 10,
  kTimeSig = 11,
  kBar = 12,
  kPart = 13
};

// An allocator whose resize() leaves new ints uninitialized: the encoder sizes its token
// buffer first and writes every token through a pointer (zero-filling it first cost as much
// as writing the tokens).
template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  using std::allocator<T>::allocator;
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
// A token sequence (int32 ids).
using Tokens = std::vector<std::int32_t, DefaultInitAllocator<std::int32_t>>;

constexpr int kDrumChannel = 9;
constexpr std::int32_t kDrums = 128;  // the program of a drum part (version 2)
constexpr std::int32_t kKeys = 24;

// Everything that defines a vocabulary (python: the CodecConfig fields). Version-2 fields are
// ignored for version 1.
struct VocabParams {
  std::int32_t version = 1;
  std::int32_t max_time_shift = 48, max_duration = 48;
  std::int32_t pitch_lo = 0, pitch_hi = 127;
  bool keep_drums = false;
  std::int32_t drum_lo = 27, drum_hi = 87;
  std::int32_t velocity_bins = 32;
  std::int64_t cap_steps = 0;      // longest note (0: no cap)
  std::int64_t silence_steps = 0;  // longest silence (0: no limit)
  std::int64_t silence_unit = 1;   // version 1: a shortened silence loses whole units
  // version 2
  std::int32_t steps_per_beat = 12;
  std::int32_t max_parts = 16;
  std::vector<std::string> styles;  // labels after "unknown"
  std::int32_t tempo_bins = 32;
  std::int32_t default_tempo_bin = 0;  // the bin of 120 BPM
  std::int32_t meter_44 = 0;           // the index of 4/4
  std::vector<std::pair<std::int32_t, std::int32_t>> meters;  // (numerator, denominator)
  std::vector<std::int64_t> meter_bar_steps;
  std::vector<std::int64_t> density_bounds_milli;  // bin edges, thousandths of a note per beat
};

// The vocabulary; version 1: PAD, BOS, EOS, TimeShift_1..M, Pitch_lo..hi, [DrumPitch_lo..hi],
// Velocity_0..B-1, Duration_1..D. Version 2: PAD, BOS, EOS, Program_0..127, Program_Drums,
// Key (24), Style_unknown, Style_<label>.., Density_0.., Tempo_0.., TimeSig.., Bar,
// TimeShift.., Part_0.., Pitch.., [DrumPitch..], Velocity.., Duration... Built only through
// make_vocab, which validates.
struct Vocab {
  VocabParams p;
  std::int32_t velocity_shift = 0;
  std::int32_t pad_id = 0, bos_id = 1, eos_id = 2;
  std::int32_t program_base = 0, key_base = 0, style_base = 0, density_base = 0;
  std::int32_t tempo_base = 0, timesig_base = 0, bar_id = -1;
  std::int32_t time_base = 3, part_base = 0, pitch_base = 0, n_pitches = 0, drum_base = 0;
  std::int32_t n_drums = 0, velocity_base = 0, duration_base = 0, vocab_size = 0;

  std::int32_t n_codes() const { return n_pitches + n_drums; }
  TokenType type_of(std::int32_t id) const;
  // "Pitch_60", "TimeShift_3", "Key_Dm", "EOS", ... (python's CodecConfig.token_names).
  std::string token_name(std::int32_t id) const;
};

// Throws CodecError("make_vocab: ...") on a bad parameter.
Vocab make_vocab(const VocabParams& params);

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

// One score to encode (views; nothing is owned). The version-2 fields hold the score's other
// events as the Python facade prepares them (python: _python_v2.Events).
struct ScoreView {
  const Note* notes = nullptr;
  std::size_t n_notes = 0;
  TimeBase time;
  // version 2
  const ProgramChange* programs = nullptr;
  std::size_t n_programs = 0;
  const std::int64_t* tempo_ticks = nullptr;  // ascending
  const std::int32_t* tempo_bins = nullptr;
  std::size_t n_tempos = 0;
  const std::int64_t* meter_ticks = nullptr;  // ascending
  const std::int32_t* meter_index = nullptr;
  std::size_t n_meters = 0;
  std::int32_t meta_key = -1;  // the first key signature's key, -1: none
  std::int32_t style = 0;
};

// What encode shortened, cut, merged or dropped (python: the report dict).
struct EncodeReport {
  std::int64_t notes_capped = 0, silences_shortened = 0, steps_removed = 0;
  std::int64_t parts_merged = 0, parts_dropped = 0, notes_dropped = 0;
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
  // per code: the latest note's end, and its onset and Duration tokens (where, how many)
  std::vector<std::int64_t> ends, last;
};

// Tokens of one score into `out` (cleared first): BOS, notes, EOS. Throws CodecError on a
// negative tick, a time base that would overflow int64, or a malformed time base.
void encode_score(const ScoreView& score, const Vocab& vocab, Tokens& out,
                  EncodeScratch& scratch, EncodeReport& report);

// Version 2 (python: _python_v2.encode).
void encode_score_v2(const ScoreView& score, const Vocab& vocab, Tokens& out,
                     EncodeReport& report);

// Many scores on `threads` threads (1 = the calling thread). out[i] holds score i's tokens,
// reports[i] its report. The first failing score's error is rethrown, prefixed with
// "encode_many: score i: ". Dispatches on the vocabulary's version.
void encode_many(const std::vector<ScoreView>& scores, const Vocab& vocab, int threads,
                 std::vector<Tokens>& out, std::vector<EncodeReport>& reports);

// The grammar automaton built by python's musgen.codec.grammar(config).
struct GrammarTable {
  const std::int32_t* table = nullptr;  // [n_states, vocab_size], -1 = forbidden
  std::int32_t n_states = 0;
  std::int32_t start_state = 0;
};

// Version 1: notes of a token sequence (a complete one or a grammar-valid prefix), in stream
// order, which is the Score order. Step s becomes tick (2 s num + den) / (2 den). Note hygiene:
// a note still sounding when its code is struck again ends there; durations are capped. Throws
// CodecError naming the position, the token and what was allowed at the first violation.
std::vector<Note> decode_tokens(const std::int32_t* tokens, std::size_t n_tokens,
                                const GrammarTable& grammar, const Vocab& vocab,
                                std::int64_t num, std::int64_t den);

// Version 2: what a token sequence holds (python: _python_v2.Piece), steps on the grid, note
// hygiene applied (re-strikes per part, the closing bar, the cap).
struct DecodedPiece {
  std::vector<std::int32_t> programs;
  std::int32_t key = 0, style = 0, density = 0, tempo = -1, meter = -1;
  std::int64_t end = -1;
  std::vector<std::int64_t> on, dur, code, vel, part;
  std::vector<std::int64_t> tempo_changes;  // (step, bin) pairs, flattened
  std::vector<std::int64_t> meter_changes;  // (step, meter) pairs, flattened
};
DecodedPiece decode_tokens_v2(const std::int32_t* tokens, std::size_t n_tokens,
                              const GrammarTable& grammar, const Vocab& vocab);

// Shared by both versions (codec.cpp): the message of a grammar violation.
std::string violation_message(const Vocab& v, const std::int32_t* row, std::size_t pos,
                              std::int32_t token);
// "encode: the score needs more than 2^25 tokens ..." (python: the same text).
[[noreturn]] void too_many_tokens();
constexpr std::int64_t kMaxTokens = std::int64_t{1} << 25;

}  // namespace musgen::codec
