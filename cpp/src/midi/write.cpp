// The Standard MIDI File writer (a port of python/musgen/midi/_writer.py, the readable
// reference): value checks, note hygiene, and each track's events laid out in the order FIFO
// pairing needs. Same bytes and same error texts as the Python writer.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "musgen/midi.hpp"

namespace musgen::midi {
namespace {

constexpr std::int64_t kMaxDelta = 0x0FFFFFFF;  // the largest delta time a 4-byte VLQ holds
constexpr std::size_t kMaxMetaBytes = 0x0FFFFFFF;
// Order of events at one tick inside a track (_writer.GROUP_*): notes that begin at a tick go
// last, in note order, a zero-length note's off right after its on.
enum Group : int { kName = 0, kMeta = 1, kProgram = 2, kNoteOff = 3, kNote = 4 };

[[noreturn]] void fail(const std::string& what) {
  throw std::invalid_argument("musgen.midi.write: " + what);
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

int division_word(const ScoreData& s) {
  if (s.smpte_fps != 0) {
    const int fps = s.smpte_fps, tpf = s.smpte_ticks_per_frame;
    if ((fps != 24 && fps != 25 && fps != 29 && fps != 30) || tpf < 1 || tpf > 255)
      fail("smpte: expected fps 24, 25, 29.97 or 30 and 1..255 ticks per frame");
    return ((256 - fps) << 8) | tpf;
  }
  check(s.ticks_per_beat > 0 && s.ticks_per_beat < 0x8000, "ticks_per_beat must be 1..32767");
  return s.ticks_per_beat;
}

template <class T, class Pred>
bool all_of(const std::vector<T>& v, Pred p) {
  return std::all_of(v.begin(), v.end(), p);
}

// Every value must fit its MIDI field, checked in _writer._check_values's order.
void check_values(const ScoreData& s) {
  const auto& n = s.notes;
  check(all_of(n, [](const Note& x) { return x.start >= 0; }), "note start ticks must be >= 0");
  check(all_of(n, [](const Note& x) { return x.end >= x.start; }),
        "note end ticks must be >= start");
  check(all_of(n, [](const Note& x) { return x.channel < 16; }), "note channels must be 0..15");
  check(all_of(n, [](const Note& x) { return x.pitch < 128; }), "note pitches must be 0..127");
  check(all_of(n, [](const Note& x) { return x.velocity >= 1 && x.velocity < 128; }),
        "note velocities must be 1..127 (a note-on with velocity 0 is a note-off)");
  const auto& p = s.programs;
  check(all_of(p, [](const Program& x) { return x.tick >= 0; }), "program ticks must be >= 0");
  check(all_of(p, [](const Program& x) { return x.channel < 16; }),
        "program channels must be 0..15");
  check(all_of(p, [](const Program& x) { return x.program < 128; }), "programs must be 0..127");
  check(all_of(s.tempos, [](const Tempo& x) { return x.tick >= 0; }), "tempo ticks must be >= 0");
  check(all_of(s.time_signatures, [](const TimeSignature& x) { return x.tick >= 0; }),
        "time signature ticks must be >= 0");
  check(all_of(s.key_signatures, [](const KeySignature& x) { return x.tick >= 0; }),
        "key signature ticks must be >= 0");
  check(all_of(s.tempos, [](const Tempo& x) { return x.tempo <= 0xFFFFFFu; }),
        "tempos must fit in 24 bits (<= 16777215 microseconds per beat)");
  for (const TimeSignature& t : s.time_signatures) {
    const int den = t.denominator;
    if (!(den > 0 && (den & (den - 1)) == 0 && den <= 128))
      fail("time signature denominator " + std::to_string(den) + " is not a power of two <= 128");
  }
}

std::uint8_t* put_vlq(std::uint8_t* out, std::uint32_t v) {
  const int len = 1 + (v >= (1u << 7)) + (v >= (1u << 14)) + (v >= (1u << 21));
  for (int k = len - 1; k >= 0; --k)
    *out++ = static_cast<std::uint8_t>(((v >> (7 * k)) & 0x7F) | (k > 0 ? 0x80 : 0));
  return out;
}

// One event of a track: its place in the (tick, group, seq) order and its bytes: up to three
// inline (a channel message), or `length` bytes at `offset` in the track's meta blob.
struct Event {
  std::int64_t tick;
  std::int64_t order;  // group << 40 | seq
  std::uint32_t offset, length;
  std::uint8_t bytes[3];
};

bool before(const Event& x, const Event& y) {
  return x.tick != y.tick ? x.tick < y.tick : x.order < y.order;
}

// A track's events in three lists that each come (or are put) in order, then merged: metas and
// program changes (few); the notes that begin, already in order (canonical note order is by
// start); and the note-offs of notes that began earlier, in end order.
class TrackBuilder {
 public:
  TrackBuilder(std::size_t notes, std::size_t programs) {
    starts_.reserve(notes);
    ends_.reserve(notes);
    misc_.reserve(programs + 8);
  }
  void meta(std::int64_t tick, int group, std::uint8_t type, const std::uint8_t* payload,
            std::size_t n) {
    if (n > kMaxMetaBytes)
      fail("a meta event of " + std::to_string(n) + " bytes is longer than MIDI can hold (" +
           std::to_string(kMaxMetaBytes) + ")");
    const auto at = static_cast<std::uint32_t>(blob_.size());
    std::uint8_t head[6] = {0xFF, type};
    const std::uint8_t* end = put_vlq(head + 2, static_cast<std::uint32_t>(n));
    blob_.insert(blob_.end(), static_cast<const std::uint8_t*>(head), end);
    blob_.insert(blob_.end(), payload, payload + n);
    misc_.push_back({tick, order(group, metas_++), at,
                     static_cast<std::uint32_t>(blob_.size() - at), {}});
  }
  void program(std::int64_t tick, std::int64_t seq, std::uint8_t channel, std::uint8_t program) {
    misc_.push_back({tick, order(kProgram, seq), 0, 2, {std::uint8_t(0xC0 | channel), program}});
  }
  // Note `seq` of the track (canonical order): its on, and its off right after it when the
  // note has zero length, else among the offs.
  void note(std::int64_t seq, const Note& n) {
    const std::uint8_t ch = n.channel;
    starts_.push_back({n.start, order(kNote, 2 * seq), 0, 3,
                       {std::uint8_t(0x90 | ch), n.pitch, n.velocity}});
    const Event off{n.end, 0, 0, 3, {std::uint8_t(0x80 | ch), n.pitch, 0x40}};
    if (n.end == n.start) {
      starts_.push_back(off);
      starts_.back().order = order(kNote, 2 * seq + 1);
    } else {
      ends_.push_back(off);
      ends_.back().order = order(kNoteOff, seq);
    }
  }
  // The MTrk chunk: events in (tick, group, seq) order with delta times, then End-of-Track.
  void append_chunk(std::vector<std::uint8_t>& out) {
    std::sort(misc_.begin(), misc_.end(), before);
    if (!std::is_sorted(ends_.begin(), ends_.end(), before))
      std::sort(ends_.begin(), ends_.end(), before);
    const std::size_t n = misc_.size() + starts_.size() + ends_.size();
    std::vector<const Event*> all;
    all.reserve(n);
    std::size_t i = 0, j = 0, k = 0;
    while (all.size() < n) {  // groups differ between the lists: no ties across them
      const Event* best = nullptr;
      std::size_t* from = nullptr;
      if (i < misc_.size()) best = &misc_[i], from = &i;
      if (j < ends_.size() && (!best || before(ends_[j], *best))) best = &ends_[j], from = &j;
      if (k < starts_.size() && (!best || before(starts_[k], *best))) best = &starts_[k], from = &k;
      all.push_back(best);
      ++*from;
    }
    std::int64_t prev = 0, gap = 0;
    std::size_t bytes = 0;
    for (const Event* e : all) {
      gap = std::max(gap, e->tick - prev);
      prev = e->tick;
      bytes += 4 + e->length;
    }
    if (gap > kMaxDelta)
      fail("a gap of " + std::to_string(gap) + " ticks between two events exceeds the largest "
           "delta time (" + std::to_string(kMaxDelta) + ")");
    const std::size_t head = out.size();
    out.resize(head + 8 + bytes + 4);
    std::uint8_t* p = out.data() + head;
    std::memcpy(p, "MTrk", 4);
    std::uint8_t* q = p + 8;
    prev = 0;
    for (const Event* e : all) {
      q = put_vlq(q, static_cast<std::uint32_t>(e->tick - prev));
      prev = e->tick;
      const std::uint8_t* src = e->bytes[0] != 0 ? e->bytes : blob_.data() + e->offset;
      std::memcpy(q, src, e->length);
      q += e->length;
    }
    const std::uint8_t eot[4] = {0x00, 0xFF, 0x2F, 0x00};  // End-of-Track at the last tick
    std::memcpy(q, eot, 4);
    q += 4;
    const std::size_t body = static_cast<std::size_t>(q - p) - 8;
    for (int b = 0; b < 4; ++b)
      p[4 + b] = static_cast<std::uint8_t>((body >> (8 * (3 - b))) & 0xFF);
    out.resize(head + 8 + body);
  }

 private:
  static std::int64_t order(int group, std::int64_t seq) {
    return (static_cast<std::int64_t>(group) << 40) | seq;
  }
  std::vector<std::uint8_t> blob_;
  std::vector<Event> misc_, starts_, ends_;
  std::int64_t metas_ = 0;
};

// Track t's metas: name; on track 0 the text, tempo map and time signatures; its keys.
void add_metas(TrackBuilder& tb, const ScoreData& s, std::size_t t, const std::string* text,
               const KeySignature* keys, std::size_t n_keys) {
  if (t < s.track_names.size() && !s.track_names[t].empty()) {
    const std::string& name = s.track_names[t];
    tb.meta(0, kName, 0x03, reinterpret_cast<const std::uint8_t*>(name.data()), name.size());
  }
  if (t == 0) {
    if (text != nullptr)
      tb.meta(0, kName, 0x01, reinterpret_cast<const std::uint8_t*>(text->data()), text->size());
    for (const Tempo& x : s.tempos) {
      const std::uint8_t b[3] = {static_cast<std::uint8_t>(x.tempo >> 16),
                                 static_cast<std::uint8_t>(x.tempo >> 8),
                                 static_cast<std::uint8_t>(x.tempo)};
      tb.meta(x.tick, kMeta, 0x51, b, 3);
    }
    for (const TimeSignature& x : s.time_signatures) {
      int log2 = 0;
      while ((1 << (log2 + 1)) <= x.denominator) ++log2;
      const std::uint8_t b[4] = {x.numerator, static_cast<std::uint8_t>(log2),
                                 x.clocks_per_click, x.notated_32nds};
      tb.meta(x.tick, kMeta, 0x58, b, 4);
    }
  }
  for (std::size_t i = 0; i < n_keys; ++i) {
    const std::uint8_t b[2] = {static_cast<std::uint8_t>(keys[i].key), keys[i].mode};
    tb.meta(keys[i].tick, kMeta, 0x59, b, 2);
  }
}

// Stable order by track, and the bounds of each track's slice.
template <class T>
std::vector<std::size_t> by_track(std::vector<T>& v, std::size_t n_tracks) {
  const auto by = [](const T& a, const T& b) { return a.track < b.track; };
  if (!std::is_sorted(v.begin(), v.end(), by)) std::stable_sort(v.begin(), v.end(), by);
  std::vector<std::size_t> bounds(n_tracks + 1, v.size());
  std::size_t i = 0;
  for (std::size_t t = 0; t <= n_tracks; ++t) {
    while (i < v.size() && v[i].track < t) ++i;
    bounds[t] = i;
  }
  return bounds;
}

template <class T>
std::size_t tracks_used(const std::vector<T>& v) {
  std::size_t n = 0;
  for (const T& x : v) n = std::max<std::size_t>(n, static_cast<std::size_t>(x.track) + 1);
  return n;
}

}  // namespace

namespace {

// True when no two notes of one key can overlap: in start order, no note starts before an
// earlier-swept note of its key ends (conservative: equal starts may report a false alarm).
bool surely_disjoint(const std::vector<Note>& notes) {
  std::vector<std::int64_t> last_end(16 * 128, std::numeric_limits<std::int64_t>::min());
  std::int64_t prev_start = std::numeric_limits<std::int64_t>::min();
  for (const Note& n : notes) {
    if (n.start < prev_start) return false;  // not in start order: sort to be sure
    prev_start = n.start;
    std::int64_t& e = last_end[(n.channel & 15) * 128 + (n.pitch & 127)];
    if (e > n.start) return false;
    e = std::max(e, n.end);
  }
  return true;
}

bool score_order(const Note& a, const Note& b) {
  if (a.start != b.start) return a.start < b.start;
  if (a.track != b.track) return a.track < b.track;
  if (a.channel != b.channel) return a.channel < b.channel;
  if (a.pitch != b.pitch) return a.pitch < b.pitch;
  if (a.end != b.end) return a.end < b.end;
  return a.velocity < b.velocity;
}

// Notes in each track's canonical order (start, channel, pitch, end, velocity), tracks in turn.
// Scores in Score order (what read and decode give) only need a stable pass by track.
void canonical_order(std::vector<Note>& notes, std::size_t n_tracks) {
  if (!std::is_sorted(notes.begin(), notes.end(), score_order))
    std::sort(notes.begin(), notes.end(), score_order);
  if (n_tracks <= 1) return;
  std::vector<std::size_t> at(n_tracks + 1, 0);
  for (const Note& n : notes) ++at[n.track + 1];
  for (std::size_t t = 0; t < n_tracks; ++t) at[t + 1] += at[t];
  std::vector<Note> out(notes.size());
  for (const Note& n : notes) out[at[n.track]++] = n;
  notes.swap(out);
}

}  // namespace

bool trim_overlaps(std::vector<Note>& notes) {
  if (notes.size() < 2 || surely_disjoint(notes)) return false;
  // (channel, pitch, start, end, track, velocity): _writer.without_overlaps's order
  std::sort(notes.begin(), notes.end(), [](const Note& a, const Note& b) {
    if (a.channel != b.channel) return a.channel < b.channel;
    if (a.pitch != b.pitch) return a.pitch < b.pitch;
    if (a.start != b.start) return a.start < b.start;
    if (a.end != b.end) return a.end < b.end;
    if (a.track != b.track) return a.track < b.track;
    return a.velocity < b.velocity;
  });
  bool cut = false;
  for (std::size_t i = 0; i + 1 < notes.size(); ++i) {
    Note& a = notes[i];
    const Note& b = notes[i + 1];
    if (a.channel == b.channel && a.pitch == b.pitch && b.start < a.end) {
      a.end = b.start;
      cut = true;
    }
  }
  return cut;
}

std::vector<std::uint8_t> encode_midi(const ScoreData& s, const std::string* text) {
  const int division = division_word(s);
  check_values(s);
  std::vector<Note> notes = s.notes;
  trim_overlaps(notes);
  std::vector<Program> programs = s.programs;
  std::vector<KeySignature> keys = s.key_signatures;
  // An empty score (no tracks at all) is written with no track; a text event needs one.
  const bool conductor = !s.tempos.empty() || !s.time_signatures.empty() || text != nullptr;
  const std::size_t n_tracks =
      std::max({static_cast<std::size_t>(conductor), s.track_names.size(), tracks_used(notes),
                tracks_used(programs), tracks_used(keys)});
  check(n_tracks <= 65535, "at most 65535 tracks");
  canonical_order(notes, n_tracks);
  const auto nb = by_track(notes, n_tracks);
  const auto pb = by_track(programs, n_tracks);
  const auto kb = by_track(keys, n_tracks);

  std::vector<std::uint8_t> out = {'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 1,
                                   static_cast<std::uint8_t>(n_tracks >> 8),
                                   static_cast<std::uint8_t>(n_tracks),
                                   static_cast<std::uint8_t>(division >> 8),
                                   static_cast<std::uint8_t>(division)};
  out.reserve(64 + 8 * notes.size() + 16 * (s.tempos.size() + programs.size()));
  for (std::size_t t = 0; t < n_tracks; ++t) {
    TrackBuilder tb(nb[t + 1] - nb[t], pb[t + 1] - pb[t]);
    add_metas(tb, s, t, text, keys.data() + kb[t], kb[t + 1] - kb[t]);
    for (std::size_t i = nb[t]; i < nb[t + 1]; ++i)
      tb.note(static_cast<std::int64_t>(i - nb[t]), notes[i]);
    for (std::size_t i = pb[t]; i < pb[t + 1]; ++i)
      tb.program(programs[i].tick, static_cast<std::int64_t>(i - pb[t]), programs[i].channel,
                 programs[i].program);
    tb.append_chunk(out);
  }
  return out;
}

}  // namespace musgen::midi
