// The pieces of musgen's sampling rule that decide a token, as __host__ __device__ code: the
// CUDA sampling kernel calls them on the device and cuda_sample_reference() calls the very same
// functions on the host, so host tests check the code the kernels run (see engine.hpp for the
// rule and python/musgen/engine/sampling.py for its NumPy statement).
#pragma once

#include <cmath>
#include <cstdint>

#if !defined(MUSGEN_HD)
#if defined(__CUDACC__)
#define MUSGEN_HD __host__ __device__ __forceinline__
#else
#define MUSGEN_HD inline
#endif
#endif

namespace musgen::cuda::rule {

// Philox4x32-10, keyed and countered exactly as musgen/philox.hpp (plain arrays: no std::array
// on the device). Returns the first output word.
MUSGEN_HD std::uint32_t philox_word0(std::uint32_t step, std::uint32_t stream, std::uint64_t seed) {
  std::uint32_t c0 = step, c1 = stream, c2 = 0u, c3 = 0u;
  std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(0xD2511F53u) * c0;
    const std::uint64_t p1 = static_cast<std::uint64_t>(0xCD9E8D57u) * c2;
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    const std::uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c0;
}

// The uniform in [0, 1) of token `step` of stream `stream` (= musgen::philox_uniform).
MUSGEN_HD double philox_uniform(std::uint64_t seed, std::uint32_t step, std::uint32_t stream) {
  return static_cast<double>(philox_word0(step, stream, seed) >> 8) * (1.0 / 16777216.0);
}

// allowed(v) for a grammar row.
MUSGEN_HD bool allowed(const std::int32_t* row, int v, bool can_end, std::int32_t eos) {
  return row[v] >= 0 && (v != eos || can_end);
}

// Greedy order: does (logit a, id ia) beat (logit b, id ib)? Larger logit, then lower id.
MUSGEN_HD bool greedy_better(float a, int ia, float b, int ib) {
  return ib < 0 || a > b || (a == b && ia < ib);
}

// x_v = float64(logit) / T (T = float64 of the float32 temperature).
MUSGEN_HD double scaled(float logit, double T) { return static_cast<double>(logit) / T; }

// w_v = exp(x_v - max x).
MUSGEN_HD double weight(float logit, double T, double max_x) { return exp(scaled(logit, T) - max_x); }

// Top-k/top-p order among kept tokens: (w descending, id ascending). True when a ranks before b.
MUSGEN_HD bool ranks_before(double wa, int ia, double wb, int ib) {
  return wa > wb || (wa == wb && ia < ib);
}

// Top-p cutoff. wk[i]: weights of the allowed tokens in id order (nk of them); rank[i]: their
// order position; order[r]: the index i at rank r; n_keep: tokens left by top-k. Returns how
// many ranks stay (the shortest prefix reaching p * total, total summed in id order).
MUSGEN_HD int top_p_keep(const double* wk, const int* rank, const int* order, int nk, int n_keep,
                         float top_p) {
  double total = 0.0;
  for (int i = 0; i < nk; ++i)
    if (rank[i] < n_keep) total += wk[i];
  const double goal = static_cast<double>(top_p) * total;
  double run = 0.0;
  int r = 0;
  for (; r < n_keep; ++r) {
    run += wk[order[r]];
    if (run >= goal) break;
  }
  return r < n_keep ? r + 1 : n_keep;
}

// The final draw: among indices i with rank[i] < limit (rank == nullptr: all kept), in id
// order, the first whose running sum exceeds u * total (else the last kept). Returns the index i.
MUSGEN_HD int pick(const double* wk, const int* rank, int nk, int limit, double u) {
  double total = 0.0;
  int last = -1;
  for (int i = 0; i < nk; ++i)
    if (rank == nullptr || rank[i] < limit) {
      total += wk[i];
      last = i;
    }
  const double target = u * total;
  double run = 0.0;
  for (int i = 0; i < nk; ++i)
    if (rank == nullptr || rank[i] < limit) {
      run += wk[i];
      if (run > target) return i;
    }
  return last;
}

}  // namespace musgen::cuda::rule
