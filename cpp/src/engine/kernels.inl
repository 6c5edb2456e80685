// Kernel bodies, included by engine_kernels.cpp once per instruction set inside a
// `#pragma GCC target` region, into namespace MUSGEN_ISA_NS. The plain loops below are written
// so the compiler vectorizes them with that region's instruction set; MUSGEN_ISA_AVX512 /
// MUSGEN_ISA_AVX2 add hand-written register-blocked micro-kernels for the matrix product.

namespace MUSGEN_ISA_NS {

using musgen::engine::kernels::kPanel;

// exp(x) in float, Cephes-style range reduction and polynomial: within 2 ulp on [-87, 88].
static inline float exp_f(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // n = round(x / ln 2) with the 1.5 * 2^23 trick (no call, so loops stay vectorizable)
  const float t = x * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int bits = (static_cast<int>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

static inline float sigmoid_f(float x) { return 1.0f / (1.0f + exp_f(-x)); }

// tanh with a short odd series near 0, where 1 - e^-2|x| would cancel.
static inline float tanh_f(float x) {
  const float a = x < 0.0f ? -x : x;
  const float e = exp_f(-2.0f * a);
  const float big = (1.0f - e) / (1.0f + e);
  const float x2 = a * a;
  const float small =
      a * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f + x2 * (-0.0539682540f +
                                                                     x2 * 0.0218694885f))));
  const float r = a < 0.125f ? small : big;
  return x < 0.0f ? -r : r;
}

#if defined(MUSGEN_ISA_AVX512) || defined(MUSGEN_ISA_AVX2)
// 8 lanes of exp_f / sigmoid_f / tanh_f, the same polynomial as the scalar code above.
static inline __m256 exp8(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(-87.0f), _mm256_min_ps(_mm256_set1_ps(88.0f), x));
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256 n = _mm256_sub_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic),
                                 magic);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

static inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

static inline __m256 tanh8(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 a = _mm256_andnot_ps(sign, x);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), a));
  const __m256 big = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
  const __m256 x2 = _mm256_mul_ps(a, a);
  __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(0.0218694885f), _mm256_set1_ps(-0.0539682540f));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(0.133333333f));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-0.333333333f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(a, x2), q, a);
  const __m256 r = _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.125f), _CMP_LT_OQ));
  return _mm256_or_ps(r, _mm256_and_ps(sign, x));
}

static void lstm_gates(int M, int panels, const float* Z, long ldz, float* C, long ldc, float* H,
                       long ldh, float* H2, long ldh2) {
  for (int m = 0; m < M; ++m) {
    const float* z = Z + m * ldz;
    float* c = C + m * ldc;
    float* h = H + m * ldh;
    for (int p = 0; p < panels; ++p) {
      const float* zp = z + p * kPanel;
      const __m256 ig = sigmoid8(_mm256_loadu_ps(zp));
      const __m256 fg = sigmoid8(_mm256_loadu_ps(zp + 8));
      const __m256 gg = tanh8(_mm256_loadu_ps(zp + 16));
      const __m256 og = sigmoid8(_mm256_loadu_ps(zp + 24));
      const __m256 cn = _mm256_fmadd_ps(fg, _mm256_loadu_ps(c + p * 8), _mm256_mul_ps(ig, gg));
      _mm256_storeu_ps(c + p * 8, cn);
      _mm256_storeu_ps(h + p * 8, _mm256_mul_ps(og, tanh8(cn)));
    }
    if (H2 != nullptr) std::memcpy(H2 + m * ldh2, h, sizeof(float) * 8 * panels);
  }
}
#else
static void lstm_gates(int M, int panels, const float* Z, long ldz, float* C, long ldc, float* H,
                       long ldh, float* H2, long ldh2) {
  for (int m = 0; m < M; ++m) {
    const float* z = Z + m * ldz;
    float* c = C + m * ldc;
    float* h = H + m * ldh;
    for (int p = 0; p < panels; ++p) {
      const float* zp = z + p * kPanel;
      float* cp = c + p * 8;
      float* hp = h + p * 8;
      for (int j = 0; j < 8; ++j) {
        const float ig = sigmoid_f(zp[j]);
        const float fg = sigmoid_f(zp[8 + j]);
        const float gg = tanh_f(zp[16 + j]);
        const float og = sigmoid_f(zp[24 + j]);
        const float cn = fg * cp[j] + ig * gg;
        cp[j] = cn;
        hp[j] = og * tanh_f(cn);
      }
    }
    if (H2 != nullptr) std::memcpy(H2 + m * ldh2, h, sizeof(float) * 8 * panels);
  }
}

#endif

#if defined(MUSGEN_ISA_AVX512)
// 16 weights as floats: float32 as stored, float16 widened exactly (vcvtph2ps).
static inline __m512 loadw(const float* p) { return _mm512_loadu_ps(p); }
static inline __m512 loadw(const std::uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// MR rows x 32 columns, accumulators in 2 * MR zmm registers.
template <int MR, class WT>
static inline void micro(int K, const float* A, long lda, const WT* W, const float* const* init,
                         int col, bool accumulate, float* Z, long ldz) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) {
    const float* src = accumulate ? Z + r * ldz : init[r] + col;
    acc[r][0] = _mm512_loadu_ps(src);
    acc[r][1] = _mm512_loadu_ps(src + 16);
  }
  for (int k = 0; k < K; ++k) {
    const __m512 w0 = loadw(W + k * kPanel);
    const __m512 w1 = loadw(W + k * kPanel + 16);
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(A[r * lda + k]);
      acc[r][0] = _mm512_fmadd_ps(a, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, w1, acc[r][1]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    _mm512_storeu_ps(Z + r * ldz, acc[r][0]);
    _mm512_storeu_ps(Z + r * ldz + 16, acc[r][1]);
  }
}
constexpr int kMR = 12;

// One row. Each column accumulates in k order from its init value, exactly as a row of the
// micro-kernel does, so a stream's numbers never depend on the batch it runs in; the FMA
// latency is hidden by running four panels (8 independent chains) at once.
template <class WT>
static inline void gemv(int K, int panels, const float* a, const WT* W, const float* init,
                        float* z) {
  const long ps = static_cast<long>(K) * kPanel;
  int p = 0;
  for (; p + 4 <= panels; p += 4) {
    const WT* w = W + p * ps;
    __m512 acc[8];
    for (int q = 0; q < 8; ++q) acc[q] = _mm512_loadu_ps(init + p * kPanel + 16 * q);
    for (int k = 0; k < K; ++k) {
      const __m512 ak = _mm512_set1_ps(a[k]);
      for (int q = 0; q < 4; ++q) {
        // Half weights: a k row of a panel is one cache line; fetching 8 rows ahead measured
        // 73 -> 62 us per 2x512 step (float32 rows measured no gain, so they go without).
        if constexpr (sizeof(WT) == 2)
          _mm_prefetch(reinterpret_cast<const char*>(w + q * ps + (k + 8) * kPanel),
                       _MM_HINT_T0);
        acc[2 * q] = _mm512_fmadd_ps(ak, loadw(w + q * ps + k * kPanel), acc[2 * q]);
        acc[2 * q + 1] = _mm512_fmadd_ps(ak, loadw(w + q * ps + k * kPanel + 16), acc[2 * q + 1]);
      }
    }
    for (int q = 0; q < 8; ++q) _mm512_storeu_ps(z + p * kPanel + 16 * q, acc[q]);
  }
  for (; p < panels; ++p) {
    const float* const row_init = init + p * kPanel;
    micro<1>(K, a, 0, W + p * ps, &row_init, 0, false, z + p * kPanel, 0);
  }
}

// Two or three rows: micro() would run only 4 or 6 FMA chains, too few to hide the latency,
// so two panels go at once (8 or 12 chains). Per-column k order as in micro().
template <int MR, class WT>
static inline void few_rows(int K, int panels, const float* A, long lda, const WT* W,
                            const float* const* init, float* Z, long ldz) {
  const long ps = static_cast<long>(K) * kPanel;
  int p = 0;
  for (; p + 2 <= panels; p += 2) {
    __m512 acc[MR][4];
    for (int r = 0; r < MR; ++r)
      for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_loadu_ps(init[r] + p * kPanel + 16 * q);
    const WT* w0 = W + p * ps;
    const WT* w1 = w0 + ps;
    for (int k = 0; k < K; ++k) {
      const __m512 x0 = loadw(w0 + k * kPanel), x1 = loadw(w0 + k * kPanel + 16);
      const __m512 x2 = loadw(w1 + k * kPanel), x3 = loadw(w1 + k * kPanel + 16);
      for (int r = 0; r < MR; ++r) {
        const __m512 a = _mm512_set1_ps(A[r * lda + k]);
        acc[r][0] = _mm512_fmadd_ps(a, x0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(a, x1, acc[r][1]);
        acc[r][2] = _mm512_fmadd_ps(a, x2, acc[r][2]);
        acc[r][3] = _mm512_fmadd_ps(a, x3, acc[r][3]);
      }
    }
    for (int r = 0; r < MR; ++r)
      for (int q = 0; q < 4; ++q) _mm512_storeu_ps(Z + r * ldz + p * kPanel + 16 * q, acc[r][q]);
  }
  if (p < panels) micro<MR>(K, A, lda, W + p * ps, init, p * kPanel, false, Z + p * kPanel, ldz);
}
#elif defined(MUSGEN_ISA_AVX2)
// 8 weights as floats: float32 as stored, float16 widened exactly (F16C vcvtph2ps).
static inline __m256 loadw(const float* p) { return _mm256_loadu_ps(p); }
static inline __m256 loadw(const std::uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// MR rows x 32 columns, accumulators in 4 * MR ymm registers (MR = 3: 12 of 16).
template <int MR, class WT>
static inline void micro(int K, const float* A, long lda, const WT* W, const float* const* init,
                         int col, bool accumulate, float* Z, long ldz) {
  __m256 acc[MR][4];
  for (int r = 0; r < MR; ++r) {
    const float* src = accumulate ? Z + r * ldz : init[r] + col;
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_loadu_ps(src + 8 * q);
  }
  for (int k = 0; k < K; ++k) {
    const WT* wk = W + k * kPanel;
    const __m256 w0 = loadw(wk), w1 = loadw(wk + 8);
    const __m256 w2 = loadw(wk + 16), w3 = loadw(wk + 24);
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
      acc[r][0] = _mm256_fmadd_ps(a, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, w1, acc[r][1]);
      acc[r][2] = _mm256_fmadd_ps(a, w2, acc[r][2]);
      acc[r][3] = _mm256_fmadd_ps(a, w3, acc[r][3]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < 4; ++q) _mm256_storeu_ps(Z + r * ldz + 8 * q, acc[r][q]);
}
constexpr int kMR = 3;

// One row, two panels (8 independent chains) at a time; per-column k order as in micro().
template <class WT>
static inline void gemv(int K, int panels, const float* a, const WT* W, const float* init,
                        float* z) {
  const long ps = static_cast<long>(K) * kPanel;
  int p = 0;
  for (; p + 2 <= panels; p += 2) {
    const WT* w = W + p * ps;
    __m256 acc[8];
    for (int q = 0; q < 8; ++q) acc[q] = _mm256_loadu_ps(init + p * kPanel + 8 * q);
    for (int k = 0; k < K; ++k) {
      const __m256 ak = _mm256_broadcast_ss(a + k);
      for (int q = 0; q < 4; ++q) {
        acc[q] = _mm256_fmadd_ps(ak, loadw(w + k * kPanel + 8 * q), acc[q]);
        acc[4 + q] = _mm256_fmadd_ps(ak, loadw(w + ps + k * kPanel + 8 * q), acc[4 + q]);
      }
    }
    for (int q = 0; q < 8; ++q) _mm256_storeu_ps(z + p * kPanel + 8 * q, acc[q]);
  }
  for (; p < panels; ++p) {
    const float* const row_init = init + p * kPanel;
    micro<1>(K, a, 0, W + p * ps, &row_init, 0, false, z + p * kPanel, 0);
  }
}
#else
// Portable: plain loops over a 32-float row that the compiler vectorizes (SSE2, NEON, ...).
static inline float wval(float w) { return w; }
static inline float wval(std::uint16_t w) { return musgen::engine::kernels::half_to_float(w); }

template <int MR, class WT>
static inline void micro(int K, const float* A, long lda, const WT* W, const float* const* init,
                         int col, bool accumulate, float* Z, long ldz) {
  float acc[MR][kPanel];
  for (int r = 0; r < MR; ++r) {
    const float* src = accumulate ? Z + r * ldz : init[r] + col;
    for (int j = 0; j < kPanel; ++j) acc[r][j] = src[j];
  }
  for (int k = 0; k < K; ++k) {
    const WT* wk = W + k * kPanel;
    float wf[kPanel];
    for (int j = 0; j < kPanel; ++j) wf[j] = wval(wk[j]);
    for (int r = 0; r < MR; ++r) {
      const float a = A[r * lda + k];
      for (int j = 0; j < kPanel; ++j) acc[r][j] += a * wf[j];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < kPanel; ++j) Z[r * ldz + j] = acc[r][j];
}
constexpr int kMR = 4;

template <class WT>
static inline void gemv(int K, int panels, const float* a, const WT* W, const float* init,
                        float* z) {
  for (int p = 0; p < panels; ++p) {
    const float* const row_init = init + p * kPanel;
    micro<1>(K, a, 0, W + static_cast<long>(p) * K * kPanel, &row_init, 0, false, z + p * kPanel,
             0);
  }
}
#endif

template <int MR, class WT>
static void micro_rows(int K, const float* A, long lda, const WT* W, const float* const* init,
                       int col, bool accumulate, float* Z, long ldz) {
  micro<MR>(K, A, lda, W, init, col, accumulate, Z, ldz);
}

// Remainder rows (fewer than kMR) dispatched to an exact-size micro-kernel.
template <int R, class WT>
static void micro_tail(int rows, int K, const float* A, long lda, const WT* W,
                       const float* const* init, int col, bool accumulate, float* Z, long ldz) {
  if constexpr (R > 0) {
    if (rows == R) return micro_rows<R>(K, A, lda, W, init, col, accumulate, Z, ldz);
    micro_tail<R - 1>(rows, K, A, lda, W, init, col, accumulate, Z, ldz);
  }
}

constexpr int kKC = 256;  // K block: a 32-column panel block of 32 KiB stays in L1

template <class WT>
static void gemm_t(int M, int K, int panels, const float* A, long lda, const WT* W,
                   const float* const* init, float* Z, long ldz) {
  if (M == 1) {
    gemv(K, panels, A, W, init[0], Z);
    return;
  }
#if defined(MUSGEN_ISA_AVX512)
  if (M == 2) return few_rows<2>(K, panels, A, lda, W, init, Z, ldz);
  if (M == 3) return few_rows<3>(K, panels, A, lda, W, init, Z, ldz);
#endif
  for (int k0 = 0; k0 < K || k0 == 0; k0 += kKC) {
    const int kc = K - k0 < kKC ? K - k0 : kKC;
    const bool accumulate = k0 > 0;
    for (int p = 0; p < panels; ++p) {
      const WT* w = W + static_cast<long>(p) * K * kPanel + static_cast<long>(k0) * kPanel;
      const int col = p * kPanel;
      int m = 0;
      for (; m + kMR <= M; m += kMR)
        micro_rows<kMR>(kc, A + m * lda + k0, lda, w, init + m, col, accumulate, Z + m * ldz + col,
                        ldz);
      if (m < M)
        micro_tail<kMR - 1>(M - m, kc, A + m * lda + k0, lda, w, init + m, col, accumulate,
                            Z + m * ldz + col, ldz);
    }
    if (K == 0) break;
  }
}

static void gemm(int M, int K, int panels, const float* A, long lda, const float* W,
                 const float* const* init, float* Z, long ldz) {
  gemm_t(M, K, panels, A, lda, W, init, Z, ldz);
}

// Probes of one core's limits for the benchmarks' bounds (the engine never calls them).
// A streaming read: n floats summed into 128 independent partial sums.
static float probe_read(const float* p, long n) {
  float acc[128] = {};
  long i = 0;
  for (; i + 128 <= n; i += 128)
    for (int j = 0; j < 128; ++j) acc[j] += p[i + j];
  float s = 0.0f;
  for (; i < n; ++i) s += p[i];
  for (float a : acc) s += a;
  return s;
}

// Arithmetic peak: `iters` rounds of independent multiply-adds in registers, enough chains to
// cover the FMA latency on every port. Returns a value that depends on every result.
#if defined(MUSGEN_ISA_AVX512)
constexpr int kProbeFmaFloats = 16 * 16;
static float probe_fma(long iters, float x) {
  __m512 acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_set1_ps(x * static_cast<float>(j));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i)
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
  for (int j = 1; j < 16; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  return _mm512_reduce_add_ps(acc[0]);
}
#elif defined(MUSGEN_ISA_AVX2)
constexpr int kProbeFmaFloats = 12 * 8;
static float probe_fma(long iters, float x) {
  __m256 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(x * static_cast<float>(j));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
  float out[8], s = 0.0f;
  for (int j = 1; j < 12; ++j) acc[0] = _mm256_add_ps(acc[0], acc[j]);
  _mm256_storeu_ps(out, acc[0]);
  for (float v : out) s += v;
  return s;
}
#else
constexpr int kProbeFmaFloats = 64;
static float probe_fma(long iters, float x) {
  float acc[64];
  for (int j = 0; j < 64; ++j) acc[j] = x * static_cast<float>(j);
  for (long i = 0; i < iters; ++i)
    for (int j = 0; j < 64; ++j) acc[j] = acc[j] * 0.999999f + 1e-7f;
  float s = 0.0f;
  for (float v : acc) s += v;
  return s;
}
#endif

static void gemm_h(int M, int K, int panels, const float* A, long lda, const std::uint16_t* W,
                   const float* const* init, float* Z, long ldz) {
  gemm_t(M, K, panels, A, lda, W, init, Z, ldz);
}

}  // namespace MUSGEN_ISA_NS
