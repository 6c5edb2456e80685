// musgen::midi: the Standard MIDI File reader (a port of python/musgen/midi/_python.py) and
// writer (a port of python/musgen/midi/_writer.py). The Python modules are the readable
// references; each C++ half agrees with its twin on every file: the same Score, warnings and
// errors when reading, the same bytes and errors when writing.
// Arrays use exactly the aligned layouts of python/musgen/score.py (checked by the bindings).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace musgen::midi {

// One note; NOTE_DTYPE. Ticks are absolute; `track` is the MTrk chunk index in file order.
struct Note {
  std::uint16_t track;
  std::uint8_t channel;
  std::uint8_t pitch;
  std::uint8_t velocity;
  std::int64_t start;
  std::int64_t end;
};
static_assert(sizeof(Note) == 24 && offsetof(Note, start) == 8 && offsetof(Note, end) == 16,
              "Note must match NOTE_DTYPE (itemsize 24, start at 8, end at 16)");
// TEMPO_DTYPE: microseconds per quarter note from `tick` on.
struct Tempo {
  std::int64_t tick;
  std::uint32_t tempo;
};
// TIME_SIGNATURE_DTYPE: `denominator` is the real one (4 for x/4).
struct TimeSignature {
  std::int64_t tick;
  std::uint8_t numerator, denominator, clocks_per_click, notated_32nds;
};
// KEY_SIGNATURE_DTYPE: key = sharps (>0) or flats (<0); mode 0 major, 1 minor.
struct KeySignature {
  std::int64_t tick;
  std::uint16_t track;
  std::int8_t key;
  std::uint8_t mode;
};
// PROGRAM_DTYPE
struct Program {
  std::int64_t tick;
  std::uint16_t track;
  std::uint8_t channel, program;
};

struct ScoreData {
  std::vector<Note> notes;  // sorted by (start, track, channel, pitch, end, velocity)
  std::vector<Tempo> tempos;  // all tracks merged, stable by tick
  std::vector<TimeSignature> time_signatures;  // stable by tick
  std::vector<KeySignature> key_signatures;  // stable by (tick, track)
  std::vector<Program> programs;  // stable by (tick, track, channel)
  std::vector<std::string> track_names;  // raw bytes (latin-1), one per MTrk chunk
  int format = 1;
  int ticks_per_beat = 0;  // 0 with SMPTE division
  int smpte_fps = 0;  // 0: metrical division; else 24, 25, 29 (meaning 29.97) or 30
  int smpte_ticks_per_frame = 0;
  std::vector<std::string> warnings;  // recovered damage, as text (without the file name)
};

// Parse a whole file held in memory. Throws musgen::MidiError (path empty) on bad input.
ScoreData read_midi_bytes(const std::uint8_t* data, std::size_t size);

// Read a file and parse it; MidiError carries `path` (offset -1 when the file cannot be read).
ScoreData read_midi_file(const std::string& path);

// read_midi_many: one entry per path, in input order.
struct ReadResult {
  bool ok = false;
  ScoreData score;
  std::string reason;  // when !ok
  std::int64_t offset = -1;
};
std::vector<ReadResult> read_midi_many(const std::vector<std::string>& paths, int threads);

// Streaming form of read_midi_many: `threads` workers read ahead (at most a small window of
// files beyond the consumer) while the consumer takes results in input order with next().
// Keeps memory bounded and each result hot in cache when it is consumed.
class ReadManyStream {
 public:
  ReadManyStream(std::vector<std::string> paths, int threads);
  ~ReadManyStream();
  ReadManyStream(const ReadManyStream&) = delete;
  ReadManyStream& operator=(const ReadManyStream&) = delete;
  // Blocks until the next file (in input order) is read; false when all were consumed.
  bool next(ReadResult& out);
  const std::string& path(std::size_t i) const { return paths_[i]; }

 private:
  void work();
  void shutdown();
  struct Impl;
  std::vector<std::string> paths_;
  Impl* impl_;
};

// ---------------------------------------------------------------------------------- writing
// A type-1 SMF holding `s` (write.cpp), byte for byte what _writer.encode gives: track k of the
// file holds the score's track k (notes, programs, key signatures, name); track 0 also holds
// `text` (a Text meta event at tick 0, when not null), the tempo map and time signatures. Notes
// pass through trim_overlaps first. Division from ticks_per_beat, or smpte_fps (24, 25, 29
// meaning 29.97, 30) and smpte_ticks_per_frame. Throws std::invalid_argument naming the value
// MIDI cannot hold ("musgen.midi.write: ...").
std::vector<std::uint8_t> encode_midi(const ScoreData& s, const std::string* text = nullptr);

// Note hygiene (_writer.without_overlaps): a note that starts while an earlier note of the same
// channel and pitch (in any track) sounds ends the earlier one at the re-strike. Ends are cut in
// place; the order of `notes` may change. Returns whether any note was cut.
bool trim_overlaps(std::vector<Note>& notes);

// encode_midi, then an atomic write: a temporary file beside `path` (mode 0666 less the umask),
// fsync'd only when asked, renamed over `path`. Throws std::invalid_argument (bad values) or
// std::system_error (the file system), leaving no temporary file behind.
void write_midi_file(const ScoreData& s, const std::string& path, const std::string* text,
                     bool fsync);

struct WriteResult {
  enum Kind { ok = 0, bad_value = 1, os_error = 2 } kind = ok;
  std::string message;  // bad_value: the error text; os_error: what failed
  int error_number = 0;  // os_error: errno
};
// write_midi_file for many scores on `threads` threads: every score is encoded before any file
// is written, so a score MIDI cannot hold leaves no file written. One result per score, in
// input order; texts[i] null for no text.
std::vector<WriteResult> write_midi_many(const std::vector<const ScoreData*>& scores,
                                         const std::vector<std::string>& paths,
                                         const std::vector<const std::string*>& texts,
                                         int threads, bool fsync);

}  // namespace musgen::midi
