// LstmEngine's constructor: checks every tensor against the architecture and repacks the Keras
// weights once into the kernels' panels (float32, or float16 storage), with layer 0's input
// projection folded into a per-token table.
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>
#include <utility>
#include <stdexcept>
#include <string>
#include <vector>

#include "impl.hpp"
#include "musgen/errors.hpp"

namespace musgen::engine {
namespace {

using detail::Act;
using detail::Dense;
using detail::kPanel;
using detail::kUnitsPerPanel;
using detail::Layer;

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


// Packed column index -> Keras column (gate * units + unit), or -1 for padding.
int keras_column(int packed, int units) {
  const int p = packed / kPanel, j = packed % kPanel;
  const int gate = j / kUnitsPerPanel, unit = p * kUnitsPerPanel + j % kUnitsPerPanel;
  return unit < units ? gate * units + unit : -1;
}


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

Act parse_activation(const std::string& s) {
  if (s == "relu") return Act::relu;
  if (s == "tanh") return Act::tanh_;
  if (s == "sigmoid") return Act::sigmoid;
  if (s == "linear") return Act::linear;
  throw ModelFormatError("LstmEngine: dense_activation '" + s +
                         "' is not one of relu, tanh, sigmoid, linear");
}


// A packed LSTM layer from its Keras kernel W [in, 4u], recurrent kernel U [u, 4u] and bias.
// With in_pad == 0 the input rows are left out (layer 0 of a token model: its input projection
// lives in the token table).
Layer pack_layer(const TensorView& W, const TensorView& U, const TensorView& b, int in, int in_pad,
                 int u) {
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
  return L;
}

// Layer 0's input projection for every token, in packed column order:
// table[v] = embedding[v] @ W0 + b0 (summed in double), [vocab, 32 * panels].
std::vector<float> make_token_table(const TensorView& E, const float* W0, const TensorView& b,
                                    int vocab, int emb, int u, int cols) {
  std::vector<float> table(static_cast<size_t>(vocab) * cols, 0.0f);
  for (int v = 0; v < vocab; ++v)
    for (int pc = 0; pc < cols; ++pc) {
      const int kc = keras_column(pc, u);
      if (kc < 0) continue;
      double s = b.data[kc];
      for (int e = 0; e < emb; ++e)
        s += static_cast<double>(E.data[static_cast<size_t>(v) * emb + e]) *
             W0[static_cast<size_t>(e) * 4 * u + kc];
      table[static_cast<size_t>(v) * cols + pc] = static_cast<float>(s);
    }
  return table;
}

// The model's arguments before any tensor is read.
void check_arguments(const std::string& kind, const std::vector<int>& units,
                     const std::string& precision) {
  if (precision != "float32" && precision != "float16")
    throw std::invalid_argument("LstmEngine: precision '" + precision +
                                "', expected float32 or float16");
  if (kind != "lstm_lm" && kind != "paper")
    throw ModelFormatError("LstmEngine: model kind '" + kind + "', expected lstm_lm or paper");
  if (units.empty()) throw ModelFormatError("LstmEngine: lstm_units is empty");
  for (int u : units)
    if (u <= 0) throw ModelFormatError("LstmEngine: lstm_units must be positive");
}

const kernels::Ops* choose_kernels(const std::string& kernels) {
  if (kernels == "auto") return &kernels::best_ops();
  const kernels::Ops* ops = kernels::ops_by_name(kernels.c_str());
  if (ops == nullptr)
    throw BackendUnavailable("LstmEngine: kernels '" + kernels +
                             "' are not available on this CPU or build");
  return ops;
}

// A 2-D tensor's shape, or ModelFormatError naming it.
std::pair<int, int> shape_2d(const std::map<std::string, TensorView>& w, const std::string& name) {
  auto it = w.find(name);
  if (it == w.end() || it->second.shape.size() != 2)
    throw ModelFormatError("LstmEngine: tensor '" + name + "' is missing or not 2-D");
  return {static_cast<int>(it->second.shape[0]), static_cast<int>(it->second.shape[1])};
}

}  // namespace

// The LSTM stack, layer by layer: check, (round to float16,) pack.
void LstmEngine::Impl::pack_layers(const std::vector<int>& units,
                                   const std::map<std::string, TensorView>& weights) {
  int in = lm ? emb : features;
  int in_pad = lm ? 0 : features;  // token models: layer 0's input projection is the table
  for (size_t l = 0; l < units.size(); ++l) {
    const std::string pre = "lstm_" + std::to_string(l) + "/";
    const int u = units[l];
    const TensorView& W = need(weights, pre + "kernel", {in, 4L * u});
    const TensorView& U = need(weights, pre + "recurrent_kernel", {u, 4L * u});
    const TensorView& b = need(weights, pre + "bias", {4L * u});
    if (half) {
      check_half_range(W, pre + "kernel");
      check_half_range(U, pre + "recurrent_kernel");
    }
    Layer L = pack_layer(W, U, b, in, in_pad, u);
    const int cols = L.panels * kPanel;
    if (lm && l == 0) {
      // Float16 models compute with the rounded kernels everywhere, the token table included.
      std::vector<float> rounded;
      if (half) {
        rounded.assign(W.data, W.data + static_cast<size_t>(in) * 4 * u);
        for (float& x : rounded) x = round_to_half(x);
      }
      const TensorView& E = need(weights, "embedding/embeddings", {vocab, emb});
      token_table = make_token_table(E, rounded.empty() ? W.data : rounded.data(), b, vocab,
                                     emb, u, cols);
    }
    max_z = std::max(max_z, cols);
    if (half) {
      L.Wh = to_half(L.W);
      std::vector<float>().swap(L.W);
    }
    layers.push_back(std::move(L));
    in = u;
    in_pad = layers.back().u_pad;
  }
}

// The dense layers after the stack: the head of a token model, or a paper model's dense stack
// (dense_0, dense_1, ... until one is missing), packed in the storage precision.
void LstmEngine::Impl::pack_dense_layers(const std::vector<int>& units,
                                         const std::map<std::string, TensorView>& weights) {
  const int last_pad = layers.back().u_pad;
  if (lm) {
    const TensorView& hk = need(weights, "head/kernel", {units.back(), vocab});
    const TensorView& hb = need(weights, "head/bias", {vocab});
    if (half) check_half_range(hk, "head/kernel");
    dense.push_back(pack_dense(hk, hb, last_pad));
    out_dim = vocab;
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
      if (half) check_half_range(dk, pre + "kernel");
      dense.push_back(pack_dense(dk, db, K));
      width = n;
      K = dense.back().panels * kPanel;
    }
    if (dense.empty()) throw ModelFormatError("LstmEngine: tensor 'dense_0/kernel' is missing");
    if (width != features)
      throw ModelFormatError("LstmEngine: the last dense layer has " + std::to_string(width) +
                             " outputs, expected n_features = " + std::to_string(features));
    out_dim = features;
  }
  for (Dense& d : dense) {
    max_out = std::max(max_out, d.panels * kPanel);
    if (half) {
      d.Wh = to_half(d.W);
      std::vector<float>().swap(d.W);
    }
  }
}

LstmEngine::LstmEngine(const std::string& kind, const std::vector<int>& units,
                       const std::map<std::string, TensorView>& weights,
                       const std::string& dense_activation, const std::string& kernels,
                       const std::string& precision)
    : impl_(new Impl) {
  try {
    Impl& I = *impl_;
    check_arguments(kind, units, precision);
    I.kind = kind;
    I.half = precision == "float16";
    I.lm = kind == "lstm_lm";
    I.act = parse_activation(dense_activation);
    I.ops = choose_kernels(kernels);
    if (I.lm) std::tie(I.vocab, I.emb) = shape_2d(weights, "embedding/embeddings");
    else I.features = shape_2d(weights, "lstm_0/kernel").first;
    I.pack_layers(units, weights);
    I.pack_dense_layers(units, weights);
  } catch (...) {
    delete impl_;
    throw;
  }
}

}  // namespace musgen::engine
