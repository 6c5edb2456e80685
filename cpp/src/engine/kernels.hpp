// The engine's hot loops, compiled once per instruction set and picked at run time
// (kernels.cpp): a packed-panel matrix product and the fused LSTM gate update.
//
// Packed weights: a matrix with N columns is stored as ceil(N / 32) panels; panel p holds columns
// [32p, 32p + 32) as K rows of 32 contiguous floats (zero beyond N). LSTM weights are packed with
// the four gates of 8 units interleaved per panel: panel p = (i, f, c~, o) of units [8p, 8p + 8),
// so the gate update of a panel needs only that panel's 32 outputs.
#pragma once

#include <cstdint>
#include <cstring>

namespace musgen::engine::kernels {

constexpr int kPanel = 32;       // columns per panel
constexpr int kUnitsPerPanel = 8;  // LSTM units per panel (4 gates x 8)

struct Ops {
  const char* name;
  // Z[m, n] = init[m][n] + sum_k A[m * lda + k] * W[n / 32][k][n % 32]  for m < M, n < 32 * panels.
  // init[m] points at 32 * panels floats (a bias, or a precomputed row such as embedding @ W + b).
  void (*gemm)(int M, int K, int panels, const float* A, long lda, const float* W,
               const float* const* init, float* Z, long ldz);
  // The same product with IEEE float16 weights, each widened exactly to float32 before use:
  // the result equals gemm() on the widened weights, bit for bit.
  void (*gemm_h)(int M, int K, int panels, const float* A, long lda, const std::uint16_t* W,
                 const float* const* init, float* Z, long ldz);
  // LSTM cell for M rows: Z rows hold 32 * panels pre-activations in the interleaved gate order;
  // C [M, 8 * panels] is updated in place; h is written to H (and to H2 when not null).
  void (*lstm_gates)(int M, int panels, const float* Z, long ldz, float* C, long ldc, float* H,
                     long ldh, float* H2, long ldh2);
  // Probes for benchmarks: a streaming sum of n floats, and `iters` rounds of fma_floats
  // independent multiply-adds (2 * fma_floats FLOPs a round).
  float (*probe_read)(const float* p, long n);
  float (*probe_fma)(long iters, float x);
  int fma_floats;
};

// IEEE binary16 bits -> float32, exact (finite inputs; the engine stores no inf or NaN).
inline float half_to_float(std::uint16_t h) {
#if defined(__aarch64__) && defined(__ARM_FP16_FORMAT_IEEE)
  __fp16 v;
  std::memcpy(&v, &h, sizeof v);
  return static_cast<float>(v);  // a vectorizable fcvt on every aarch64 CPU
#else
  // Rebias the exponent by multiplying by 2^112: exact for normal and subnormal halves.
  const std::uint32_t rest = static_cast<std::uint32_t>(h & 0x7fffu) << 13;
  float f;
  std::memcpy(&f, &rest, sizeof f);
  f *= 5.192296858534828e33f;  // 2^112
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  bits |= static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

// The best kernels for this CPU (MUSGEN_ENGINE_KERNELS=generic|avx2|avx512 overrides, for tests).
const Ops& best_ops();
// The kernels by name; nullptr when this build or CPU lacks them.
const Ops* ops_by_name(const char* name);
// Names usable on this machine, best first.
const char* const* available_ops();

}  // namespace musgen::engine::kernels
