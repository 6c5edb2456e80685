// LstmEngine::generate: the whole sampling loop, streams split between threads (team.cpp takes
// over when there are fewer streams than threads), and the request check every backend shares.
#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "impl.hpp"
#include "musgen/errors.hpp"
#include "sampling.hpp"

namespace musgen::engine {

using detail::Sampler;
using detail::Stream;

std::vector<std::int32_t> check_request(const GenerateRequest& r, int V) {
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
  // Walk the primers through the grammar first, so a bad primer fails before any work.
  std::vector<std::int32_t> state0(r.n);
  for (std::int64_t s = 0; s < r.n; ++s) {
    std::int32_t st = r.start_state;
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
      st = nx;
    }
    state0[s] = st;
  }
  return state0;
}

void LstmEngine::generate(const GenerateRequest& r) const {
  const Impl& I = *impl_;
  const int V = I.vocab;
  if (!I.lm) throw std::invalid_argument("LstmEngine::generate: the model is not of kind lstm_lm");
  const std::vector<std::int32_t> state0 = check_request(r, V);
  const int threads = detail::resolve_threads(r.threads);
  // A team larger than the machine would only wait at its barriers for descheduled members.
  const int team = std::min({threads, I.max_team(), detail::resolve_threads(0)});
  if (r.n > 0 && r.n < threads && team > 1) {
    generate_team(r, state0, team);
    return;
  }
  detail::parallel_chunks(r.n, threads, [&](std::int64_t b0, std::int64_t b1) {
    const int nb = static_cast<int>(b1 - b0);
    Impl::Work w;
    I.make_work(w, nb);
    for (std::int64_t t = 0; t < r.primer_len; ++t)
      I.step_tokens(w, r.primer + b0 * r.primer_len + t, static_cast<long>(r.primer_len));
    std::vector<Stream> streams(nb);
    std::vector<std::int32_t> next(nb, 0);
    int active = 0;
    for (int m = 0; m < nb; ++m) {
      streams[m].start(r, b0 + m, state0[b0 + m]);
      active += streams[m].done ? 0 : 1;
    }
    Sampler sampler;
    for (std::int64_t step = 0; active > 0; ++step) {
      std::int64_t sampled = 0;
      for (int m = 0; m < nb; ++m) {
        if (streams[m].done) continue;
        next[m] = streams[m].advance(r, V, sampler, b0 + m, step,
                                     w.out.data() + static_cast<size_t>(m) * I.max_out);
        ++sampled;
        active -= streams[m].done ? 1 : 0;
      }
      if (r.progress != nullptr) r.progress->fetch_add(sampled, std::memory_order_relaxed);
      if (active == 0) break;
      // Finished streams keep stepping on their last token; their rows are ignored.
      I.step_tokens(w, next.data(), 1);
    }
    for (int m = 0; m < nb; ++m) streams[m].finish(r, b0 + m);
  });
}

}  // namespace musgen::engine
