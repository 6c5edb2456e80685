// The Standard MIDI File reader: a port of python/musgen/midi/_python.py::parse (the reference).
// Same rules, same error texts and offsets, same warnings. Parses from one in-memory buffer
// with no per-event allocation; memory stays a small multiple of the file size because every
// reservation is bounded by the bytes actually present, never by a declared count or length.
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>

#include "musgen/errors.hpp"
#include "musgen/midi.hpp"

namespace musgen::midi {
namespace {

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::size_t kMaxTracks = 65536;  // Note::track is uint16

std::string format(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}

[[noreturn]] void fail(std::string reason, std::size_t offset) {
  throw MidiError(std::move(reason), static_cast<std::int64_t>(offset));
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         std::uint32_t(p[3]);
}
std::uint32_t le32(const std::uint8_t* p) {
  return (std::uint32_t(p[3]) << 24) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[1]) << 8) |
         std::uint32_t(p[0]);
}
unsigned be16(const std::uint8_t* p) { return (unsigned(p[0]) << 8) | p[1]; }

// Thrown inside a track whose chunk was cut short by the end of the file: stop the track there.
struct Truncated {};

// Open notes of one track: per (channel, pitch) a FIFO of indices into the note array (the
// note is stored at its note-on, so each track's notes come out in start order). Storage is
// reused across tracks and files (one instance per thread).
class OpenNotes {
 public:
  void push(unsigned key, std::uint32_t slot) {
    Queue& q = queues_[key];
    if (q.head == q.items.size()) {
      if (q.items.empty()) used_.push_back(static_cast<std::uint16_t>(key));
      q.items.clear();
      q.head = 0;
    }
    q.items.push_back(slot);
  }
  // Pops the earliest open note of `key` into `slot`; false when none is open.
  bool pop(unsigned key, std::uint32_t& slot) {
    Queue& q = queues_[key];
    if (q.head >= q.items.size()) return false;
    slot = q.items[q.head++];
    return true;
  }
  // Visit every note still open, then empty all queues for the next track.
  template <class F>
  void drain(F&& f) {
    for (std::uint16_t key : used_) {
      Queue& q = queues_[key];
      for (std::size_t i = q.head; i < q.items.size(); ++i) f(q.items[i]);
      q.items.clear();
      q.head = 0;
    }
    used_.clear();
  }

 private:
  struct Queue {
    std::vector<std::uint32_t> items;
    std::size_t head = 0;
  };
  Queue queues_[16 * 128];
  std::vector<std::uint16_t> used_;
};

class Reader {
 public:
  Reader(const std::uint8_t* data, ScoreData& out, OpenNotes& open)
      : d_(data), out_(out), open_(open) {}

  // One MTrk body [pos, end): events until End-of-Track (or the end of the chunk).
  void track(std::size_t pos, std::size_t end, bool truncated, unsigned track) {
    pos_ = pos;
    end_ = end;
    truncated_ = truncated;
    track_ = track;
    has_name_ = false;
    name_.clear();
    tick_ = last_tick_ = 0;
    running_ = cancelled_ = 0;
    warned_cancelled_ = false;
    try {
      while (!event()) {
      }
    } catch (const Truncated&) {
    }
    // Notes still sounding end at the track's last tick.
    open_.drain([&](std::uint32_t slot) { out_.notes[slot].end = last_tick_; });
    out_.track_names.push_back(std::move(name_));
  }

 private:
  // Reads one event; true when the track ends (End-of-Track, or the end of the chunk).
  bool event() {
    if (pos_ >= end_) {
      if (!truncated_)
        out_.warnings.push_back(format("track %u: no End-of-Track event; the track ends at tick %lld",
                                       track_, static_cast<long long>(last_tick_)));
      return true;
    }
    const std::size_t ev = pos_;
    const std::uint32_t delta = vlq("a delta time");
    if (tick_ > kInt64Max - static_cast<std::int64_t>(delta))
      fail("absolute tick overflows a 64-bit integer", ev);
    tick_ += delta;
    const unsigned status = read_status();
    if (status < 0xF0) {
      channel_event(status);
      return false;
    }
    if (status == 0xFF) return meta_event();
    if (status == 0xF0 || status == 0xF7) {
      sysex_event();
      return false;
    }
    fail(format("status byte 0x%02x (a system common or real-time message) is not allowed in a "
                "MIDI file",
                status),
         pos_ - 1);
  }

  // The event's status byte: read, or the running status (meta and sysex events cancel it).
  unsigned read_status() {
    need(pos_, 1, "a status byte");
    const unsigned b = d_[pos_];
    if (b >= 0x80) {
      ++pos_;
      return b;
    }
    if (running_) return running_;
    if (cancelled_) {
      // Running status after a meta/sysex event, which cancels it (SMF 1.0). Real files do
      // this; recover as the best readers do, reusing the cancelled status.
      running_ = cancelled_;
      if (!warned_cancelled_) {
        warned_cancelled_ = true;
        out_.warnings.push_back(
            format("track %u: running status used after a meta or sysex event, which cancels it "
                   "(byte %llu); reusing status 0x%02x",
                   track_, static_cast<unsigned long long>(pos_), running_));
      }
      return running_;
    }
    fail(format("data byte 0x%02x without a running status (expected a status byte)", b), pos_);
  }

  void channel_event(unsigned status) {
    running_ = status;
    const std::size_t nd = ((status & 0xE0) == 0xC0) ? 1 : 2;
    need(pos_, nd, "channel event data");
    for (std::size_t i = 0; i < nd; ++i)
      if (d_[pos_ + i] >= 0x80)
        fail(format("expected a data byte after status 0x%02x, found 0x%02x", status,
                    d_[pos_ + i]),
             pos_ + i);
    const unsigned kind = status & 0xF0, ch = status & 0x0F, d0 = d_[pos_];
    if (kind == 0x90 && d_[pos_ + 1] > 0) {
      open_.push((ch << 7) | d0, static_cast<std::uint32_t>(out_.notes.size()));
      out_.notes.push_back(Note{static_cast<std::uint16_t>(track_), static_cast<std::uint8_t>(ch),
                                static_cast<std::uint8_t>(d0), d_[pos_ + 1], tick_, tick_});
    } else if (kind == 0x80 || kind == 0x90) {
      std::uint32_t slot;
      if (open_.pop((ch << 7) | d0, slot)) out_.notes[slot].end = tick_;
    } else if (kind == 0xC0) {
      out_.programs.push_back(Program{tick_, static_cast<std::uint16_t>(track_),
                                      static_cast<std::uint8_t>(ch),
                                      static_cast<std::uint8_t>(d0)});
    }
    pos_ += nd;
    last_tick_ = tick_;
  }

  void cancel_running() {
    if (running_) cancelled_ = running_;
    running_ = 0;
  }

  // A meta event; true for End-of-Track.
  bool meta_event() {
    cancel_running();
    need(pos_, 1, "a meta event type");
    const unsigned mtype = d_[pos_++];
    const std::uint32_t length = vlq("a meta event length");
    payload_fits(length, "meta event");
    const std::uint8_t* p = d_ + pos_;
    pos_ += length;
    last_tick_ = tick_;
    if (mtype == 0x2F) return true;
    if (mtype == 0x51 && length >= 3) {
      out_.tempos.push_back(
          Tempo{tick_, (std::uint32_t(p[0]) << 16) | (std::uint32_t(p[1]) << 8) | p[2]});
    } else if (mtype == 0x58 && length >= 2 && p[1] <= 7) {
      out_.time_signatures.push_back(
          TimeSignature{tick_, p[0], static_cast<std::uint8_t>(1u << p[1]),
                        static_cast<std::uint8_t>(length > 2 ? p[2] : 24),
                        static_cast<std::uint8_t>(length > 3 ? p[3] : 8)});
    } else if (mtype == 0x59 && length >= 2) {
      out_.key_signatures.push_back(KeySignature{tick_, static_cast<std::uint16_t>(track_),
                                                 static_cast<std::int8_t>(p[0]), p[1]});
    } else if (mtype == 0x03 && !has_name_) {
      has_name_ = true;
      name_.assign(reinterpret_cast<const char*>(p), length);
    }
    return false;
  }

  void sysex_event() {
    cancel_running();
    const std::uint32_t length = vlq("a sysex length");
    payload_fits(length, "sysex");
    pos_ += length;
    last_tick_ = tick_;
  }

  void need(std::size_t p, std::size_t k, const char* what) const {
    if (end_ - p < k) {
      if (truncated_) throw Truncated{};
      fail(format("unexpected end of track %u chunk while reading %s (%llu bytes needed, %llu "
                  "left)",
                  track_, what, static_cast<unsigned long long>(k),
                  static_cast<unsigned long long>(end_ - p)),
           p);
    }
  }
  // A meta/sysex payload of `length` bytes at pos_ must end inside the chunk.
  void payload_fits(std::uint32_t length, const char* what) const {
    if (length > end_ - pos_) {
      if (truncated_) throw Truncated{};
      fail(format("%s length %u runs past the end of the track %u chunk (%llu bytes left)", what,
                  length, track_, static_cast<unsigned long long>(end_ - pos_)),
           pos_);
    }
  }
  // A variable-length quantity of at most 4 bytes (the SMF limit).
  std::uint32_t vlq(const char* what) {
    const std::size_t p = pos_;
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < 4; ++i) {
      need(p + i, 1, what);
      const std::uint8_t b = d_[p + i];
      value = (value << 7) | (b & 0x7F);
      if (b < 0x80) {
        pos_ = p + i + 1;
        return value;
      }
    }
    fail(format("variable-length quantity longer than 4 bytes in %s", what), p);
  }

  const std::uint8_t* d_;
  ScoreData& out_;
  OpenNotes& open_;
  std::size_t pos_ = 0, end_ = 0;
  bool truncated_ = false;
  unsigned track_ = 0;
  // The current track's state.
  bool has_name_ = false;
  std::string name_;
  std::int64_t tick_ = 0, last_tick_ = 0;  // last_tick_: the tick of the last complete event
  unsigned running_ = 0;
  unsigned cancelled_ = 0;  // the channel status a meta/sysex event cancelled (for recovery)
  bool warned_cancelled_ = false;
};

// Each track's notes are already in start order (stored at their note-on). Order the notes of
// equal start within a track by (channel, pitch, end, velocity), then merge the tracks by
// (start, track): the full order (start, track, channel, pitch, end, velocity) in O(n log k).
void sort_notes(std::vector<Note>& notes, const std::vector<std::size_t>& segments) {
  auto tie_less = [](const Note& a, const Note& b) {
    const unsigned ka = (unsigned(a.channel) << 7) | a.pitch, kb = (unsigned(b.channel) << 7) | b.pitch;
    if (ka != kb) return ka < kb;
    if (a.end != b.end) return a.end < b.end;
    return a.velocity < b.velocity;
  };
  for (std::size_t i = 0; i < notes.size();) {
    std::size_t j = i + 1;
    while (j < notes.size() && notes[j].start == notes[i].start && notes[j].track == notes[i].track)
      ++j;
    if (j - i > 1) {  // chord-sized runs: insertion sort
      for (std::size_t a = i + 1; a < j; ++a) {
        Note x = notes[a];
        std::size_t b = a;
        for (; b > i && tie_less(x, notes[b - 1]); --b) notes[b] = notes[b - 1];
        notes[b] = x;
      }
    }
    i = j;
  }
  // Merge adjacent track segments pairwise until one remains (stable: track order kept).
  std::vector<std::size_t> bounds;
  for (std::size_t b : segments)
    if (bounds.empty() || b != bounds.back()) bounds.push_back(b);
  if (bounds.size() <= 2) return;
  std::vector<Note> buf(notes.size());
  auto by_start = [](const Note& a, const Note& b) { return a.start < b.start; };
  while (bounds.size() > 2) {
    std::vector<std::size_t> next{0};
    for (std::size_t k = 0; k + 1 < bounds.size(); k += 2) {
      const std::size_t lo = bounds[k], mid = bounds[k + 1];
      const std::size_t hi = k + 2 < bounds.size() ? bounds[k + 2] : mid;
      std::merge(notes.begin() + lo, notes.begin() + mid, notes.begin() + mid,
                 notes.begin() + hi, buf.begin() + lo, by_start);
      next.push_back(hi);
    }
    notes.swap(buf);
    bounds.swap(next);
  }
}

}  // namespace

namespace {

// [base, n) of the SMF inside a RIFF RMID wrapper (the whole buffer otherwise).
void unwrap_riff(const std::uint8_t* data, std::size_t& base, std::size_t& n) {
  if (n < 4 || std::memcmp(data, "RIFF", 4) != 0) return;
  if (n < 12 || std::memcmp(data + 8, "RMID", 4) != 0)
    fail("RIFF file is not an RMID file (expected 'RMID' at byte 8)", 8);
  std::size_t pos = 12;
  while (n - pos >= 8) {
    const std::size_t size = le32(data + pos + 4), start = pos + 8;
    if (std::memcmp(data + pos, "data", 4) == 0) {
      base = start;
      n = std::min(start + size, n);
      return;
    }
    pos = start + size + (size & 1);
    if (pos > n) break;
  }
  fail("RIFF RMID file has no 'data' chunk holding the MIDI data", 12);
}

struct Header {
  std::uint32_t length = 0;
  unsigned ntrks = 0;
};

// The MThd chunk at `base`: format and division into `out`; its length and track count.
Header read_header(const std::uint8_t* d, std::size_t base, std::size_t size, ScoreData& out) {
  if (size == 0) fail("file is empty (expected a 'MThd' header chunk)", base);
  if (std::memcmp(d + base, "MThd", std::min<std::size_t>(4, size)) != 0)
    fail("not a MIDI file (expected a 'MThd' header chunk)", base);
  if (size < 14)
    fail(format("unexpected end of file in the MThd header (14 bytes needed, %llu present)",
                static_cast<unsigned long long>(size)),
         base + size);
  Header h;
  h.length = be32(d + base + 4);
  if (h.length < 6)
    fail(format("MThd header length %u is too small (expected 6)", h.length), base + 4);
  if (h.length > size - 8)
    fail(format("MThd header length %u runs past the end of the file (%llu bytes left)", h.length,
                static_cast<unsigned long long>(size - 8)),
         base + 4);
  const unsigned fmt = be16(d + base + 8), division = be16(d + base + 12);
  h.ntrks = be16(d + base + 10);
  if (fmt > 2) fail(format("unsupported SMF format %u (expected 0, 1 or 2)", fmt), base + 8);
  out.format = static_cast<int>(fmt);
  if (division & 0x8000) {
    const unsigned fps = 256 - (division >> 8), tpf = division & 0xFF;
    if (fps != 24 && fps != 25 && fps != 29 && fps != 30)
      fail(format("SMPTE division with %u frames per second (expected 24, 25, 29 or 30)", fps),
           base + 12);
    if (tpf == 0) fail("SMPTE division with 0 ticks per frame (expected > 0)", base + 13);
    out.smpte_fps = static_cast<int>(fps);
    out.smpte_ticks_per_frame = static_cast<int>(tpf);
    out.ticks_per_beat = 0;
  } else if (division == 0) {
    fail("ticks per beat is 0 (expected > 0)", base + 12);
  } else {
    out.ticks_per_beat = static_cast<int>(division);
  }
  return h;
}

// Every chunk from `pos` to `n`: MTrk chunks are read as tracks, others skipped. Returns the
// note index where each track's notes begin (and the end), for sort_notes.
std::vector<std::size_t> read_tracks(const std::uint8_t* d, std::size_t pos, std::size_t n,
                                     const Header& h, ScoreData& out) {
  static thread_local OpenNotes open;
  Reader reader(d, out, open);
  std::vector<std::size_t> segments{0};
  const std::size_t first_chunk = pos;
  unsigned track = 0;
  while (n - pos >= 8) {
    const std::size_t clen = be32(d + pos + 4), body = pos + 8;
    std::size_t end = body + clen;
    if (std::memcmp(d + pos, "MTrk", 4) == 0) {
      if (track >= kMaxTracks) fail(format("more than %zu track chunks", kMaxTracks), pos);
      const bool truncated = end > n;
      if (truncated) {
        out.warnings.push_back(format(
            "track %u: chunk length %llu runs past the end of the file (%llu bytes present); "
            "read what is there",
            track, static_cast<unsigned long long>(clen),
            static_cast<unsigned long long>(n - body)));
        end = n;
      }
      try {
        reader.track(body, end, truncated, track);
      } catch (...) {
        open.drain([](std::uint32_t) {});  // leave the per-thread queues empty for the next file
        throw;
      }
      segments.push_back(out.notes.size());
      ++track;
    } else if (end > n) {
      break;  // an unknown chunk cut short by the end of the file: nothing more to read
    }
    pos = end;
  }
  if (track == 0 && h.ntrks > 0)
    fail(format("no 'MTrk' track chunk found (the header declares %u)", h.ntrks), first_chunk);
  return segments;
}

// The metadata arrays in Score order (stable: file order among equal keys).
void sort_metadata(ScoreData& out) {
  std::stable_sort(out.tempos.begin(), out.tempos.end(),
                   [](const Tempo& a, const Tempo& b) { return a.tick < b.tick; });
  std::stable_sort(out.time_signatures.begin(), out.time_signatures.end(),
                   [](const TimeSignature& a, const TimeSignature& b) { return a.tick < b.tick; });
  std::stable_sort(out.key_signatures.begin(), out.key_signatures.end(),
                   [](const KeySignature& a, const KeySignature& b) {
                     return a.tick != b.tick ? a.tick < b.tick : a.track < b.track;
                   });
  std::stable_sort(out.programs.begin(), out.programs.end(),
                   [](const Program& a, const Program& b) {
                     if (a.tick != b.tick) return a.tick < b.tick;
                     if (a.track != b.track) return a.track < b.track;
                     return a.channel < b.channel;
                   });
}

}  // namespace

ScoreData read_midi_bytes(const std::uint8_t* data, std::size_t n) {
  ScoreData out;
  std::size_t base = 0;
  unwrap_riff(data, base, n);
  const std::size_t size = n - base;
  const Header h = read_header(data, base, size, out);
  // At most one note per 3 bytes (note-on + note-off take >= 6 bytes with running status):
  // reserve from the bytes present, never from declared counts.
  out.notes.reserve(size / 6 + 16);
  const std::vector<std::size_t> segments = read_tracks(data, base + 8 + h.length, n, h, out);
  sort_notes(out.notes, segments);
  sort_metadata(out);
  return out;
}

}  // namespace musgen::midi
