// musgen::codec version 2 encoder: parts and programs, the grid, note hygiene, bars and meters,
// long silences, tempo changes, key and density, then the tokens. Every step mirrors
// python/musgen/codec/_python_v2.py (analyse, piece_tokens) exactly: same integer arithmetic,
// same order, same float expressions for the key.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <unordered_map>
#include <vector>

#include "internal.hpp"
#include "musgen/errors.hpp"

namespace musgen::codec {

namespace {

// Krumhansl-Kessler key profiles x100 (python: KK_MAJOR, KK_MINOR) and the trust in a key
// signature (python: KEY_SIGNATURE_TRUST).
constexpr std::int64_t kMajor[12] = {635, 223, 348, 233, 438, 409, 252, 519, 239, 366, 229, 288};
constexpr std::int64_t kMinor[12] = {633, 268, 352, 538, 260, 353, 254, 475, 398, 269, 334, 317};
constexpr double kKeySignatureTrust = 0.9;

struct Item {
  std::int64_t onset, duration;
  std::int32_t code, velocity, part;
};

bool item_less(const Item& a, const Item& b) {
  if (a.onset != b.onset) return a.onset < b.onset;
  if (a.part != b.part) return a.part < b.part;
  if (a.code != b.code) return a.code < b.code;
  if (a.duration != b.duration) return a.duration < b.duration;
  return a.velocity < b.velocity;
}

// Stream order (onset, part, code, duration, velocity). A Score's notes come sorted by start,
// so the onsets usually rise already: then each group sharing an onset is put in order by an
// insertion sort (a full sort cost more than the rest of the encoder).
void order_items(std::vector<Item>& items) {
  const std::size_t n = items.size();
  for (std::size_t i = 1; i < n; ++i) {
    if (items[i].onset < items[i - 1].onset) {
      std::sort(items.begin(), items.end(), item_less);
      return;
    }
  }
  for (std::size_t g = 0; g < n;) {
    std::size_t e = g + 1;
    while (e < n && items[e].onset == items[g].onset) ++e;
    for (std::size_t j = g + 1; j < e; ++j) {
      const Item x = items[j];
      std::size_t k = j;
      while (k > g && item_less(x, items[k - 1])) {
        items[k] = items[k - 1];
        --k;
      }
      items[k] = x;
    }
    g = e;
  }
}

// A kept note before its part is known.
struct Kept {
  std::size_t index;  // into the score's notes
  std::int32_t code;
  std::int32_t program;
};

// ------------------------------------------------------------------------------- parts
// The program of every kept note (python: note_programs): drums 128, else the last Program
// Change of its (track, channel) at or before its start tick, else 0.
void note_programs(const ScoreView& s, std::vector<Kept>& kept) {
  std::vector<std::size_t> order(s.n_programs);
  std::iota(order.begin(), order.end(), std::size_t{0});
  auto tc = [&](std::size_t i) {
    return static_cast<std::int64_t>(s.programs[i].track) * 16 + s.programs[i].channel;
  };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const std::int64_t ka = tc(a), kb = tc(b);
    return ka != kb ? ka < kb : s.programs[a].tick < s.programs[b].tick;
  });
  for (Kept& k : kept) {
    const Note& nt = s.notes[k.index];
    if (nt.channel == kDrumChannel) {
      k.program = kDrums;
      continue;
    }
    const std::int64_t key = static_cast<std::int64_t>(nt.track) * 16 + nt.channel;
    // the first program change after (key, start)
    auto it = std::upper_bound(order.begin(), order.end(), std::make_pair(key, nt.start),
                               [&](const std::pair<std::int64_t, std::int64_t>& v,
                                   std::size_t i) {
                                 const std::int64_t ki = tc(i);
                                 return v.first != ki ? v.first < ki
                                                      : v.second < s.programs[i].tick;
                               });
    k.program = 0;
    if (it != order.begin() && tc(*(it - 1)) == key) k.program = s.programs[*(it - 1)].program;
  }
}

struct Part {
  std::int64_t tc, program, first, count;
  std::vector<std::size_t> slots;
};

// Parts of the kept notes (python: assign_parts): part[i] for kept note i (-1: dropped),
// and the program of every part.
std::vector<std::int32_t> assign_parts(const ScoreView& s, const std::vector<Kept>& kept,
                                       std::int32_t max_parts, std::vector<std::int32_t>& part,
                                       EncodeReport& report) {
  // (track, channel, program) -> slot: a linear search of the few keys seen (a piece has a
  // handful of parts), a hash map beyond that
  std::vector<std::int64_t> slot_keys;
  std::unordered_map<std::int64_t, std::size_t> slot_of;
  std::vector<Part> slots;
  std::vector<std::size_t> slot(kept.size());
  std::int64_t last_key = -1;
  std::size_t last_slot = 0;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const Note& nt = s.notes[kept[i].index];
    const std::int64_t tc = static_cast<std::int64_t>(nt.track) * 16 + nt.channel;
    const std::int64_t key = tc * 129 + kept[i].program;
    if (key != last_key) {
      std::size_t k = 0;
      if (slot_keys.size() <= 32) {
        while (k < slot_keys.size() && slot_keys[k] != key) ++k;
      } else {
        auto it = slot_of.find(key);
        k = it == slot_of.end() ? slot_keys.size() : it->second;
      }
      if (k == slot_keys.size()) {
        slot_keys.push_back(key);
        slot_of.emplace(key, k);
        slots.push_back({tc, kept[i].program, nt.start, 0, {}});
      }
      last_key = key;
      last_slot = k;
    }
    Part& p = slots[last_slot];
    p.first = std::min(p.first, nt.start);
    ++p.count;
    slot[i] = last_slot;
  }
  std::vector<Part> parts;
  parts.reserve(slots.size());
  for (std::size_t k = 0; k < slots.size(); ++k) {
    parts.push_back(slots[k]);
    parts.back().slots = {k};
  }
  std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) {
    if (a.tc != b.tc) return a.tc < b.tc;
    if (a.first != b.first) return a.first < b.first;
    return a.program < b.program;
  });
  auto field = [](const Part& p, int f) { return f == 0 ? p.tc : p.program; };
  while (parts.size() > static_cast<std::size_t>(max_parts)) {
    bool done = false;
    for (int f = 0; f < 2 && !done; ++f) {
      for (std::size_t j = parts.size() - 1; j > 0 && !done; --j) {
        for (std::size_t i = 0; i < j; ++i) {
          if (field(parts[i], f) != field(parts[j], f)) continue;
          parts[i].count += parts[j].count;
          parts[i].slots.insert(parts[i].slots.end(), parts[j].slots.begin(),
                                parts[j].slots.end());
          parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(j));
          ++report.parts_merged;
          done = true;
          break;
        }
      }
    }
    if (done) continue;
    std::size_t fewest = 0;
    for (std::size_t k = 1; k < parts.size(); ++k)
      if (parts[k].count <= parts[fewest].count) fewest = k;
    ++report.parts_dropped;
    report.notes_dropped += parts[fewest].count;
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(fewest));
  }
  std::vector<std::int32_t> part_of_slot(slots.size(), -1);
  std::vector<std::int32_t> programs;
  for (std::size_t p = 0; p < parts.size(); ++p) {
    programs.push_back(static_cast<std::int32_t>(parts[p].program));
    for (std::size_t k : parts[p].slots) part_of_slot[k] = static_cast<std::int32_t>(p);
  }
  part.resize(kept.size());
  for (std::size_t i = 0; i < kept.size(); ++i) part[i] = part_of_slot[slot[i]];
  return programs;
}

// ------------------------------------------------------------------------------- bars
// The bar grid (python: Bars): meter segments from the time signatures.
class Bars {
 public:
  using Bar = std::pair<std::size_t, std::int64_t>;  // (segment, bar in segment)

  Bars(const std::vector<std::pair<std::int64_t, std::int32_t>>& events,
       const std::vector<std::int64_t>& lengths, std::int32_t header) {
    add(0, lengths[header], header);
    for (const auto& [s, m] : events) {
      const std::int64_t start = start_.back(), L = length_.back();
      const std::int64_t b = start + std::max<std::int64_t>(0, ceil_div(s - start, L)) * L;
      if (b == start && start_.size() > 1) {
        length_.back() = lengths[m];
        meter_.back() = m;
        if (meter_[meter_.size() - 2] == m) {
          start_.pop_back();
          length_.pop_back();
          meter_.pop_back();
        }
      } else if (m != meter_.back() && b > start) {
        add(b, lengths[m], m);
      }
    }
  }
  Bar at(std::int64_t t) const {
    const std::size_t k =
        static_cast<std::size_t>(std::upper_bound(start_.begin(), start_.end(), t) -
                                 start_.begin()) -
        1;
    return {k, (t - start_[k]) / length_[k]};
  }
  std::int64_t begin(Bar b) const { return start_[b.first] + b.second * length_[b.first]; }
  std::int64_t length(Bar b) const { return length_[b.first]; }
  std::int32_t meter(Bar b) const { return meter_[b.first]; }
  Bar first_at_or_after(std::int64_t t) const {
    const Bar b = at(t);
    return begin(b) == t ? b : following(b);
  }
  Bar following(Bar b) const {
    if (b.first + 1 < start_.size() && begin({b.first, b.second + 1}) >= start_[b.first + 1])
      return {b.first + 1, 0};
    return {b.first, b.second + 1};
  }
  // Bars from a (inclusive) to b (exclusive).
  std::int64_t count(Bar a, Bar b) const {
    if (!(a < b)) return 0;
    if (a.first == b.first) return b.second - a.second;
    std::int64_t n = bars_in(a.first) - a.second;
    for (std::size_t k = a.first + 1; k < b.first; ++k) n += bars_in(k);
    return n + b.second;
  }

 private:
  static std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
  }
  void add(std::int64_t s, std::int64_t L, std::int32_t m) {
    start_.push_back(s);
    length_.push_back(L);
    meter_.push_back(m);
  }
  std::int64_t bars_in(std::size_t k) const { return (start_[k + 1] - start_[k]) / length_[k]; }
  std::vector<std::int64_t> start_, length_;
  std::vector<std::int32_t> meter_;
};

// What the stream holds besides the notes (python: the Piece fields).
struct Layout {
  std::int32_t meter = 0, tempo = 0, key = 0, density = 0;
  std::vector<std::int64_t> bars;  // output start of every bar
  std::vector<std::int32_t> bar_meter;
  std::vector<std::int64_t> input_on;  // onsets in the input timeline
  std::vector<std::pair<std::int64_t, std::int32_t>> tempo_changes;
};

// The bars the stream holds and where the onsets land (python: _meter_and_bars): silent bars
// beyond the silence limit are removed. Rewrites items[].onset to the output timeline.
void meter_and_bars(const ScoreView& s, const StepConverter& steps, std::int64_t hi,
                    const Vocab& v, std::vector<Item>& items, Layout& lay,
                    EncodeReport& report) {
  std::int32_t header = v.p.meter_44;
  std::vector<std::pair<std::int64_t, std::int32_t>> events;
  for (std::size_t i = 0; i < s.n_meters; ++i) {
    const std::int64_t st = steps(std::min(s.meter_ticks[i], hi + 1));
    if (st <= 0)
      header = s.meter_index[i];
    else
      events.emplace_back(st, s.meter_index[i]);
  }
  const Bars grid(events, v.p.meter_bar_steps, header);
  lay.meter = header;
  const std::int64_t limit = v.p.silence_steps;
  const std::int64_t n3 = 3 * static_cast<std::int64_t>(items.size());
  std::int64_t out_at = 0, removed = 0, sounding = 0;
  bool have_prev = false;
  Bars::Bar prev{0, 0};
  std::int64_t prev_begin = 0, prev_end = 0;  // the last bar emitted, input timeline
  auto emit = [&](Bars::Bar b) {
    lay.bars.push_back(out_at);
    lay.bar_meter.push_back(grid.meter(b));
    if (static_cast<std::int64_t>(lay.bars.size()) + n3 > kMaxTokens) too_many_tokens();
    out_at += grid.length(b);
  };
  lay.input_on.resize(items.size());
  for (std::size_t g = 0; g < items.size();) {
    const std::int64_t t = items[g].onset;
    std::size_t e = g;
    std::int64_t group_end = 0;
    for (; e < items.size() && items[e].onset == t; ++e)
      group_end = std::max(group_end, t + items[e].duration);
    // an onset in the bar of the one before (the usual case) needs no search nor division
    const bool same_bar = have_prev && t < prev_end;
    const Bars::Bar bar_t = same_bar ? prev : grid.at(t);
    if (!same_bar) {
      const Bars::Bar nxt = have_prev ? grid.following(prev) : Bars::Bar{0, 0};
      Bars::Bar silent_from = sounding ? std::max(nxt, grid.first_at_or_after(sounding)) : nxt;
      silent_from = std::min(silent_from, bar_t);
      if (grid.count(nxt, silent_from) + static_cast<std::int64_t>(lay.bars.size()) + n3 >
              kMaxTokens ||
          (limit <= 0 && grid.count(nxt, bar_t) > kMaxTokens))
        too_many_tokens();
      Bars::Bar b = nxt;
      for (; b < silent_from; b = grid.following(b)) emit(b);
      std::int64_t kept = 0;
      for (; b < bar_t && (limit <= 0 || kept < limit); b = grid.following(b)) {
        kept += grid.length(b);
        emit(b);
      }
      if (b < bar_t) {
        ++report.silences_shortened;
        removed += grid.begin(bar_t) - grid.begin(b);
      }
      emit(bar_t);
      have_prev = true;
      prev = bar_t;
      prev_begin = grid.begin(bar_t);
      prev_end = prev_begin + grid.length(bar_t);
    }
    const std::int64_t out_t = lay.bars.back() + (t - prev_begin);
    for (std::size_t i = g; i < e; ++i) {
      lay.input_on[i] = t;
      items[i].onset = out_t;
    }
    sounding = std::max(sounding, group_end);
    g = e;
  }
  report.steps_removed = removed;
}

// Header tempo and the changes at onsets (python: _tempo_changes).
void tempo_changes(const ScoreView& s, const StepConverter& steps, std::int64_t hi,
                   const Vocab& v, const std::vector<Item>& items, Layout& lay) {
  std::vector<std::int64_t> t_steps(s.n_tempos);
  for (std::size_t i = 0; i < s.n_tempos; ++i)
    t_steps[i] = steps(std::min(s.tempo_ticks[i], hi + 1));
  auto bin_at = [&](std::int64_t st) {
    const std::size_t i =
        static_cast<std::size_t>(std::upper_bound(t_steps.begin(), t_steps.end(), st) -
                                 t_steps.begin());
    return i > 0 ? s.tempo_bins[i - 1] : v.p.default_tempo_bin;
  };
  lay.tempo = bin_at(0);
  std::int32_t cur = lay.tempo;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0 && lay.input_on[i] == lay.input_on[i - 1]) continue;
    const std::int32_t b = bin_at(lay.input_on[i]);
    if (b != cur) {
      lay.tempo_changes.emplace_back(items[i].onset, b);
      cur = b;
    }
  }
}

// ------------------------------------------------------------------------------- key, density
// python: key_profile_scores and choose_key (the same integers, the same float expressions).
std::int32_t choose_key(const std::int64_t hist[12], std::int32_t meta) {
  std::int64_t H = 0;
  for (int i = 0; i < 12; ++i) H += hist[i];
  if (H == 0) return meta < 0 ? 0 : meta;
  double r[kKeys];
  for (int mode = 0; mode < 2; ++mode) {
    const std::int64_t* prof = mode ? kMinor : kMajor;
    std::int64_t P = 0, P2 = 0;
    for (int i = 0; i < 12; ++i) {
      P += prof[i];
      P2 += prof[i] * prof[i];
    }
    const std::int64_t spread = 12 * P2 - P * P;
    for (int tonic = 0; tonic < 12; ++tonic) {
      std::int64_t dot = 0;
      for (int i = 0; i < 12; ++i) dot += hist[i] * prof[((i - tonic) % 12 + 12) % 12];
      const std::int64_t c = 12 * dot - H * P;
      r[tonic + 12 * mode] = static_cast<double>(c) / std::sqrt(static_cast<double>(spread));
    }
  }
  int best = 0;
  for (int k = 1; k < kKeys; ++k)
    if (r[k] > r[best]) best = k;
  if (meta < 0) return best;
  std::int32_t pick = meta;
  if (meta < 12) {
    const std::int32_t rel = (meta + 9) % 12 + 12;
    if (r[rel] > r[meta]) pick = rel;
  }
  if (r[best] <= 0.0 || r[pick] >= kKeySignatureTrust * r[best]) return pick;
  return best;
}

std::int32_t find_key(const std::vector<Item>& items, const Vocab& v, std::int32_t meta) {
  std::int64_t hist[12] = {};
  const std::int64_t most = 32 * static_cast<std::int64_t>(v.p.steps_per_beat);
  for (const Item& it : items)
    if (it.code < v.n_pitches) hist[(it.code + v.p.pitch_lo) % 12] += std::min(it.duration, most);
  return choose_key(hist, meta);
}

std::int32_t density_bin(const std::vector<Item>& items, const Vocab& v) {
  const std::int64_t spb = v.p.steps_per_beat;
  std::int64_t length = spb;
  for (const Item& it : items) length = std::max(length, it.onset + it.duration);
  const __int128 lhs = static_cast<__int128>(items.size()) * spb * 1000;
  std::int32_t bin = 0;
  for (std::int64_t e : v.p.density_bounds_milli)
    if (lhs >= static_cast<__int128>(e) * length) ++bin;
  return bin;
}

// ------------------------------------------------------------------------------- tokens
// The tokens, written through a pointer into a buffer sized for the common case (a TimeShift,
// a Tempo and a Part per onset, four tokens a note, a Bar and a TimeSig per bar), grown only
// before an onset that needs more (python: piece_tokens).
class Writer {
 public:
  Writer(const Vocab& v, Tokens& out, std::size_t estimate) : v_(v), out_(out) {
    out_.resize(estimate);
    w_ = out_.data();
    end_ = w_ + out_.size();
  }
  // Room for `n` more tokens.
  void room(std::int64_t n) {
    const std::int64_t at = w_ - out_.data();
    if (at + n > kMaxTokens) too_many_tokens();
    if (end_ - w_ >= n) return;
    out_.resize(static_cast<std::size_t>(
        std::max<std::int64_t>(at + n, static_cast<std::int64_t>(out_.size()) * 2)));
    w_ = out_.data() + at;
    end_ = out_.data() + out_.size();
  }
  void put(std::int32_t t) { *w_++ = t; }
  void span(std::int64_t value, std::int32_t largest, std::int32_t base) {
    if (value <= largest) {
      *w_++ = base + static_cast<std::int32_t>(value) - 1;
      return;
    }
    for (std::int64_t q = value / largest; q > 0; --q) *w_++ = base + largest - 1;
    if (value % largest > 0) *w_++ = base + static_cast<std::int32_t>(value % largest) - 1;
  }
  void finish() { out_.resize(static_cast<std::size_t>(w_ - out_.data())); }

 private:
  const Vocab& v_;
  Tokens& out_;
  std::int32_t* w_ = nullptr;
  std::int32_t* end_ = nullptr;
};

std::int64_t span_count(std::int64_t value, std::int32_t largest) {
  return value <= largest ? 1 : value / largest + (value % largest > 0);
}

void write_tokens(const std::vector<std::int32_t>& programs, const std::vector<Item>& items,
                  const Layout& lay, std::int32_t style, const Vocab& v, Tokens& out) {
  const std::int32_t M = v.p.max_time_shift, D = v.p.max_duration;
  Writer w(v, out, items.size() * 5 + lay.bars.size() * 2 + programs.size() + 8);
  w.room(static_cast<std::int64_t>(programs.size()) + 6);
  w.put(v.bos_id);
  for (std::int32_t p : programs) w.put(v.program_base + p);
  w.put(v.key_base + lay.key);
  w.put(v.style_base + style);
  w.put(v.density_base + lay.density);
  w.put(v.tempo_base + lay.tempo);
  w.put(v.timesig_base + lay.meter);
  std::int32_t meter = lay.meter, part = 0;
  std::size_t next_bar = 0, next_tempo = 0;
  std::int64_t clock = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    const std::int64_t t = it.onset;
    if (i == 0 || t != items[i - 1].onset) {
      while (next_bar < lay.bars.size() && lay.bars[next_bar] <= t) {
        w.room(2);
        w.put(v.bar_id);
        if (lay.bar_meter[next_bar] != meter) {
          meter = lay.bar_meter[next_bar];
          w.put(v.timesig_base + meter);
        }
        clock = lay.bars[next_bar++];
      }
      if (t > clock) {
        w.room(span_count(t - clock, M) + 1);
        w.span(t - clock, M, v.time_base);
        clock = t;
      }
      if (next_tempo < lay.tempo_changes.size() && lay.tempo_changes[next_tempo].first == t) {
        w.room(1);
        w.put(v.tempo_base + lay.tempo_changes[next_tempo++].second);
      }
    }
    w.room(3 + span_count(it.duration, D));
    if (it.part != part) {
      w.put(v.part_base + it.part);
      part = it.part;
    }
    w.put(v.pitch_base + it.code);
    w.put(v.velocity_base + it.velocity);
    w.span(it.duration, D, v.duration_base);
  }
  w.room(1);
  w.put(v.eos_id);
  w.finish();
}

// The notes the stream keeps, on the grid, in stream order, merged and hygienic (python:
// the first half of analyse).
std::vector<Item> grid_items(const ScoreView& s, const StepConverter& steps, const Vocab& v,
                             std::vector<std::int32_t>& programs, EncodeReport& report) {
  std::vector<Kept> kept;
  kept.reserve(s.n_notes);
  for (std::size_t i = 0; i < s.n_notes; ++i) {
    const Note& nt = s.notes[i];
    if (nt.channel == kDrumChannel) {
      if (!v.p.keep_drums || nt.pitch < v.p.drum_lo || nt.pitch > v.p.drum_hi) continue;
      kept.push_back({i, v.n_pitches + nt.pitch - v.p.drum_lo, 0});
    } else {
      if (nt.pitch < v.p.pitch_lo || nt.pitch > v.p.pitch_hi) continue;
      kept.push_back({i, nt.pitch - v.p.pitch_lo, 0});
    }
  }
  note_programs(s, kept);
  std::vector<std::int32_t> part;
  programs = assign_parts(s, kept, v.p.max_parts, part, report);
  if (programs.empty()) programs.push_back(0);
  std::vector<Item> items;
  items.reserve(kept.size());
  const std::int64_t cap = v.p.cap_steps;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (part[i] < 0) continue;
    const Note& nt = s.notes[kept[i].index];
    const std::int64_t on = steps(nt.start);
    std::int64_t dur = std::max<std::int64_t>(steps(nt.end) - on, 1);
    if (cap > 0 && dur > cap) {
      dur = cap;
      ++report.notes_capped;
    }
    items.push_back({on, dur, kept[i].code,
                     std::max<std::int32_t>(nt.velocity, 1) >> v.velocity_shift, part[i]});
  }
  order_items(items);
  std::size_t m = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i + 1 < items.size() && items[i + 1].onset == items[i].onset &&
        items[i + 1].part == items[i].part && items[i + 1].code == items[i].code)
      continue;
    items[m++] = items[i];
  }
  items.resize(m);
  // re-strikes end the earlier note, per (part, code): one slot per voice
  std::vector<std::int64_t> last(programs.size() * static_cast<std::size_t>(v.n_codes()), -1);
  for (std::size_t i = 0; i < m; ++i) {
    std::int64_t& prev = last[static_cast<std::size_t>(items[i].part) *
                                  static_cast<std::size_t>(v.n_codes()) +
                              static_cast<std::size_t>(items[i].code)];
    if (prev >= 0) {
      Item& p = items[static_cast<std::size_t>(prev)];
      p.duration = std::min(p.duration, items[i].onset - p.onset);
    }
    prev = static_cast<std::int64_t>(i);
  }
  return items;
}

}  // namespace

void encode_score_v2(const ScoreView& s, const Vocab& v, Tokens& out,
                     EncodeReport& report) {
  report = EncodeReport{};
  const CheckedTime c = check_time_base(s);
  const StepConverter steps(s.time, c);
  std::vector<std::int32_t> programs;
  std::vector<Item> items = grid_items(s, steps, v, programs, report);
  Layout lay;
  meter_and_bars(s, steps, c.hi, v, items, lay, report);
  tempo_changes(s, steps, c.hi, v, items, lay);
  lay.key = find_key(items, v, s.meta_key);
  lay.density = density_bin(items, v);
  write_tokens(programs, items, lay, s.style, v, out);
}

}  // namespace musgen::codec
