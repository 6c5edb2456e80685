// LstmEngine::generate: the whole sampling loop, streams split between threads (team.cpp takes
// over when there are fewer streams than threads), and the request check every backend shares.
#include <algorithm>
#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "impl.hpp"
#include "musgen/errors.hpp"
#include "sampling.hpp"

namespace musgen::engine {

using detail::Sampler;
using detail::Stream;

namespace {

void check_arguments(const GenerateRequest& r, int V) {
  if (r.n < 0 || r.primer_len < 1 || r.primer == nullptr)
    throw std::invalid_argument("LstmEngine::generate: need n >= 0 and a primer of >= 1 token");
  if (r.table == nullptr || r.n_states < 1 || r.can_end == nullptr)
    throw std::invalid_argument("LstmEngine::generate: a grammar table is required");
  if (r.start_state < 0 || r.start_state >= r.n_states)
    throw std::invalid_argument("LstmEngine::generate: start_state out of range");
  for (std::int64_t i = 0; i < r.n_states * V; ++i)
    if (r.table[i] < -1 || r.table[i] >= r.n_states)
      throw std::invalid_argument("LstmEngine::generate: grammar table entry " +
                                  std::to_string(r.table[i]) + " is not -1 or a state index");
  if (r.eos_id >= V) throw std::invalid_argument("LstmEngine::generate: eos_id out of range");
  if (r.max_tokens < 0) throw std::invalid_argument("LstmEngine::generate: max_tokens < 0");
  if ((r.length_kind == 1 && r.is_note == nullptr) ||
      (r.length_kind == 2 && r.clock_steps == nullptr) || r.length_kind < 0 || r.length_kind > 2)
    throw std::invalid_argument("LstmEngine::generate: length unit needs its per-token table");
  if (r.n > 0 && r.out_tokens == nullptr)
    throw std::invalid_argument("LstmEngine::generate: no output for the tokens");
}

void check_rules(const GenerateRequest& r, int V) {
  const rules::Tables& t = r.tables;
  const rules::Settings& c = r.rules;
  if (!c.on) return;
  if (t.V != V || !t.clock_steps || !t.is_note || !t.pitch || !t.duration || !t.is_bar ||
      !t.bar_steps || !t.part || !t.program)
    throw std::invalid_argument("LstmEngine::generate: the rules need every per-token table, "
                                "each of " + std::to_string(V) + " entries");
  if (t.steps_per_beat < 1 || t.default_bar_steps < 0)
    throw std::invalid_argument("LstmEngine::generate: steps_per_beat must be >= 1 and "
                                "default_bar_steps >= 0");
  if (c.ending < rules::kEndNone || c.ending > rules::kEndModel ||
      (c.ending == rules::kEndBar && t.default_bar_steps == 0))
    throw std::invalid_argument("LstmEngine::generate: ending " + std::to_string(c.ending) +
                                " is not one this codec has");
  if (c.grace_steps < 0 || c.max_voices < 0 || c.max_voices > rules::kMaxVoices ||
      c.min_voices < 0 || c.min_voices > rules::kMaxVoices ||
      (c.max_voices > 0 && c.min_voices > c.max_voices) ||
      c.density_milli < 0 || !(c.density_strength >= 0.0) || c.max_rest_steps < -1)
    throw std::invalid_argument("LstmEngine::generate: grace_steps, max_voices and min_voices "
                                "(0.." + std::to_string(rules::kMaxVoices) + ", min_voices <= "
                                "max_voices), density and its strength must be >= 0, "
                                "max_rest_steps >= -1");
  for (int v = 0; v < V; ++v)
    if (t.clock_steps[v] < 0 || t.duration[v] < 0 || t.bar_steps[v] < 0)
      throw std::invalid_argument("LstmEngine::generate: token " + std::to_string(v) +
                                  " has a negative clock_steps, duration or bar_steps");
}

// Walks stream s's primer through the grammar (and the rules): its state after the primer.
std::int32_t walk_primer(const GenerateRequest& r, int V, std::int64_t s, const rules::Settings& c,
                         rules::State* rs) {
  std::int32_t st = r.start_state;
  if (rs != nullptr) rules::init(*rs, r.tables);
  for (std::int64_t t = 0; t < r.primer_len; ++t) {
    const std::int32_t tok = r.primer[s * r.primer_len + t];
    if (tok < 0 || tok >= V)
      throw std::invalid_argument("LstmEngine::generate: primer token " + std::to_string(tok) +
                                  " outside [0, " + std::to_string(V) + ")");
    const std::int32_t nx = r.table[static_cast<std::int64_t>(st) * V + tok];
    if (nx < 0 || (tok == r.eos_id && t + 1 < r.primer_len))
      throw CodecError("LstmEngine::generate: primer token " + std::to_string(tok) +
                       " at position " + std::to_string(t) + " of stream " + std::to_string(s) +
                       " is not allowed by the grammar in state " + std::to_string(st));
    if (rs != nullptr) rules::record(*rs, r.tables, c, tok, false);
    st = nx;
  }
  if (rs != nullptr) rules::start(*rs, r.tables, c);
  return st;
}

}  // namespace

Prepared prepare_request(const GenerateRequest& r, int V) {
  check_arguments(r, V);
  check_rules(r, V);
  Prepared p;
  p.rules = r.rules;
  const bool on = r.rules.on != 0;
  if (on) {
    p.rules.unit = r.length_kind;
    p.rules.length = r.length;
    p.needs_note.assign(r.n_states, 0);
    p.note_kinds.assign(r.n_states, 0);
    p.rules.check_landing = rules::derive_state_flags(
        r.table, r.n_states, r.tables, r.rules.allowed, r.eos_id, r.rules.max_voices,
        p.needs_note.data(), p.note_kinds.data());
    p.rules.needs_note = p.needs_note.data();
    p.rules.note_kinds = p.note_kinds.data();
    p.rule_state.resize(r.n);
  }
  // Walk the primers first, so a bad primer fails before any work.
  p.state.resize(r.n);
  p.reason.assign(r.n, rules::kRunning);
  for (std::int64_t s = 0; s < r.n; ++s) {
    p.state[s] = walk_primer(r, V, s, p.rules, on ? &p.rule_state[s] : nullptr);
    const std::int32_t last = r.primer[s * r.primer_len + r.primer_len - 1];
    if (r.eos_id >= 0 && last == r.eos_id) p.reason[s] = rules::kEosAfter;
    else if (r.max_tokens == 0) p.reason[s] = rules::kCut;
    else if (r.length <= 0 && (on ? r.rules.ending != rules::kEndNone : false))
      p.reason[s] = rules::kClosed;
    else if (r.length <= 0 && r.can_end[p.state[s]] != 0) p.reason[s] = rules::kBudget;
  }
  return p;
}

void LstmEngine::generate(const GenerateRequest& r) const {
  const Impl& I = *impl_;
  const int V = I.vocab;
  if (!I.lm) throw std::invalid_argument("LstmEngine::generate: the model is not of kind lstm_lm");
  const Prepared start = prepare_request(r, V);
  const int threads = detail::resolve_threads(r.threads);
  // A team larger than the machine would only wait at its barriers for descheduled members.
  const int team = std::min({threads, I.max_team(), detail::resolve_threads(0)});
  if (r.n > 0 && r.n < threads && team > 1) {
    generate_team(r, start, team);
    return;
  }
  detail::FirstFailure failure;
  detail::parallel_chunks(r.n, threads, [&](std::int64_t b0, std::int64_t b1) {
    const int nb = static_cast<int>(b1 - b0);
    Impl::Work w;
    I.make_work(w, nb);
    I.warm_up(w, r.primer + b0 * r.primer_len, r.primer_len);  // one thread per chunk already
    std::vector<Stream> streams(nb);
    for (int m = 0; m < nb; ++m) streams[m].start(start, b0 + m);
    std::vector<std::int32_t> next(nb, 0);
    Sampler sampler;
    sampler.reserve(V);
    int active = nb;
    while (active > 0) {
      std::int64_t sampled = 0;
      bool failed = false;
      for (int m = 0; m < active; ++m) {
        if (streams[m].done) continue;
        try {
          next[m] = streams[m].advance(r, start.rules, V, sampler,
                                       w.out.data() + static_cast<size_t>(m) * I.max_out);
          ++sampled;
        } catch (...) {
          failure.record(streams[m].len(), streams[m].s);
          failed = true;
        }
      }
      if (r.progress != nullptr) r.progress->fetch_add(sampled, std::memory_order_relaxed);
      if (failed) return;
      active = detail::drop_finished(streams, next, active, r,
                                     [&](int from, int to) { I.move_row(w, from, to); });
      if (active == 0) break;
      w.nb = active;
      if (r.rows_stepped != nullptr) r.rows_stepped->fetch_add(active, std::memory_order_relaxed);
      I.step_tokens(w, next.data(), 1);
    }
  });
  failure.rethrow();
}

}  // namespace musgen::engine
