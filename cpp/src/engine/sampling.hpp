// One stream's sampling inside the generate loop (the rule is stated in engine.hpp and, in
// NumPy, in python/musgen/engine/sampling.py): the Sampler draws a token from a row of logits,
// the Stream records it and applies the stop rules. Shared by generate.cpp and team.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "musgen/engine.hpp"
#include "musgen/errors.hpp"
#include "musgen/philox.hpp"

namespace musgen::engine::detail {

// Sampling scratch for one stream (reused across steps).
struct Sampler {
  std::vector<double> w;
  std::vector<std::int32_t> kept, order;
  std::vector<unsigned char> keep;

  void reserve(int V) {
    w.reserve(V);
    kept.reserve(V);
    order.reserve(V);
    keep.reserve(V);
  }

  // Returns the sampled id, or -1 when the grammar allows no token.
  std::int32_t sample(const float* logits, int V, const std::int32_t* row, bool can_end,
                      std::int32_t eos, float temperature, std::int32_t top_k, float top_p,
                      double u) {
    auto allowed = [&](int v) { return row[v] >= 0 && (v != eos || can_end); };
    if (temperature == 0.0f) {
      std::int32_t best = -1;
      for (int v = 0; v < V; ++v)
        if (allowed(v) && (best < 0 || logits[v] > logits[best])) best = v;
      return best;
    }
    w.assign(V, 0.0);
    keep.assign(V, 0);
    kept.clear();
    double mx = -std::numeric_limits<double>::infinity();
    const double T = temperature;
    for (int v = 0; v < V; ++v)
      if (allowed(v)) {
        kept.push_back(v);
        mx = std::max(mx, static_cast<double>(logits[v]) / T);
      }
    if (kept.empty()) return -1;
    for (std::int32_t v : kept) {
      w[v] = std::exp(static_cast<double>(logits[v]) / T - mx);
      keep[v] = 1;
    }
    const bool use_k = top_k > 0 && static_cast<size_t>(top_k) < kept.size();
    const bool use_p = top_p > 0.0f && top_p < 1.0f;
    if (use_k || use_p) {
      order = kept;
      // A strict total order (w descending, id ascending), so a partial sort or a selection
      // keeps exactly the tokens a full stable sort would.
      auto before = [&](std::int32_t a, std::int32_t b) {
        return w[a] > w[b] || (w[a] == w[b] && a < b);
      };
      const size_t n_keep = use_k ? static_cast<size_t>(top_k) : order.size();
      if (!use_p)
        std::nth_element(order.begin(), order.begin() + (n_keep - 1), order.end(), before);
      else if (use_k)
        std::partial_sort(order.begin(), order.begin() + n_keep, order.end(), before);
      else
        std::sort(order.begin(), order.end(), before);
      for (size_t i = n_keep; i < order.size(); ++i) keep[order[i]] = 0;
      if (use_p) {
        double total = 0.0;
        for (int v = 0; v < V; ++v)
          if (keep[v]) total += w[v];
        const double goal = static_cast<double>(top_p) * total;
        double run = 0.0;
        size_t i = 0;
        for (; i < n_keep; ++i) {
          run += w[order[i]];
          if (run >= goal) break;
        }
        for (size_t j = i + 1; j < n_keep; ++j) keep[order[j]] = 0;
      }
    }
    double total = 0.0;
    std::int32_t last = -1;
    for (int v = 0; v < V; ++v)
      if (keep[v]) {
        total += w[v];
        last = v;
      }
    const double target = u * total;
    double run = 0.0;
    for (int v = 0; v < V; ++v)
      if (keep[v]) {
        run += w[v];
        if (run > target) return v;
      }
    return last;
  }
};

// One stream's place in a generate() call, and the rules that advance it (GenerateRequest).
struct Stream {
  std::int32_t state = 0;
  std::int64_t count = 0, len = 0;
  bool done = false;

  // Nothing to generate: an EOS-terminated primer, a zero budget, or no room.
  void start(const GenerateRequest& r, std::int64_t s, std::int32_t state0) {
    state = state0;
    const std::int32_t last = r.primer[s * r.primer_len + r.primer_len - 1];
    done = (r.eos_id >= 0 && last == r.eos_id) || r.max_tokens == 0 ||
           (r.length <= 0 && r.can_end[state] != 0);
  }

  // Samples stream s's token `step` from its logits, records it and applies the stop rules.
  std::int32_t advance(const GenerateRequest& r, int V, Sampler& sampler, std::int64_t s,
                       std::int64_t step, const float* logits) {
    const double u = philox_uniform(r.seeds[s], static_cast<std::uint32_t>(step),
                                    static_cast<std::uint32_t>(s));
    const std::int32_t st = state;
    const std::int32_t v =
        sampler.sample(logits, V, r.table + static_cast<std::int64_t>(st) * V,
                       r.can_end[st] != 0, r.eos_id, r.temperature[s], r.top_k[s], r.top_p[s], u);
    if (v < 0)
      throw CodecError("LstmEngine::generate: grammar state " + std::to_string(st) +
                       " allows no token (stream " + std::to_string(s) + ")");
    r.out_tokens[s * r.max_tokens + len] = v;
    ++len;
    state = r.table[static_cast<std::int64_t>(st) * V + v];
    if (r.length_kind == 0) count += 1;
    else if (r.length_kind == 1) count += r.is_note[v] ? 1 : 0;
    else count += r.clock_steps[v];
    done = v == r.eos_id || len >= r.max_tokens || (count >= r.length && r.can_end[state] != 0);
    return v;
  }

  void finish(const GenerateRequest& r, std::int64_t s) const {
    r.out_length[s] = len;
    for (std::int64_t i = len; i < r.max_tokens; ++i) r.out_tokens[s * r.max_tokens + i] = -1;
  }
};

}  // namespace musgen::engine::detail
