// One stream's sampling inside the generate loop (the rule is stated in engine.hpp and, in
// NumPy, in python/musgen/engine/sampling.py): the Sampler draws a token from a row of logits,
// the Stream records it and applies the stop rules. Shared by generate.cpp and team.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "musgen/engine.hpp"
#include "musgen/errors.hpp"
#include "musgen/philox.hpp"
#include "musgen/rules.hpp"

namespace musgen::engine::detail {

// Sampling scratch for one stream (reused across steps).
struct Sampler {
  std::vector<double> w;
  std::vector<std::int32_t> kept, order;
  std::vector<unsigned char> keep;
  std::vector<unsigned char> ok;  // the rules' allowed tokens of one step
  std::vector<float> biased;      // logits plus the rules' biases

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
    return sample_with(logits, V, [&](int v) { return row[v] >= 0 && (v != eos || can_end); },
                       temperature, top_k, top_p, u);
  }

  // The same rule for any allowed(v) predicate (the grammar, or the grammar and the rules).
  template <class Allowed>
  std::int32_t sample_with(const float* logits, int V, Allowed&& allowed, float temperature,
                           std::int32_t top_k, float top_p, double u) {
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
  std::int64_t s = 0;        // the stream's index in the request (Philox counter, outputs)
  std::int32_t state = 0;    // grammar state
  std::int64_t count = 0;    // the budget's count (without rules)
  std::int8_t reason = rules::kRunning;
  bool done = false;
  rules::State rs;           // rule state (with rules)
  std::vector<std::int32_t> tokens;

  std::int64_t len() const { return static_cast<std::int64_t>(tokens.size()); }

  void start(const Prepared& p, std::int64_t index) {
    s = index;
    state = p.state[index];
    if (!p.rule_state.empty()) rs = p.rule_state[index];
    reason = p.reason[index];
    done = reason != rules::kRunning;
  }

  // Samples this stream's next token from its logits, records it and applies the stop rules.
  std::int32_t advance(const GenerateRequest& r, const rules::Settings& rc, int V,
                       Sampler& sampler, const float* logits) {
    const double u = philox_uniform(r.seeds[s], static_cast<std::uint32_t>(len()),
                                    static_cast<std::uint32_t>(s));
    const std::int32_t st = state;
    const std::int32_t* row = r.table + static_cast<std::int64_t>(st) * V;
    const bool can_end = r.can_end[st] != 0;
    std::int32_t v;
    if (!rc.on) {
      v = sampler.sample(logits, V, row, can_end, r.eos_id, r.temperature[s], r.top_k[s],
                         r.top_p[s], u);
    } else {
      const float* lg = apply_rules(r, rc, V, sampler, row, can_end, logits);
      const unsigned char* ok = sampler.ok.data();
      v = sampler.sample_with(lg, V, [ok](int t) { return ok[t] != 0; }, r.temperature[s],
                              r.top_k[s], r.top_p[s], u);
    }
    if (v < 0)
      throw CodecError("LstmEngine::generate: grammar state " + std::to_string(st) +
                       " allows no token (stream " + std::to_string(s) + ", step " +
                       std::to_string(len()) + ")");
    tokens.push_back(v);
    state = row[v];
    if (rc.on) {
      rules::record(rs, r.tables, rc, v, true);
      reason = static_cast<std::int8_t>(rules::stop_reason(rs, rc, v, r.eos_id, len(),
                                                           r.max_tokens, r.can_end[state] != 0));
    } else {
      if (r.length_kind == 0) count += 1;
      else if (r.length_kind == 1) count += r.is_note[v] ? 1 : 0;
      else count += r.clock_steps[v];
      if (v == r.eos_id) reason = count >= r.length ? rules::kEosAfter : rules::kEosEarly;
      else if (count >= r.length && r.can_end[state] != 0) reason = rules::kBudget;
      else if (len() >= r.max_tokens) reason = rules::kCut;
    }
    done = reason != rules::kRunning;
    return v;
  }

  // The rules' mask of this step into sampler.ok, and the logits to sample from (biased into
  // sampler.biased when there is any bias).
  const float* apply_rules(const GenerateRequest& r, const rules::Settings& rc, int V,
                           Sampler& sampler, const std::int32_t* row, bool can_end,
                           const float* logits) const {
    rules::View w = rules::view(rs, r.tables, rc);
    rules::settle_view(w, rs, r.tables, rc, row, can_end, r.eos_id);
    sampler.ok.resize(V);
    for (int v = 0; v < V; ++v)
      sampler.ok[v] = row[v] >= 0 && rules::allows(w, rs, r.tables, rc, row[v], can_end,
                                                   r.eos_id, v);
    if (rc.bias == nullptr && rc.density_milli == 0) return logits;
    sampler.biased.resize(V);
    for (int v = 0; v < V; ++v)  // the sampler reads allowed tokens only
      if (sampler.ok[v])
        sampler.biased[v] = logits[v] + rules::token_bias(w, rs, r.tables, rc, v);
    return sampler.biased.data();
  }

  // Hands the tokens and the reason to the request's outputs.
  void finish(const GenerateRequest& r) {
    if (r.out_reason != nullptr) r.out_reason[s] = reason;
    r.out_tokens[s] = std::move(tokens);
    tokens = {};
  }
};

// The error a generate call reports when streams fail: the one of the earliest step and, at
// that step, of the lowest stream, as the NumPy engine and one thread find it. Chunks and team
// members record what they catch and finish the step they are in, so the report does not
// depend on the number of threads or on which of them got there first.
class FirstFailure {
 public:
  // Call inside a catch block.
  void record(std::int64_t step, std::int64_t stream) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_ || std::tie(step, stream) < std::tie(step_, stream_)) {
      error_ = std::current_exception();
      step_ = step;
      stream_ = stream;
    }
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::mutex mutex_;
  std::exception_ptr error_;
  std::int64_t step_ = 0, stream_ = 0;
};

// Finished streams leave the batch: the last active row takes the place of each one (moved by
// move_row(from, to)), so the next step computes only streams that go on (a row's numbers do
// not depend on its place). Their tokens and reasons go to the request's outputs. Returns the
// number of streams still active.
template <class MoveRow>
int drop_finished(std::vector<Stream>& streams, std::vector<std::int32_t>& next, int active,
                  const GenerateRequest& r, MoveRow&& move_row) {
  for (int m = 0; m < active;) {
    if (!streams[m].done) {
      ++m;
      continue;
    }
    streams[m].finish(r);
    const int last = --active;
    if (m != last) {
      move_row(last, m);
      next[m] = next[last];
      std::swap(streams[m], streams[last]);
    }
  }
  return active;
}

}  // namespace musgen::engine::detail
