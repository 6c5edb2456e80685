// musgen::codec version 2 decoder: walks the grammar automaton, follows the bar clock, the
// header, parts, tempo and meter changes, then applies note hygiene. Mirrors
// python/musgen/codec/_python_v2.py (decode_tokens, apply_hygiene) exactly.
#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "internal.hpp"
#include "musgen/errors.hpp"

namespace musgen::codec {

namespace {

// python: apply_hygiene. Of the notes one part strikes on one key at one onset the longest
// (then the loudest) stays; a note still sounding when its part strikes the same key again ends
// there; at a closing bar every note sounding at the last onset is held to the bar line and
// nothing sounds past it; no note is longer than the cap.
void apply_hygiene(DecodedPiece& d, const Vocab& v) {
  const std::size_t n = d.on.size();
  std::unordered_map<std::int64_t, std::size_t> last;
  std::vector<bool> drop(n, false);
  for (std::size_t i = 0; i < n; ++i) {
    // the key the note sounds on: (part, channel 9 or not, MIDI pitch) (python: voices)
    const bool drum_code = d.code[i] >= v.n_pitches;
    const std::size_t part = static_cast<std::size_t>(d.part[i]);
    const bool drum = drum_code || (part < d.programs.size() && d.programs[part] == kDrums);
    const std::int64_t pitch =
        drum_code ? d.code[i] - v.n_pitches + v.p.drum_lo : d.code[i] + v.p.pitch_lo;
    const std::int64_t voice = d.part[i] * 256 + (drum ? 128 : 0) + pitch;
    auto [it, fresh] = last.try_emplace(voice, i);
    if (fresh) continue;
    const std::size_t p = it->second;
    if (d.on[p] == d.on[i]) {  // one note per (onset, key): the longest, then the loudest
      const bool later_wins = d.dur[i] != d.dur[p] ? d.dur[i] > d.dur[p] : d.vel[i] >= d.vel[p];
      drop[later_wins ? p : i] = true;
      if (later_wins) it->second = i;
      continue;
    }
    d.dur[p] = std::min(d.dur[p], d.on[i] - d.on[p]);
    it->second = i;
  }
  std::size_t m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (drop[i]) continue;
    d.on[m] = d.on[i];
    d.dur[m] = d.dur[i];
    d.code[m] = d.code[i];
    d.vel[m] = d.vel[i];
    d.part[m] = d.part[i];
    ++m;
  }
  for (auto* a : {&d.on, &d.dur, &d.code, &d.vel, &d.part}) a->resize(m);
  const std::size_t kept = m;
  if (d.end >= 0 && kept > 0) {
    const std::int64_t last_on = *std::max_element(d.on.begin(), d.on.end());
    for (std::size_t i = 0; i < kept; ++i) {
      const bool held = d.on[i] + d.dur[i] > last_on;
      d.dur[i] = held || d.on[i] == last_on ? d.end - d.on[i]
                                            : std::min(d.dur[i], d.end - d.on[i]);
    }
  }
  if (v.p.cap_steps > 0)
    for (std::int64_t& x : d.dur) x = std::min(x, v.p.cap_steps);
}

}  // namespace

DecodedPiece decode_tokens_v2(const std::int32_t* tokens, std::size_t n_tokens,
                              const GrammarTable& g, const Vocab& v) {
  if (g.table == nullptr || g.start_state < 0 || g.start_state >= g.n_states)
    throw CodecError("decode_tokens: bad grammar table");
  const std::int32_t V = v.vocab_size;
  DecodedPiece d;
  std::int32_t state = g.start_state;
  std::int64_t clock = 0, bar_start = 0, bar_len = 0;
  bool started = false, after_velocity = false, prev_bar = false;
  bool have_tempo = false;
  std::int32_t part = 0, code = 0, vel = 0;
  for (std::size_t pos = 0; pos < n_tokens; ++pos) {
    const std::int32_t t = tokens[pos];
    const std::int32_t* row = g.table + static_cast<std::size_t>(state) * V;
    if (t < 0 || t >= V || row[t] < 0) throw CodecError(violation_message(v, row, pos, t));
    if (row[t] >= g.n_states)
      throw CodecError("decode_tokens: bad grammar table (state out of range)");
    state = row[t];
    const bool was_bar = prev_bar;
    prev_bar = false;
    if (t >= v.duration_base) {
      const std::int64_t dd = t - v.duration_base + 1;
      if (after_velocity) {
        d.on.push_back(clock);
        d.dur.push_back(dd);
        d.code.push_back(code);
        d.vel.push_back(vel);
        d.part.push_back(part);
      } else if (!d.dur.empty()) {
        d.dur.back() += dd;  // the grammar only allows this right after a Duration
      } else {  // only a damaged table lets a Duration come first
        throw CodecError("decode_tokens: bad grammar table (Duration token " + std::to_string(t) +
                         " at position " + std::to_string(pos) + " continues no note)");
      }
      after_velocity = false;
      continue;
    }
    after_velocity = false;
    if (t >= v.velocity_base) {
      vel = t - v.velocity_base;
      after_velocity = true;
    } else if (t >= v.pitch_base) {
      code = t - v.pitch_base;
    } else if (t >= v.part_base) {
      // a Part beyond the declared parts decodes into the last one
      part = std::min<std::int32_t>(t - v.part_base,
                                    std::max<std::int32_t>(
                                        static_cast<std::int32_t>(d.programs.size()) - 1, 0));
    } else if (t >= v.time_base) {
      clock += t - v.time_base + 1;
    } else if (t == v.bar_id) {
      // the next bar line after the clock (a TimeShift that crossed bar lines: the bars it
      // crossed are counted, "wrap")
      if (started) bar_start += bar_len * ((clock - bar_start) / bar_len + 1);
      started = true;
      clock = bar_start;
      prev_bar = true;
    } else if (t >= v.timesig_base) {
      const std::int32_t m = t - v.timesig_base;
      if (started) {
        d.meter_changes.push_back(bar_start);
        d.meter_changes.push_back(m);
      } else {
        d.meter = m;
      }
      bar_len = v.p.meter_bar_steps[static_cast<std::size_t>(m)];
    } else if (t >= v.tempo_base) {
      if (have_tempo) {
        d.tempo_changes.push_back(clock);
        d.tempo_changes.push_back(t - v.tempo_base);
      } else {
        d.tempo = t - v.tempo_base;
        have_tempo = true;
      }
    } else if (t >= v.density_base) {
      d.density = t - v.density_base;
    } else if (t >= v.style_base) {
      d.style = t - v.style_base;
    } else if (t >= v.key_base) {
      d.key = t - v.key_base;
    } else if (t >= v.program_base) {
      d.programs.push_back(t - v.program_base);
    } else if (t == v.eos_id && was_bar) {
      d.end = bar_start;
    }
  }
  apply_hygiene(d, v);
  return d;
}

}  // namespace musgen::codec
