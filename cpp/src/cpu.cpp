// Run-time CPU feature detection (x86: cpuid through the compiler builtins; aarch64: NEON is
// part of the base ISA).
#include "musgen/cpu.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace musgen {

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;  // F16C: CPUID leaf 1, ECX bit 29
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0) f.f16c = (ecx >> 29) & 1u;
    f.avx512f = __builtin_cpu_supports("avx512f");
#elif defined(__aarch64__)
    f.neon = true;
#endif
    return f;
  }();
  return features;
}

std::string cpu_features_string() {
  const CpuFeatures& f = cpu_features();
#if defined(__x86_64__)
  std::string s = "x86_64";
#elif defined(__aarch64__)
  std::string s = "aarch64";
#else
  std::string s = "generic";
#endif
  if (f.avx2) s += " avx2";
  if (f.fma) s += " fma";
  if (f.f16c) s += " f16c";
  if (f.avx512f) s += " avx512f";
  if (f.neon) s += " neon";
  return s;
}

}  // namespace musgen
