// Run-time CPU feature detection, so portable wheels can pick vectorized kernels per machine.
#pragma once

#include <string>

namespace musgen {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool neon = false;
};

// Detected once, on first use.
const CpuFeatures& cpu_features();

// "x86_64 avx2 fma" etc., for `musgen info`.
std::string cpu_features_string();

}  // namespace musgen
