// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): the
// counter-based generator every musgen engine backend (C++, CUDA, NumPy) samples with.
//
// musgen's use, identical on every backend:
//   key     = (seed & 0xffffffff, seed >> 32)              (the stream's 64-bit seed)
//   counter = (step, stream, 0, 0)                          (step: index of the generated token,
//                                                            0 for the first token after the
//                                                            primer; stream: index in the batch)
//   u       = (x0 >> 8) * 2^-24                             (x0: first output word; u in [0, 1))
// One uniform per stream and step, so any token of any stream can be recomputed on its own.
#pragma once

#include <array>
#include <cstdint>

namespace musgen {

using Philox4x32 = std::array<std::uint32_t, 4>;

inline Philox4x32 philox4x32_10(Philox4x32 ctr, std::array<std::uint32_t, 2> key) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * ctr[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * ctr[2];
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
    key[0] += kWeyl0;
    key[1] += kWeyl1;
  }
  return ctr;
}

// The uniform in [0, 1) that drives sampling of token `step` of stream `stream`.
inline double philox_uniform(std::uint64_t seed, std::uint32_t step, std::uint32_t stream) {
  const Philox4x32 out = philox4x32_10(
      {step, stream, 0u, 0u},
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
  return static_cast<double>(out[0] >> 8) * (1.0 / 16777216.0);
}

}  // namespace musgen
