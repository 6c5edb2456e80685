// libFuzzer harness: the C++ MIDI reader on arbitrary bytes. Any input either parses or raises
// musgen::MidiError; a parsed score keeps the reader's promises (notes sorted, end >= start,
// ticks not negative). A Set Tempo of 0 is kept as read (regressions/midi_read/set_tempo_zero).
#include <cstddef>
#include <cstdint>
#include <tuple>

#include "harness.hpp"
#include "musgen/errors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  musgen::midi::ScoreData s;
  try {
    s = musgen::midi::read_midi_bytes(data, size);
  } catch (const musgen::MidiError&) {
    return 0;
  }
  const auto& n = s.notes;
  for (std::size_t i = 0; i < n.size(); ++i) {
    FUZZ_CHECK(n[i].start >= 0 && n[i].end >= n[i].start);
    FUZZ_CHECK(n[i].pitch < 128 && n[i].channel < 16);
    if (i > 0)
      FUZZ_CHECK(std::tie(n[i - 1].start, n[i - 1].track, n[i - 1].channel, n[i - 1].pitch,
                          n[i - 1].end) <=
                 std::tie(n[i].start, n[i].track, n[i].channel, n[i].pitch, n[i].end));
  }
  for (const auto& t : s.tempos) FUZZ_CHECK(t.tick >= 0 && t.tempo <= 0xFFFFFF);
  FUZZ_CHECK((s.ticks_per_beat > 0) != (s.smpte_fps > 0));
  return 0;
}
