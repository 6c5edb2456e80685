// Instantiates the engine kernels (kernels.inl) for AVX-512, AVX2+FMA and portable code
// in one translation unit via per-region target pragmas, so a portable build (no -march=native)
// still runs vector code; best_ops() picks by musgen::cpu_features() at run time.
#include "kernels.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "musgen/cpu.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define MUSGEN_X86 1
#endif

#define MUSGEN_ISA_NS generic_isa
#include "kernels.inl"
#undef MUSGEN_ISA_NS

#if defined(MUSGEN_X86) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#define MUSGEN_ISA_NS avx2_isa
#define MUSGEN_ISA_AVX2 1
#include "kernels.inl"
#undef MUSGEN_ISA_AVX2
#undef MUSGEN_ISA_NS
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#endif
#define MUSGEN_ISA_NS avx512_isa
#define MUSGEN_ISA_AVX512 1
#include "kernels.inl"
#undef MUSGEN_ISA_AVX512
#undef MUSGEN_ISA_NS
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#define MUSGEN_HAVE_X86_KERNELS 1
#endif

namespace musgen::engine::kernels {
namespace {
#define MUSGEN_OPS(label, ns)                                                              \
  Ops {                                                                                     \
    label, &ns::gemm, &ns::gemm_h, &ns::lstm_gates, &ns::probe_read, &ns::probe_fma,         \
        ns::kProbeFmaFloats                                                                  \
  }
const Ops kGeneric = MUSGEN_OPS("generic", generic_isa);
#if defined(MUSGEN_HAVE_X86_KERNELS)
const Ops kAvx2 = MUSGEN_OPS("avx2", avx2_isa);
const Ops kAvx512 = MUSGEN_OPS("avx512", avx512_isa);
#endif

bool usable(const Ops* ops) {
#if defined(MUSGEN_HAVE_X86_KERNELS)
  const auto& f = musgen::cpu_features();
  if (ops == &kAvx512) return f.avx512f && f.avx2 && f.fma;
  if (ops == &kAvx2) return f.avx2 && f.fma && f.f16c;
#endif
  return ops == &kGeneric;
}
}  // namespace

const Ops* ops_by_name(const char* name) {
  const std::string n(name ? name : "");
#if defined(MUSGEN_HAVE_X86_KERNELS)
  if (n == "avx512") return usable(&kAvx512) ? &kAvx512 : nullptr;
  if (n == "avx2") return usable(&kAvx2) ? &kAvx2 : nullptr;
#endif
  if (n == "generic") return &kGeneric;
  return nullptr;
}

const char* const* available_ops() {
  static const char* names[4] = {nullptr, nullptr, nullptr, nullptr};
  static const bool filled = [] {
    int i = 0;
    for (const char* n : {"avx512", "avx2", "generic"})
      if (ops_by_name(n) != nullptr) names[i++] = n;
    return true;
  }();
  (void)filled;
  return names;
}

const Ops& best_ops() {
  static const Ops* chosen = [] {
    if (const char* env = std::getenv("MUSGEN_ENGINE_KERNELS"))
      if (const Ops* o = ops_by_name(env)) return o;
    return ops_by_name(available_ops()[0]);
  }();
  return *chosen;
}

}  // namespace musgen::engine::kernels
