// The primer warm-up of the sampling loop: the state after each stream's primer and the logits
// of its first token. Streams that share a primer share one warm-up; a long primer goes layer
// by layer, each layer's input projection over a block of steps as one matrix product, with
// the very numbers of stepping it token by token (every panel sums its rows in k order).
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "impl.hpp"

namespace musgen::engine {

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
  } else if (plen < kBatchedWarmUp || !lm) {
    for (std::int64_t t = 0; t < plen; ++t) step_tokens(w, primer + t, static_cast<long>(plen));
  } else {
    warm_up_layers(w, primer, plen, threads, block_floats);
    head(w);
  }
}

// Layer by layer over time blocks: each layer's input projection for the whole block as one
// product (init + x W_x), then its recurrence step by step (+ h W_h, the gates).
void LstmEngine::Impl::warm_up_layers(Work& w, const std::int32_t* primer, std::int64_t plen,
                                      int threads, size_t block_floats) const {
  const int nb = w.nb;
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

}  // namespace musgen::engine
