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
      c.density_milli < 0 || !(c.density_strength >= 0.0))
    throw std::invalid_argument("LstmEngine::generate: grace_steps, max_voices (0.." +
                                std::to_string(rules::kMaxVoices) + "), density and its "
                                "strength must be >= 0");
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

namespace {

// Floats of one time block's input projections: bounds the warm-up's memory for any primer.
constexpr size_t kWarmBlockFloats = size_t{1} << 22;

// Rows [r0, r0 + rows) of one packed layer's panels as a packed matrix of their own (K = rows),
// in the layer's storage precision: the input part (x rows) or the recurrent part (h rows).
detail::Dense split_rows(const detail::Layer& L, int r0, int rows, bool half) {
  detail::Dense d;
  d.K = rows;
  d.N = L.panels * kernels::kPanel;
  d.panels = L.panels;
  const size_t block = static_cast<size_t>(rows) * kernels::kPanel;
  for (int p = 0; p < L.panels; ++p) {
    const size_t from = (static_cast<size_t>(p) * L.K + r0) * kernels::kPanel;
    if (half) d.Wh.insert(d.Wh.end(), L.Wh.begin() + from, L.Wh.begin() + from + block);
    else d.W.insert(d.W.end(), L.W.begin() + from, L.W.begin() + from + block);
  }
  return d;
}

}  // namespace

void LstmEngine::Impl::warm_up(Work& w, const std::int32_t* primer, std::int64_t plen,
                               int threads, size_t block_floats) const {
  const int nb = w.nb;
  // Streams that share one primer (the usual case) share its warm-up: one row, copied.
  bool shared = nb > 1;
  for (int m = 1; shared && m < nb; ++m)
    shared = std::equal(primer, primer + plen, primer + m * plen);
  if (shared) {
    Work one;
    make_work(one, 1);
    warm_up(one, primer, plen, threads, block_floats);
    for (int m = 0; m < nb; ++m) {
      for (size_t l = 0; l < layers.size(); ++l) {
        std::copy(one.xh[l].begin(), one.xh[l].end(), w.xh[l].begin() + m * layers[l].K);
        std::copy(one.c[l].begin(), one.c[l].end(), w.c[l].begin() + m * layers[l].u_pad);
      }
      std::copy_n(one.out.data(), max_out, w.out.data() + static_cast<size_t>(m) * max_out);
    }
    return;
  }
  if (plen < kBatchedWarmUp || !lm) {
    for (std::int64_t t = 0; t < plen; ++t) step_tokens(w, primer + t, static_cast<long>(plen));
    return;
  }
  const size_t L = layers.size();
  // Per layer: its input rows and recurrent rows as separate matrices. A panel sums its rows
  // in k order from its initial value, so init + x W_x, then + h W_h, is exactly the step's sum.
  std::vector<detail::Dense> wx(L), wh(L);
  for (size_t l = 0; l < L; ++l) {
    if (layers[l].in_pad > 0) wx[l] = split_rows(layers[l], 0, layers[l].in_pad, half);
    wh[l] = split_rows(layers[l], layers[l].in_pad, layers[l].u_pad, half);
  }
  const size_t budget = block_floats > 0 ? block_floats : kWarmBlockFloats;
  const std::int64_t block = std::max<std::int64_t>(
      1, std::min<std::int64_t>(plen, budget / (static_cast<size_t>(nb) * max_z)));
  std::vector<float> zx(static_cast<size_t>(block) * nb * max_z);
  std::vector<float> below, above;  // one layer's h over the block, [block * nb, u_pad]
  std::vector<const float*> init(static_cast<size_t>(block) * nb);
  for (std::int64_t t0 = 0; t0 < plen; t0 += block) {
    const std::int64_t tb = std::min(block, plen - t0);
    const int rows = static_cast<int>(tb * nb);  // row t * nb + m: step t0 + t of stream m
    for (size_t l = 0; l < L; ++l) {
      const Layer& Ly = layers[l];
      const int cols = Ly.panels * kPanel;
      // The input projection of every step of the block: init + x W_x (layer 0 of a token
      // model: its table row).
      for (std::int64_t t = 0; t < tb; ++t)
        for (int m = 0; m < nb; ++m)
          init[t * nb + m] = lm && l == 0
                                 ? token_table.data() +
                                       static_cast<size_t>(primer[m * plen + t0 + t]) * cols
                                 : Ly.bias.data();
      if (Ly.in_pad > 0) {
        detail::parallel_chunks(rows, threads, [&](std::int64_t r0, std::int64_t r1) {
          matmul(wx[l], static_cast<int>(r1 - r0), 0, Ly.panels, below.data() + r0 * Ly.in_pad,
                 Ly.in_pad, init.data() + r0, zx.data() + r0 * max_z, max_z);
        });
      } else {
        for (int r = 0; r < rows; ++r) std::copy_n(init[r], cols, zx.data() + r * max_z);
      }
      // The recurrence, step by step: + h W_h, the gates, h into the state and the block.
      above.assign(static_cast<size_t>(rows) * Ly.u_pad, 0.0f);
      float* h = w.xh[l].data() + Ly.in_pad;
      for (std::int64_t t = 0; t < tb; ++t) {
        float* zt = zx.data() + t * nb * max_z;
        for (int m = 0; m < nb; ++m) init[m] = zt + m * max_z;
        matmul(wh[l], nb, 0, Ly.panels, h, Ly.K, init.data(), zt, max_z);
        ops->lstm_gates(nb, Ly.panels, zt, max_z, w.c[l].data(), Ly.u_pad, h, Ly.K,
                        above.data() + t * nb * Ly.u_pad, Ly.u_pad);
      }
      std::swap(below, above);
      if (l + 1 < L) {  // the next layer's input part holds this layer's last h, as after a step
        const Layer& Nx = layers[l + 1];
        for (int m = 0; m < nb; ++m)
          std::copy_n(h + static_cast<size_t>(m) * Ly.K, Ly.u_pad,
                      w.xh[l + 1].data() + static_cast<size_t>(m) * Nx.K);
      }
    }
  }
  head(w);
}

void LstmEngine::warm_up_logits(const std::int32_t* tokens, std::int64_t batch,
                                 std::int64_t steps, float* out, int threads,
                                 std::int64_t block_floats) const {
  const Impl& I = *impl_;
  if (!I.lm) throw std::invalid_argument("LstmEngine::warm_up_logits: not a token model");
  if (steps < 1) throw std::invalid_argument("LstmEngine::warm_up_logits: need >= 1 token");
  for (std::int64_t i = 0; i < batch * steps; ++i)
    if (tokens[i] < 0 || tokens[i] >= I.vocab)
      throw std::invalid_argument("LstmEngine::warm_up_logits: token id " +
                                  std::to_string(tokens[i]) + " outside [0, " +
                                  std::to_string(I.vocab) + ")");
  if (batch <= 0) return;
  Impl::Work w;
  I.make_work(w, static_cast<int>(batch));
  I.warm_up(w, tokens, steps, detail::resolve_threads(threads),
            static_cast<size_t>(std::max<std::int64_t>(block_floats, 0)));
  for (std::int64_t b = 0; b < batch; ++b)
    std::copy_n(w.out.data() + b * I.max_out, I.vocab, out + b * I.vocab);
}

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
    p.rules.check_landing = rules::derive_state_flags(r.table, r.n_states, r.tables,
                                                      r.rules.allowed, r.rules.max_voices,
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
      for (int m = 0; m < active; ++m) {
        if (streams[m].done) continue;
        next[m] = streams[m].advance(r, start.rules, V, sampler,
                                     w.out.data() + static_cast<size_t>(m) * I.max_out);
        ++sampled;
      }
      if (r.progress != nullptr) r.progress->fetch_add(sampled, std::memory_order_relaxed);
      // Finished streams leave the batch: the last row takes the place of each one, so the
      // next step computes only streams that go on (a row's numbers do not depend on its place).
      for (int m = 0; m < active;) {
        if (!streams[m].done) {
          ++m;
          continue;
        }
        streams[m].finish(r);
        const int last = --active;
        if (m != last) {
          I.move_row(w, last, m);
          next[m] = next[last];
          std::swap(streams[m], streams[last]);
        }
      }
      if (active == 0) break;
      w.nb = active;
      if (r.rows_stepped != nullptr) r.rows_stepped->fetch_add(active, std::memory_order_relaxed);
      I.step_tokens(w, next.data(), 1);
    }
  });
}

}  // namespace musgen::engine
