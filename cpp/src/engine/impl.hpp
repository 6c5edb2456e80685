// The engine's internal types, shared by its source files (never installed): the packed
// layers, LstmEngine::Impl (weights and the batched forward step), and the helpers that split
// work between threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kernels.hpp"
#include "musgen/engine.hpp"

namespace musgen::engine {
namespace detail {

using kernels::kPanel;
using kernels::kUnitsPerPanel;

// One LSTM layer, packed. Its input row is [x (in_pad floats), h (u_pad floats)] = K floats.
struct Layer {
  int in = 0, in_pad = 0, units = 0, u_pad = 0, K = 0, panels = 0;
  std::vector<float> W;           // panels x K x 32 (float32 models)
  std::vector<std::uint16_t> Wh;  // the same, float16 (precision "float16"; W is then empty)
  std::vector<float> bias;        // 32 * panels, packed order
};

// A dense layer, packed: K inputs (zero-padded rows beyond the real input), N outputs.
struct Dense {
  int K = 0, N = 0, panels = 0;
  std::vector<float> W, bias;
  std::vector<std::uint16_t> Wh;  // float16 weights (precision "float16")
};

enum class Act { relu, tanh_, sigmoid, linear };

// Threads asked for, or every core for 0.
int resolve_threads(int threads);

// Run fn(begin, end) over [0, n) split into contiguous chunks on up to `threads` threads.
// Streams are independent, so each thread runs its whole loop with no synchronization.
template <class Fn>
void parallel_chunks(std::int64_t n, int threads, Fn&& fn) {
  threads = resolve_threads(threads);
  const std::int64_t t = std::max<std::int64_t>(1, std::min<std::int64_t>(threads, n));
  if (t == 1) {
    fn(std::int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  std::exception_ptr error;
  std::mutex error_mutex;
  for (std::int64_t i = 0; i < t; ++i) {
    const std::int64_t b = n * i / t, e = n * (i + 1) / t;
    pool.emplace_back([&, b, e] {
      try {
        fn(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace detail

struct LstmEngine::Impl {
  using Layer = detail::Layer;
  using Dense = detail::Dense;
  using Act = detail::Act;
  static constexpr int kPanel = detail::kPanel;
  static constexpr int kUnitsPerPanel = detail::kUnitsPerPanel;

  // Construction (weights.cpp): check every tensor and pack it.
  void pack_layers(const std::vector<int>& units, const std::map<std::string, TensorView>& weights);
  void pack_dense_layers(const std::vector<int>& units,
                         const std::map<std::string, TensorView>& weights);

  std::string kind;
  bool lm = true;
  int vocab = 0, emb = 0, features = 0, out_dim = 0;
  std::vector<Layer> layers;
  std::vector<float> token_table;  // lm: [vocab, 32 * panels_0] = embedding @ W_0 + b_0, packed
  std::vector<Dense> dense;        // lm: the head; paper: the dense stack
  Act act = Act::relu;
  const kernels::Ops* ops = nullptr;
  bool half = false;  // weights read per step stored as float16
  int max_z = 0, max_out = 0;

  // Z = init + A @ (panels [p0, p0 + np) of a packed layer or dense), in its storage precision.
  template <class Packed>
  void matmul(const Packed& P, int M, int p0, int np, const float* A, long lda,
              const float* const* init, float* Z, long ldz) const {
    const size_t off = static_cast<size_t>(p0) * P.K * kPanel;
    if (half) ops->gemm_h(M, P.K, np, A, lda, P.Wh.data() + off, init, Z, ldz);
    else ops->gemm(M, P.K, np, A, lda, P.W.data() + off, init, Z, ldz);
  }

  // Per-thread state and scratch for `nb` streams.
  struct Work {
    int nb = 0;
    std::vector<std::vector<float>> xh, c;  // per layer: [nb, K], [nb, u_pad]
    std::vector<float> z, out, tmp;         // [nb, max_z], [nb, max_out] x2
    std::vector<const float*> init;
  };

  void make_work(Work& w, int nb) const {
    w.nb = nb;
    w.xh.resize(layers.size());
    w.c.resize(layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
      w.xh[l].assign(static_cast<size_t>(nb) * layers[l].K, 0.0f);
      w.c[l].assign(static_cast<size_t>(nb) * layers[l].u_pad, 0.0f);
    }
    w.z.assign(static_cast<size_t>(nb) * max_z, 0.0f);
    w.out.assign(static_cast<size_t>(nb) * max_out, 0.0f);
    w.tmp.assign(static_cast<size_t>(nb) * max_out, 0.0f);
    w.init.assign(nb, nullptr);
  }

  void reset(Work& w) const {
    for (auto& v : w.xh) std::fill(v.begin(), v.end(), 0.0f);
    for (auto& v : w.c) std::fill(v.begin(), v.end(), 0.0f);
  }

  // Stream row `from` takes row `to`'s place (the batch drops a finished stream).
  void move_row(Work& w, int from, int to) const {
    for (size_t l = 0; l < layers.size(); ++l) {
      const size_t K = layers[l].K, U = layers[l].u_pad;
      std::copy_n(w.xh[l].data() + from * K, K, w.xh[l].data() + to * K);
      std::copy_n(w.c[l].data() + from * U, U, w.c[l].data() + to * U);
    }
  }

  // Warms every stream's state on its primer (primer[m * plen + t], t < plen): afterwards w
  // holds the state after the primer and w.out the logits of the first generated token. Long
  // primers go layer by layer, each layer's input projection over many steps in one matrix
  // product (on up to `threads` threads); the numbers equal stepping token by token.
  void warm_up(Work& w, const std::int32_t* primer, std::int64_t plen, int threads = 1,
               size_t block_floats = 0) const;
  // Primers shorter than this are stepped token by token (the split weights would not pay).
  static constexpr std::int64_t kBatchedWarmUp = 8;
  void warm_up_layers(Work& w, const std::int32_t* primer, std::int64_t plen, int threads,
                      size_t block_floats) const;

  // The LSTM stack for one step. Layer 0's input is already in place (lm: init rows point at
  // token_table rows; paper: features written into xh[0][:, :features]).
  void lstm_stack(Work& w) const {
    const int nb = w.nb;
    for (size_t l = 0; l < layers.size(); ++l) {
      const Layer& L = layers[l];
      if (!(lm && l == 0))
        for (int m = 0; m < nb; ++m) w.init[m] = L.bias.data();
      matmul(L, nb, 0, L.panels, w.xh[l].data(), L.K, w.init.data(), w.z.data(), max_z);
      float* next = l + 1 < layers.size() ? w.xh[l + 1].data() : nullptr;
      const long ldn = l + 1 < layers.size() ? layers[l + 1].K : 0;
      ops->lstm_gates(nb, L.panels, w.z.data(), max_z, w.c[l].data(), L.u_pad,
                      w.xh[l].data() + L.in_pad, L.K, next, ldn);
    }
  }

  // Dense layers on the last h -> w.out [nb, max_out] (first out_dim columns are the result).
  void head(Work& w) const {
    const Layer& last = layers.back();
    const float* a = w.xh.back().data() + last.in_pad;
    long lda = last.K;
    for (size_t j = 0; j < dense.size(); ++j) {
      const Dense& D = dense[j];
      for (int m = 0; m < w.nb; ++m) w.init[m] = D.bias.data();
      float* dst = (dense.size() - j) % 2 == 1 ? w.out.data() : w.tmp.data();
      matmul(D, w.nb, 0, D.panels, a, lda, w.init.data(), dst, max_out);
      if (j + 1 < dense.size()) {
        const size_t n = static_cast<size_t>(w.nb) * max_out;
        for (size_t i = 0; i < n; ++i) dst[i] = activate(dst[i]);
      }
      a = dst;
      lda = max_out;
    }
  }

  float activate(float x) const {
    switch (act) {
      case Act::relu: return x > 0.0f ? x : 0.0f;
      case Act::tanh_: return std::tanh(x);
      case Act::sigmoid: return 1.0f / (1.0f + std::exp(-x));
      case Act::linear: return x;
    }
    return x;
  }

  void step_tokens(Work& w, const std::int32_t* tok, long stride) const {
    const int row = layers[0].panels * kPanel;
    for (int m = 0; m < w.nb; ++m)
      w.init[m] = token_table.data() + static_cast<size_t>(tok[m * stride]) * row;
    lstm_stack(w);
    head(w);
  }

  void step_features(Work& w, const float* x, long stride) const {
    for (int m = 0; m < w.nb; ++m)
      std::memcpy(w.xh[0].data() + static_cast<size_t>(m) * layers[0].K, x + m * stride,
                  sizeof(float) * features);
    lstm_stack(w);
    head(w);
  }

  // A few streams stepped by a team of threads that split every layer's panels between them
  // (token models). The layer rows [x, h] are double-buffered by step parity: at parity p a
  // layer reads xh[p] and writes its new h to xh[1 - p] (its own next input) and to the next
  // layer's x in xh[p], so no thread overwrites an h that another is still reading. Each panel
  // is computed by the same kernels in the same order as on one thread: the numbers do not
  // depend on the team size.
  struct TeamWork {
    int nb = 0;
    std::vector<std::vector<float>> xh[2], c;
    std::vector<float> z, out;
  };

  // Stream row `from` takes row `to`'s place in both parities.
  void move_row(TeamWork& w, int from, int to) const {
    for (size_t l = 0; l < layers.size(); ++l) {
      const size_t K = layers[l].K, U = layers[l].u_pad;
      for (auto& buf : w.xh) std::copy_n(buf[l].data() + from * K, K, buf[l].data() + to * K);
      std::copy_n(w.c[l].data() + from * U, U, w.c[l].data() + to * U);
    }
  }

  void make_team_work(TeamWork& w, int nb) const {
    w.nb = nb;
    for (auto& buf : w.xh) {
      buf.resize(layers.size());
      for (size_t l = 0; l < layers.size(); ++l)
        buf[l].assign(static_cast<size_t>(nb) * layers[l].K, 0.0f);
    }
    w.c.resize(layers.size());
    for (size_t l = 0; l < layers.size(); ++l)
      w.c[l].assign(static_cast<size_t>(nb) * layers[l].u_pad, 0.0f);
    w.z.assign(static_cast<size_t>(nb) * max_z, 0.0f);
    w.out.assign(static_cast<size_t>(nb) * max_out, 0.0f);
  }

  // The state and logits of a Work (one thread's warm-up) copied into a team's buffers, for
  // the step parity the team starts at (both parities, so either reads the same rows).
  void copy_state(const Work& from, TeamWork& to) const {
    for (size_t l = 0; l < layers.size(); ++l) {
      for (auto& buf : to.xh) buf[l] = from.xh[l];
      to.c[l] = from.c[l];
    }
    to.out = from.out;
  }

  // The most threads worth splitting a step between: every thread keeps >= 4 panels (32
  // units) of the smallest layer, or the barriers cost more than the work they share.
  int max_team() const {
    int panels = std::numeric_limits<int>::max();
    for (const Layer& L : layers) panels = std::min(panels, L.panels);
    return std::max(1, panels / 4);
  }

  // Thread `tid`'s part of one step at `parity` for tokens tok[m * stride]; `meet` is the
  // team's barrier. On return every thread's logits columns are in w.out, after a barrier.
  template <class Meet>
  void team_step(TeamWork& w, int parity, const std::int32_t* tok, long stride, int tid,
                 int team, std::vector<const float*>& init, Meet&& meet) const {
    const int nb = w.nb;
    auto share = [&](int panels) {
      return std::pair<int, int>{panels * tid / team, panels * (tid + 1) / team};
    };
    for (size_t l = 0; l < layers.size(); ++l) {
      const Layer& L = layers[l];
      const auto [p0, p1] = share(L.panels);
      if (p1 > p0) {
        const int col = p0 * kPanel;
        for (int m = 0; m < nb; ++m)
          init[m] = (l == 0 ? token_table.data() + static_cast<size_t>(tok[m * stride]) *
                                                       (L.panels * kPanel)
                            : L.bias.data()) + col;
        std::vector<float>& in = w.xh[parity][l];
        matmul(L, nb, p0, p1 - p0, in.data(), L.K, init.data(), w.z.data() + col, max_z);
        const bool more = l + 1 < layers.size();
        ops->lstm_gates(nb, p1 - p0, w.z.data() + col, max_z,
                        w.c[l].data() + p0 * kUnitsPerPanel, L.u_pad,
                        w.xh[1 - parity][l].data() + L.in_pad + p0 * kUnitsPerPanel, L.K,
                        more ? w.xh[parity][l + 1].data() + p0 * kUnitsPerPanel : nullptr,
                        more ? layers[l + 1].K : 0);
      }
      meet();
    }
    const Layer& last = layers.back();
    const Dense& D = dense.front();  // token models have one dense layer, the head
    const auto [p0, p1] = share(D.panels);
    if (p1 > p0) {
      for (int m = 0; m < nb; ++m) init[m] = D.bias.data() + p0 * kPanel;
      matmul(D, nb, p0, p1 - p0, w.xh[1 - parity].back().data() + last.in_pad, last.K,
             init.data(), w.out.data() + p0 * kPanel, max_out);
    }
    meet();
  }
};

}  // namespace musgen::engine
