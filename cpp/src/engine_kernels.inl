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

#if defined(MUSGEN_ISA_AVX512)
// MR rows x 32 columns, accumulators in 2 * MR zmm registers.
template <int MR>
static inline void micro(int K, const float* A, long lda, const float* W, const float* const* init,
                         int col, bool accumulate, float* Z, long ldz) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) {
    const float* src = accumulate ? Z + r * ldz : init[r] + col;
    acc[r][0] = _mm512_loadu_ps(src);
    acc[r][1] = _mm512_loadu_ps(src + 16);
  }
  for (int k = 0; k < K; ++k) {
    const __m512 w0 = _mm512_loadu_ps(W + k * kPanel);
    const __m512 w1 = _mm512_loadu_ps(W + k * kPanel + 16);
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

// One row: four independent accumulator pairs hide the FMA latency; weights stream once.
static inline void gemv(int K, int panels, const float* a, const float* W, const float* init,
                        float* z) {
  for (int p = 0; p < panels; ++p) {
    const float* w = W + static_cast<long>(p) * K * kPanel;
    __m512 s0 = _mm512_loadu_ps(init + p * kPanel), s1 = _mm512_loadu_ps(init + p * kPanel + 16);
    __m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
    __m512 u0 = _mm512_setzero_ps(), u1 = _mm512_setzero_ps();
    __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
    int k = 0;
    for (; k + 4 <= K; k += 4) {
      const float* wk = w + k * kPanel;
      const __m512 a0 = _mm512_set1_ps(a[k]), a1 = _mm512_set1_ps(a[k + 1]);
      const __m512 a2 = _mm512_set1_ps(a[k + 2]), a3 = _mm512_set1_ps(a[k + 3]);
      s0 = _mm512_fmadd_ps(a0, _mm512_loadu_ps(wk), s0);
      s1 = _mm512_fmadd_ps(a0, _mm512_loadu_ps(wk + 16), s1);
      t0 = _mm512_fmadd_ps(a1, _mm512_loadu_ps(wk + 32), t0);
      t1 = _mm512_fmadd_ps(a1, _mm512_loadu_ps(wk + 48), t1);
      u0 = _mm512_fmadd_ps(a2, _mm512_loadu_ps(wk + 64), u0);
      u1 = _mm512_fmadd_ps(a2, _mm512_loadu_ps(wk + 80), u1);
      v0 = _mm512_fmadd_ps(a3, _mm512_loadu_ps(wk + 96), v0);
      v1 = _mm512_fmadd_ps(a3, _mm512_loadu_ps(wk + 112), v1);
    }
    for (; k < K; ++k) {
      const __m512 ak = _mm512_set1_ps(a[k]);
      s0 = _mm512_fmadd_ps(ak, _mm512_loadu_ps(w + k * kPanel), s0);
      s1 = _mm512_fmadd_ps(ak, _mm512_loadu_ps(w + k * kPanel + 16), s1);
    }
    s0 = _mm512_add_ps(_mm512_add_ps(s0, t0), _mm512_add_ps(u0, v0));
    s1 = _mm512_add_ps(_mm512_add_ps(s1, t1), _mm512_add_ps(u1, v1));
    _mm512_storeu_ps(z + p * kPanel, s0);
    _mm512_storeu_ps(z + p * kPanel + 16, s1);
  }
}
#elif defined(MUSGEN_ISA_AVX2)
// MR rows x 32 columns, accumulators in 4 * MR ymm registers (MR = 3: 12 of 16).
template <int MR>
static inline void micro(int K, const float* A, long lda, const float* W, const float* const* init,
                         int col, bool accumulate, float* Z, long ldz) {
  __m256 acc[MR][4];
  for (int r = 0; r < MR; ++r) {
    const float* src = accumulate ? Z + r * ldz : init[r] + col;
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_loadu_ps(src + 8 * q);
  }
  for (int k = 0; k < K; ++k) {
    const float* wk = W + k * kPanel;
    const __m256 w0 = _mm256_loadu_ps(wk), w1 = _mm256_loadu_ps(wk + 8);
    const __m256 w2 = _mm256_loadu_ps(wk + 16), w3 = _mm256_loadu_ps(wk + 24);
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

static inline void gemv(int K, int panels, const float* a, const float* W, const float* init,
                        float* z) {
  for (int p = 0; p < panels; ++p) {
    const float* w = W + static_cast<long>(p) * K * kPanel;
    __m256 s[4], t[4];
    for (int q = 0; q < 4; ++q) {
      s[q] = _mm256_loadu_ps(init + p * kPanel + 8 * q);
      t[q] = _mm256_setzero_ps();
    }
    int k = 0;
    for (; k + 2 <= K; k += 2) {
      const __m256 a0 = _mm256_broadcast_ss(a + k), a1 = _mm256_broadcast_ss(a + k + 1);
      const float* wk = w + k * kPanel;
      for (int q = 0; q < 4; ++q) {
        s[q] = _mm256_fmadd_ps(a0, _mm256_loadu_ps(wk + 8 * q), s[q]);
        t[q] = _mm256_fmadd_ps(a1, _mm256_loadu_ps(wk + 32 + 8 * q), t[q]);
      }
    }
    for (; k < K; ++k) {
      const __m256 ak = _mm256_broadcast_ss(a + k);
      for (int q = 0; q < 4; ++q)
        s[q] = _mm256_fmadd_ps(ak, _mm256_loadu_ps(w + k * kPanel + 8 * q), s[q]);
    }
    for (int q = 0; q < 4; ++q) _mm256_storeu_ps(z + p * kPanel + 8 * q, _mm256_add_ps(s[q], t[q]));
  }
}
#else
// Portable: plain loops over a 32-float row that the compiler vectorizes (SSE2, NEON, ...).
template <int MR>
static inline void micro(int K, const float* A, long lda, const float* W, const float* const* init,
                         int col, bool accumulate, float* Z, long ldz) {
  float acc[MR][kPanel];
  for (int r = 0; r < MR; ++r) {
    const float* src = accumulate ? Z + r * ldz : init[r] + col;
    for (int j = 0; j < kPanel; ++j) acc[r][j] = src[j];
  }
  for (int k = 0; k < K; ++k) {
    const float* wk = W + k * kPanel;
    for (int r = 0; r < MR; ++r) {
      const float a = A[r * lda + k];
      for (int j = 0; j < kPanel; ++j) acc[r][j] += a * wk[j];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < kPanel; ++j) Z[r * ldz + j] = acc[r][j];
}
constexpr int kMR = 4;

static inline void gemv(int K, int panels, const float* a, const float* W, const float* init,
                        float* z) {
  for (int p = 0; p < panels; ++p) {
    const float* const row_init = init + p * kPanel;
    micro<1>(K, a, 0, W + static_cast<long>(p) * K * kPanel, &row_init, 0, false, z + p * kPanel,
             0);
  }
}
#endif

template <int MR>
static void micro_rows(int K, const float* A, long lda, const float* W, const float* const* init,
                       int col, bool accumulate, float* Z, long ldz) {
  micro<MR>(K, A, lda, W, init, col, accumulate, Z, ldz);
}

// Remainder rows (fewer than kMR) dispatched to an exact-size micro-kernel.
template <int R>
static void micro_tail(int rows, int K, const float* A, long lda, const float* W,
                       const float* const* init, int col, bool accumulate, float* Z, long ldz) {
  if constexpr (R > 0) {
    if (rows == R) return micro_rows<R>(K, A, lda, W, init, col, accumulate, Z, ldz);
    micro_tail<R - 1>(rows, K, A, lda, W, init, col, accumulate, Z, ldz);
  }
}

constexpr int kKC = 256;  // K block: a 32-column panel block of 32 KiB stays in L1

static void gemm(int M, int K, int panels, const float* A, long lda, const float* W,
                 const float* const* init, float* Z, long ldz) {
  if (M == 1) {
    gemv(K, panels, A, W, init[0], Z);
    return;
  }
  for (int k0 = 0; k0 < K || k0 == 0; k0 += kKC) {
    const int kc = K - k0 < kKC ? K - k0 : kKC;
    const bool accumulate = k0 > 0;
    for (int p = 0; p < panels; ++p) {
      const float* w = W + static_cast<long>(p) * K * kPanel + static_cast<long>(k0) * kPanel;
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

}  // namespace MUSGEN_ISA_NS
