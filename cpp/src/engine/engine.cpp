// musgen::engine::LstmEngine: weight packing, the batched forward step, threads over streams,
// and the sampling loop (grammar mask, temperature, top-k, top-p, Philox inverse-CDF sampling).
#include "musgen/engine.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "kernels.hpp"
#include "musgen/errors.hpp"
#include "musgen/philox.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace musgen::engine {
namespace {

using kernels::kPanel;
using kernels::kUnitsPerPanel;

int round_up(int x, int m) { return (x + m - 1) / m * m; }

std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

const TensorView& need(const std::map<std::string, TensorView>& w, const std::string& name,
                       std::vector<std::int64_t> shape) {
  auto it = w.find(name);
  if (it == w.end())
    throw ModelFormatError("LstmEngine: tensor '" + name + "' is missing (expected shape " +
                           shape_str(shape) + ")");
  if (it->second.shape != shape)
    throw ModelFormatError("LstmEngine: tensor '" + name + "' has shape " +
                           shape_str(it->second.shape) + ", expected " + shape_str(shape));
  if (it->second.data == nullptr && !shape.empty())
    throw ModelFormatError("LstmEngine: tensor '" + name + "' has no data");
  return it->second;
}

// One LSTM layer, packed. Its input row is [x (in_pad floats), h (u_pad floats)] = K floats.
struct Layer {
  int in = 0, in_pad = 0, units = 0, u_pad = 0, K = 0, panels = 0;
  std::vector<float> W;           // panels x K x 32 (float32 models)
  std::vector<std::uint16_t> Wh;  // the same, float16 (precision "float16"; W is then empty)
  std::vector<float> bias;        // 32 * panels, packed order
};

// Packed column index -> Keras column (gate * units + unit), or -1 for padding.
int keras_column(int packed, int units) {
  const int p = packed / kPanel, j = packed % kPanel;
  const int gate = j / kUnitsPerPanel, unit = p * kUnitsPerPanel + j % kUnitsPerPanel;
  return unit < units ? gate * units + unit : -1;
}

// A dense layer, packed: K inputs (zero-padded rows beyond the real input), N outputs.
struct Dense {
  int K = 0, N = 0, panels = 0;
  std::vector<float> W, bias;
  std::vector<std::uint16_t> Wh;  // float16 weights (precision "float16")
};

// float32 -> IEEE binary16 bits, rounded to nearest even (as NumPy's astype(float16)). The
// caller has checked the range (check_half_range).
std::uint16_t to_half(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t ax = x & 0x7fffffffu;
  if (ax < 0x38800000u) {  // below 2^-14: a subnormal half (or zero), in units of 2^-24
    float a;
    std::memcpy(&a, &ax, sizeof a);
    const auto units = static_cast<std::uint32_t>(std::nearbyint(a * 16777216.0f));  // 2^24
    return static_cast<std::uint16_t>(sign | units);
  }
  const std::uint32_t m = ax - 0x38000000u;  // the exponent rebiased from 127 to 15
  return static_cast<std::uint16_t>(sign | ((m + 0x0fffu + ((m >> 13) & 1u)) >> 13));
}

// Float16 storage holds finite values below 65520 in magnitude (larger ones round to inf).
void check_half_range(const TensorView& t, const std::string& name) {
  size_t n = 1;
  for (auto d : t.shape) n *= static_cast<size_t>(d);
  for (size_t i = 0; i < n; ++i)
    if (!(std::fabs(t.data[i]) < 65520.0f))
      throw ModelFormatError("LstmEngine: tensor '" + name + "' holds " +
                             std::to_string(t.data[i]) + " at index " + std::to_string(i) +
                             ", outside float16's finite range; use precision float32");
}

std::vector<std::uint16_t> to_half(const std::vector<float>& w) {
  std::vector<std::uint16_t> out(w.size());
  for (size_t i = 0; i < w.size(); ++i) out[i] = to_half(w[i]);
  return out;
}

float round_to_half(float f) { return kernels::half_to_float(to_half(f)); }

Dense pack_dense(const TensorView& kernel, const TensorView& bias, int K_pad) {
  Dense d;
  const int in = static_cast<int>(kernel.shape[0]);
  d.K = K_pad;
  d.N = static_cast<int>(kernel.shape[1]);
  d.panels = (d.N + kPanel - 1) / kPanel;
  d.W.assign(static_cast<size_t>(d.panels) * d.K * kPanel, 0.0f);
  d.bias.assign(static_cast<size_t>(d.panels) * kPanel, 0.0f);
  for (int p = 0; p < d.panels; ++p)
    for (int k = 0; k < in; ++k)
      for (int j = 0; j < kPanel; ++j) {
        const int n = p * kPanel + j;
        if (n < d.N)
          d.W[(static_cast<size_t>(p) * d.K + k) * kPanel + j] = kernel.data[k * d.N + n];
      }
  for (int n = 0; n < d.N; ++n) d.bias[n] = bias.data[n];
  return d;
}

enum class Act { relu, tanh_, sigmoid, linear };

Act parse_activation(const std::string& s) {
  if (s == "relu") return Act::relu;
  if (s == "tanh") return Act::tanh_;
  if (s == "sigmoid") return Act::sigmoid;
  if (s == "linear") return Act::linear;
  throw ModelFormatError("LstmEngine: dense_activation '" + s +
                         "' is not one of relu, tanh, sigmoid, linear");
}

}  // namespace

struct LstmEngine::Impl {
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

LstmEngine::LstmEngine(const std::string& kind, const std::vector<int>& units,
                       const std::map<std::string, TensorView>& weights,
                       const std::string& dense_activation, const std::string& kernels,
                       const std::string& precision)
    : impl_(new Impl) {
  try {
    Impl& I = *impl_;
    I.kind = kind;
    if (precision != "float32" && precision != "float16")
      throw std::invalid_argument("LstmEngine: precision '" + precision +
                                  "', expected float32 or float16");
    I.half = precision == "float16";
    if (kind != "lstm_lm" && kind != "paper")
      throw ModelFormatError("LstmEngine: model kind '" + kind + "', expected lstm_lm or paper");
    if (units.empty()) throw ModelFormatError("LstmEngine: lstm_units is empty");
    for (int u : units)
      if (u <= 0) throw ModelFormatError("LstmEngine: lstm_units must be positive");
    I.lm = kind == "lstm_lm";
    I.act = parse_activation(dense_activation);
    if (kernels == "auto") {
      I.ops = &kernels::best_ops();
    } else {
      I.ops = kernels::ops_by_name(kernels.c_str());
      if (I.ops == nullptr)
        throw BackendUnavailable("LstmEngine: kernels '" + kernels +
                                 "' are not available on this CPU or build");
    }
    int in = 0, in_pad = 0;
    if (I.lm) {
      auto e = weights.find("embedding/embeddings");
      if (e == weights.end() || e->second.shape.size() != 2)
        throw ModelFormatError("LstmEngine: tensor 'embedding/embeddings' is missing or not 2-D");
      I.vocab = static_cast<int>(e->second.shape[0]);
      I.emb = static_cast<int>(e->second.shape[1]);
      in = I.emb;
      in_pad = 0;  // layer 0's input projection is folded into token_table
    } else {
      auto k = weights.find("lstm_0/kernel");
      if (k == weights.end() || k->second.shape.size() != 2)
        throw ModelFormatError("LstmEngine: tensor 'lstm_0/kernel' is missing or not 2-D");
      I.features = static_cast<int>(k->second.shape[0]);
      in = in_pad = I.features;
    }
    for (size_t l = 0; l < units.size(); ++l) {
      const std::string pre = "lstm_" + std::to_string(l) + "/";
      const int u = units[l];
      const TensorView& W = need(weights, pre + "kernel", {in, 4L * u});
      const TensorView& U = need(weights, pre + "recurrent_kernel", {u, 4L * u});
      const TensorView& b = need(weights, pre + "bias", {4L * u});
      if (I.half) {
        check_half_range(W, pre + "kernel");
        check_half_range(U, pre + "recurrent_kernel");
      }
      // Float16 models compute with the rounded kernels everywhere, the token table included.
      std::vector<float> rounded;
      if (I.half && I.lm && l == 0) {
        rounded.assign(W.data, W.data + static_cast<size_t>(in) * 4 * u);
        for (float& x : rounded) x = round_to_half(x);
      }
      const float* W0 = rounded.empty() ? W.data : rounded.data();
      Layer L;
      L.in = in;
      L.in_pad = in_pad;
      L.units = u;
      L.u_pad = round_up(u, kUnitsPerPanel);
      L.K = in_pad + L.u_pad;
      L.panels = L.u_pad / kUnitsPerPanel;
      const int cols = L.panels * kPanel;
      L.W.assign(static_cast<size_t>(L.panels) * L.K * kPanel, 0.0f);
      L.bias.assign(cols, 0.0f);
      for (int pc = 0; pc < cols; ++pc) {
        const int kc = keras_column(pc, u);
        if (kc < 0) continue;
        const int p = pc / kPanel, j = pc % kPanel;
        float* dst = L.W.data() + static_cast<size_t>(p) * L.K * kPanel + j;
        if (in_pad > 0)  // rows of W (the unpadded input part)
          for (int r = 0; r < in; ++r) dst[r * kPanel] = W.data[static_cast<size_t>(r) * 4 * u + kc];
        for (int r = 0; r < u; ++r)
          dst[(in_pad + r) * kPanel] = U.data[static_cast<size_t>(r) * 4 * u + kc];
        L.bias[pc] = b.data[kc];
      }
      if (I.lm && l == 0) {
        const TensorView& E = need(weights, "embedding/embeddings", {I.vocab, I.emb});
        I.token_table.assign(static_cast<size_t>(I.vocab) * cols, 0.0f);
        for (int v = 0; v < I.vocab; ++v)
          for (int pc = 0; pc < cols; ++pc) {
            const int kc = keras_column(pc, u);
            if (kc < 0) continue;
            double s = b.data[kc];
            for (int e = 0; e < I.emb; ++e)
              s += static_cast<double>(E.data[static_cast<size_t>(v) * I.emb + e]) *
                   W0[static_cast<size_t>(e) * 4 * u + kc];
            I.token_table[static_cast<size_t>(v) * cols + pc] = static_cast<float>(s);
          }
      }
      I.max_z = std::max(I.max_z, cols);
      if (I.half) {
        L.Wh = to_half(L.W);
        std::vector<float>().swap(L.W);
      }
      I.layers.push_back(std::move(L));
      in = u;
      in_pad = I.layers.back().u_pad;
    }
    const int last_pad = I.layers.back().u_pad;
    if (I.lm) {
      const TensorView& hk = need(weights, "head/kernel", {units.back(), I.vocab});
      const TensorView& hb = need(weights, "head/bias", {I.vocab});
      if (I.half) check_half_range(hk, "head/kernel");
      I.dense.push_back(pack_dense(hk, hb, last_pad));
      I.out_dim = I.vocab;
    } else {
      int width = units.back(), K = last_pad;
      for (int j = 0;; ++j) {
        const std::string pre = "dense_" + std::to_string(j) + "/";
        auto k = weights.find(pre + "kernel");
        if (k == weights.end()) break;
        if (k->second.shape.size() != 2)
          throw ModelFormatError("LstmEngine: tensor '" + pre + "kernel' is not 2-D");
        const int n = static_cast<int>(k->second.shape[1]);
        const TensorView& dk = need(weights, pre + "kernel", {width, n});
        const TensorView& db = need(weights, pre + "bias", {n});
        if (I.half) check_half_range(dk, pre + "kernel");
        I.dense.push_back(pack_dense(dk, db, K));
        width = n;
        K = I.dense.back().panels * kPanel;
      }
      if (I.dense.empty()) throw ModelFormatError("LstmEngine: tensor 'dense_0/kernel' is missing");
      if (width != I.features)
        throw ModelFormatError("LstmEngine: the last dense layer has " + std::to_string(width) +
                               " outputs, expected n_features = " + std::to_string(I.features));
      I.out_dim = I.features;
    }
    for (Dense& d : I.dense) {
      I.max_out = std::max(I.max_out, d.panels * kPanel);
      if (I.half) {
        d.Wh = to_half(d.W);
        std::vector<float>().swap(d.W);
      }
    }
  } catch (...) {
    delete impl_;
    throw;
  }
}

LstmEngine::~LstmEngine() { delete impl_; }

const std::string& LstmEngine::kind() const { return impl_->kind; }
int LstmEngine::vocab_size() const { return impl_->vocab; }
int LstmEngine::n_features() const { return impl_->features; }
int LstmEngine::output_dim() const { return impl_->out_dim; }
std::string LstmEngine::kernels() const { return impl_->ops->name; }
std::string LstmEngine::precision() const { return impl_->half ? "float16" : "float32"; }
std::vector<std::string> LstmEngine::available_kernels() {
  std::vector<std::string> out;
  for (const char* const* n = kernels::available_ops(); *n != nullptr; ++n) out.emplace_back(*n);
  return out;
}

namespace {

// Run fn(begin, end) over [0, n) split into contiguous chunks on up to `threads` threads.
// Streams are independent, so each thread runs its whole loop with no synchronization.
// Threads asked for, or every core for 0.
int resolve_threads(int threads) {
  if (threads > 0) return threads;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

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

}  // namespace

void LstmEngine::logits(const std::int32_t* tokens, std::int64_t batch, std::int64_t steps,
                        float* out, int threads) const {
  const Impl& I = *impl_;
  if (!I.lm) throw std::invalid_argument("LstmEngine::logits: the model is not of kind lstm_lm");
  for (std::int64_t i = 0; i < batch * steps; ++i)
    if (tokens[i] < 0 || tokens[i] >= I.vocab)
      throw std::invalid_argument("LstmEngine::logits: token id " + std::to_string(tokens[i]) +
                                  " outside [0, " + std::to_string(I.vocab) + ")");
  parallel_chunks(batch, threads, [&](std::int64_t b0, std::int64_t b1) {
    Impl::Work w;
    I.make_work(w, static_cast<int>(b1 - b0));
    for (std::int64_t t = 0; t < steps; ++t) {
      I.step_tokens(w, tokens + b0 * steps + t, static_cast<long>(steps));
      for (std::int64_t b = b0; b < b1; ++b)
        std::memcpy(out + (b * steps + t) * I.vocab, w.out.data() + (b - b0) * I.max_out,
                    sizeof(float) * I.vocab);
    }
  });
}

void LstmEngine::predict(const float* x, std::int64_t batch, std::int64_t steps, float* out,
                         int threads) const {
  const Impl& I = *impl_;
  if (I.lm) throw std::invalid_argument("LstmEngine::predict: the model is not of kind paper");
  const int F = I.features;
  parallel_chunks(batch, threads, [&](std::int64_t b0, std::int64_t b1) {
    Impl::Work w;
    I.make_work(w, static_cast<int>(b1 - b0));
    for (std::int64_t t = 0; t < steps; ++t) {
      I.step_features(w, x + (b0 * steps + t) * F, static_cast<long>(steps) * F);
      for (std::int64_t b = b0; b < b1; ++b)
        std::memcpy(out + (b * steps + t) * F, w.out.data() + (b - b0) * I.max_out,
                    sizeof(float) * F);
    }
  });
}

void LstmEngine::generate_features(const float* primer, std::int64_t batch,
                                   std::int64_t primer_len, std::int64_t steps, float* out,
                                   int threads) const {
  const Impl& I = *impl_;
  if (I.lm)
    throw std::invalid_argument("LstmEngine::generate_features: the model is not of kind paper");
  if (primer_len < 1)
    throw std::invalid_argument("LstmEngine::generate_features: the primer needs >= 1 row");
  const int F = I.features;
  parallel_chunks(batch, threads, [&](std::int64_t b0, std::int64_t b1) {
    Impl::Work w;
    const int nb = static_cast<int>(b1 - b0);
    I.make_work(w, nb);
    for (std::int64_t t = 0; t < primer_len; ++t)
      I.step_features(w, primer + (b0 * primer_len + t) * F, static_cast<long>(primer_len) * F);
    std::vector<float> x(static_cast<size_t>(nb) * F);
    for (std::int64_t t = 0; t < steps; ++t) {
      for (int m = 0; m < nb; ++m) {
        std::memcpy(out + ((b0 + m) * steps + t) * F, w.out.data() + m * I.max_out,
                    sizeof(float) * F);
        std::memcpy(x.data() + m * F, w.out.data() + m * I.max_out, sizeof(float) * F);
      }
      if (t + 1 < steps) I.step_features(w, x.data(), F);
    }
  });
}

namespace {

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

}  // namespace

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

namespace {

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

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A barrier for a team that meets a few times per token: it spins (a wake-up through the OS
// would cost more than a step's share of work), then yields, so an oversubscribed machine
// still makes progress.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void wait() {
    const unsigned gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    for (int spin = 0; gen_.load(std::memory_order_acquire) == gen; ++spin) {
      if (spin < 2000) cpu_relax();
      else std::this_thread::yield();
    }
  }

 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<unsigned> gen_{0};
};

// Best rate of 5 windows of about seconds / 5 each: work(reps) does reps units of `per_rep`.
template <class Work>
double best_rate(double seconds, double per_rep, Work&& work) {
  using clock = std::chrono::steady_clock;
  long reps = 1;
  for (;;) {  // calibrate: a window of >= 1/5 of the time
    const auto t0 = clock::now();
    work(reps);
    const double t = std::chrono::duration<double>(clock::now() - t0).count();
    if (t >= seconds / 5 || reps > (1L << 40)) break;
    reps *= 2;
  }
  double best = 0.0;
  for (int w = 0; w < 5; ++w) {
    const auto t0 = clock::now();
    work(reps);
    const double t = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, per_rep * reps / std::max(t, 1e-9));
  }
  return best;
}

volatile float probe_sink = 0.0f;

}  // namespace

double probe_read_bandwidth(std::int64_t nbytes, double seconds) {
  const kernels::Ops& ops = kernels::best_ops();
  const long n = std::max<long>(1024, static_cast<long>(nbytes / 4));
  std::vector<float> buf(n, 1.0f);
  ops.probe_read(buf.data(), n);  // warm the caches
  return best_rate(seconds, 4.0 * n, [&](long reps) {
    float s = 0.0f;
    for (long r = 0; r < reps; ++r) s += ops.probe_read(buf.data(), n);
    probe_sink = s;
  });
}

double probe_fma_peak(double seconds) {
  const kernels::Ops& ops = kernels::best_ops();
  constexpr long kRounds = 4096;
  return best_rate(seconds, 2.0 * ops.fma_floats * kRounds, [&](long reps) {
    probe_sink = ops.probe_fma(kRounds * reps, probe_sink + 1.0f);
  });
}

void LstmEngine::generate(const GenerateRequest& r) const {
  const Impl& I = *impl_;
  const int V = I.vocab;
  if (!I.lm) throw std::invalid_argument("LstmEngine::generate: the model is not of kind lstm_lm");
  const std::vector<std::int32_t> state0 = check_request(r, V);
  const int threads = resolve_threads(r.threads);
  // A team larger than the machine would only wait at its barriers for descheduled members.
  const int team = std::min({threads, I.max_team(), resolve_threads(0)});
  if (r.n > 0 && r.n < threads && team > 1) {
    generate_team(r, state0, team);
    return;
  }
  parallel_chunks(r.n, threads, [&](std::int64_t b0, std::int64_t b1) {
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

// Fewer streams than threads: the team splits each step's panels (Impl::team_step), and
// thread t samples the streams m with m % team == t between two barriers.
void LstmEngine::generate_team(const GenerateRequest& r, const std::vector<std::int32_t>& state0,
                               int team) const {
  const Impl& I = *impl_;
  const int V = I.vocab;
  const int nb = static_cast<int>(r.n);
  Impl::TeamWork w;
  I.make_team_work(w, nb);
  std::vector<Stream> streams(nb);
  for (int m = 0; m < nb; ++m) streams[m].start(r, m, state0[m]);
  std::vector<std::int32_t> next(nb, 0);
  SpinBarrier barrier(team);
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto fail = [&] {
    std::lock_guard<std::mutex> lock(error_mutex);
    if (!error) error = std::current_exception();
    failed.store(true, std::memory_order_relaxed);
  };
  // Everything a member needs is allocated here, so nothing inside the loop can throw except
  // sampling, whose errors are recorded and end the run for the whole team at one barrier.
  std::vector<std::vector<const float*>> inits(team, std::vector<const float*>(nb, nullptr));
  std::vector<Sampler> samplers(team);
  for (Sampler& sm : samplers) sm.reserve(V);
  std::atomic<int> go{0};  // 0: wait, 1: run, 2: the team could not be started
  auto member = [&](int tid) {
    while (go.load(std::memory_order_acquire) == 0) std::this_thread::yield();
    if (go.load(std::memory_order_relaxed) != 1) return;
    std::vector<const float*>& init = inits[tid];
    auto meet = [&] { barrier.wait(); };
    int parity = 0;
    for (std::int64_t t = 0; t < r.primer_len; ++t, parity ^= 1)
      I.team_step(w, parity, r.primer + t, static_cast<long>(r.primer_len), tid, team, init,
                  meet);
    for (std::int64_t step = 0;; ++step, parity ^= 1) {
      std::int64_t sampled = 0;
      for (int m = tid; m < nb; m += team) {
        if (streams[m].done || failed.load(std::memory_order_relaxed)) continue;
        try {
          next[m] = streams[m].advance(r, V, samplers[tid], m, step,
                                       w.out.data() + static_cast<size_t>(m) * I.max_out);
          ++sampled;
        } catch (...) {
          fail();
        }
      }
      if (sampled > 0 && r.progress != nullptr)
        r.progress->fetch_add(sampled, std::memory_order_relaxed);
      barrier.wait();  // every stream's token and done flag are now visible to all
      bool active = false;
      for (int m = 0; m < nb; ++m) active = active || !streams[m].done;
      if (!active || failed.load(std::memory_order_relaxed)) break;
      I.team_step(w, parity, next.data(), 1, tid, team, init, meet);
    }
  };
  std::vector<std::thread> pool;
  try {
    for (int tid = 1; tid < team; ++tid) pool.emplace_back(member, tid);
  } catch (...) {  // no thread for every member: release the ones started, report why
    go.store(2, std::memory_order_release);
    for (auto& th : pool) th.join();
    throw;
  }
  go.store(1, std::memory_order_release);
  member(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  for (int m = 0; m < nb; ++m) streams[m].finish(r, m);
}

}  // namespace musgen::engine
