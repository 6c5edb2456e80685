// musgen::cuda::CudaLstmEngine: the lstm_lm forward pass and the whole sampling loop on the GPU.
//
// Layout. Each LSTM layer's kernel and recurrent kernel are stored as one "panel" array
// P[unit][k][4]: for unit j, the 4 gate columns (i, f, c, o) of input row k sit in one float4,
// and the rows k of the input x come first, then the rows of h. One layout serves both matvec
// kernels: the warp-per-unit kernel (small batches) reads a unit's panel as consecutive float4s
// across the lanes (fully coalesced), and the tiled GEMM (large batches) loads 16-unit column
// tiles as contiguous 256-byte runs. Because a unit's four gates land in one thread, both kernels
// finish with the LSTM cell update in their epilogue: one kernel per layer and step. Layer 0's
// input projection (embedding @ W0 + b0) is precomputed as a [vocab, 4u] table, gathered by token.
// The head uses the same panels with columns 4p..4p+3 (plain linear epilogue).
//
// Loop. h is double-buffered per layer (step parity p reads h[p], writes h[p^1]), so a kernel
// never overwrites h another block is still reading. Each step is: sample (one block per stream,
// from the logits of the previous step) -> layer kernels -> head. Launch overhead dominates at
// batch 1, so kChunk steps are captured once per generate() into a CUDA graph and replayed; a
// tiny status kernel at the end of each chunk counts the unfinished streams and the host reads it
// with one async copy, one chunk behind (chunk i+1 is already queued while chunk i's flag is
// read), so the GPU never idles waiting on the host. A persistent kernel would need grid-wide
// barriers between layers (cooperative launch), which limits the grid to co-resident blocks and
// hurts large batches; graphs keep every kernel free to use the whole GPU.
//
// Only CUDA 11.4 features (JetPack 5): C++17, cudaGraphInstantiateWithFlags, __shfl_xor_sync.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "musgen/cuda.hpp"
#include "musgen/errors.hpp"
#include "musgen/rules.hpp"
#include "sampling_rule.cuh"

namespace musgen::cuda {
namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    throw BackendUnavailable(std::string("CUDA engine: ") + what + " failed: " +
                             cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
  }
}

// A plain device allocation (never managed memory), freed on scope exit.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) { resize(n); }
  ~DeviceArray() { reset(); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = o.p_;
      n_ = o.n_;
      o.p_ = nullptr;
      o.n_ = 0;
    }
    return *this;
  }
  void resize(size_t n) {
    reset();
    if (n == 0) return;
    check(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)), "cudaMalloc");
    n_ = n;
  }
  void reset() {
    if (p_ != nullptr) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  void upload(const T* src, size_t n, cudaStream_t s = nullptr) {
    if (n > n_) throw std::logic_error("DeviceArray::upload: too many elements");
    if (n) check(cudaMemcpyAsync(p_, src, n * sizeof(T), cudaMemcpyHostToDevice, s), "upload");
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

template <class T>
DeviceArray<T> to_device(const std::vector<T>& v) {
  DeviceArray<T> d(v.size());
  d.upload(v.data(), v.size());
  return d;
}

struct StreamGuard {
  cudaStream_t s = nullptr;
  StreamGuard() { check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"); }
  ~StreamGuard() { cudaStreamDestroy(s); }
};

struct GraphGuard {
  cudaGraph_t g = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~GraphGuard() { reset(); }
  void reset() {
    if (exec) cudaGraphExecDestroy(exec);
    if (g) cudaGraphDestroy(g);
    exec = nullptr;
    g = nullptr;
  }
};

struct PinnedGuard {
  void* p = nullptr;
  explicit PinnedGuard(size_t bytes) { check(cudaMallocHost(&p, bytes), "cudaMallocHost"); }
  ~PinnedGuard() { cudaFreeHost(p); }
};

struct EventGuard {
  cudaEvent_t e = nullptr;
  EventGuard() { check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate"); }
  ~EventGuard() { cudaEventDestroy(e); }
};

// ------------------------------------------------------------------------------------------
// Linear layers: z[m, 4p + g] = sum_k [x1 | x2][m, k] * P[p][k][g] + (bias or gathered table row)

struct LinearArgs {
  const float* x1 = nullptr;  // [M, ld1], first K1 columns used
  int ld1 = 0, K1 = 0;
  const float* x2 = nullptr;  // [M, ld2], first K2 columns used
  int ld2 = 0, K2 = 0;
  const float* P = nullptr;   // [np][K1 + K2][4]
  const float* bias = nullptr;         // [4 * np] (when table is null)
  const float* table = nullptr;        // [vocab][4 * np]: row tok[m * tok_stride] is added
  const std::int32_t* tok = nullptr;
  int tok_stride = 1;
  int M = 0, np = 0;
  // LSTM epilogue (units = np): c [M, ldc] updated in place, new h -> h [M, ldh]
  float* c = nullptr;
  int ldc = 0;
  float* h = nullptr;
  int ldh = 0;
  // linear epilogue: out [M, ldo], the first N columns
  float* out = nullptr;
  int ldo = 0, N = 0;
  // The batch the kernel choice is made for (>= M). A generate() call keeps the choice of its
  // first batch while finished streams leave it: the warp-per-unit and the tiled kernels sum in
  // different orders, and a stream's numbers must not depend on when others finish.
  int plan_rows = 0;
};

// The kernel bodies below are __host__ __device__ pieces between barriers: the kernels run them
// per thread with __syncthreads() in between, and emulate_linear() runs the same pieces for every
// thread of every block on the host, so tests without a GPU check the kernels' index arithmetic
// against the CPU engine (see emulate_logits()).
#if defined(__CUDA_ARCH__)
#define MUSGEN_LDG(ptr) __ldg(ptr)
#else
#define MUSGEN_LDG(ptr) (*(ptr))
#endif

MUSGEN_HD float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }

template <bool LSTM>
MUSGEN_HD void epilogue(const LinearArgs& a, int m, int p, const float z[4]) {
  float v[4];
  if (a.table != nullptr) {
    const float* row = a.table + static_cast<size_t>(a.tok[static_cast<size_t>(m) * a.tok_stride]) *
                                     (4 * static_cast<size_t>(a.np)) + 4 * p;
    for (int g = 0; g < 4; ++g) v[g] = z[g] + row[g];
  } else {
    for (int g = 0; g < 4; ++g) v[g] = z[g] + a.bias[4 * p + g];
  }
  if (LSTM) {
    const float ig = sigmoid_f(v[0]), fg = sigmoid_f(v[1]), gg = tanhf(v[2]), og = sigmoid_f(v[3]);
    float* cp = a.c + static_cast<size_t>(m) * a.ldc + p;
    const float cn = fg * *cp + ig * gg;
    *cp = cn;
    a.h[static_cast<size_t>(m) * a.ldh + p] = og * tanhf(cn);
  } else {
    for (int g = 0; g < 4; ++g) {
      const int n = 4 * p + g;
      if (n < a.N) a.out[static_cast<size_t>(m) * a.ldo + n] = v[g];
    }
  }
}

// Small batches: one warp per unit (4 columns), R rows per block; lanes stride over k, so each
// warp reads its panel as 512 contiguous bytes per iteration. Weights stay L2-resident across
// steps for typical model sizes, so batch-1 latency is set by L2 bandwidth, not launches.
constexpr int kMatvecWarps = 8;
constexpr int kMatvecRows = 4;

// One lane's partial sums for unit p, rows m0 .. m0 + rows - 1 (before the warp reduction).
MUSGEN_HD void matvec_partial(const LinearArgs& a, int p, int m0, int rows, int lane,
                              float acc[kMatvecRows][4]) {
  const int K = a.K1 + a.K2;
  const float4* W = reinterpret_cast<const float4*>(a.P) + static_cast<size_t>(p) * K;
  for (int r = 0; r < kMatvecRows; ++r)
    for (int g = 0; g < 4; ++g) acc[r][g] = 0.0f;
#pragma unroll 4
  for (int k = lane; k < a.K1; k += 32) {
    const float4 w = MUSGEN_LDG(W + k);
#pragma unroll
    for (int r = 0; r < kMatvecRows; ++r)
      if (r < rows) {
        const float x = MUSGEN_LDG(a.x1 + static_cast<size_t>(m0 + r) * a.ld1 + k);
        acc[r][0] += x * w.x;
        acc[r][1] += x * w.y;
        acc[r][2] += x * w.z;
        acc[r][3] += x * w.w;
      }
  }
#pragma unroll 4
  for (int k = lane; k < a.K2; k += 32) {
    const float4 w = MUSGEN_LDG(W + a.K1 + k);
#pragma unroll
    for (int r = 0; r < kMatvecRows; ++r)
      if (r < rows) {
        // The read-only cache is safe: this kernel writes h only into the other parity buffer.
        const float x = MUSGEN_LDG(a.x2 + static_cast<size_t>(m0 + r) * a.ld2 + k);
        acc[r][0] += x * w.x;
        acc[r][1] += x * w.y;
        acc[r][2] += x * w.z;
        acc[r][3] += x * w.w;
      }
  }
}

template <bool LSTM>
__global__ void __launch_bounds__(32 * kMatvecWarps) matvec_kernel(LinearArgs a) {
  const int lane = threadIdx.x & 31;
  const int p = blockIdx.x * kMatvecWarps + (threadIdx.x >> 5);
  if (p >= a.np) return;  // whole warps leave together
  const int m0 = blockIdx.y * kMatvecRows;
  const int rows = min(kMatvecRows, a.M - m0);
  float acc[kMatvecRows][4];
  matvec_partial(a, p, m0, rows, lane, acc);
#pragma unroll
  for (int r = 0; r < kMatvecRows; ++r)
#pragma unroll
    for (int g = 0; g < 4; ++g)
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) acc[r][g] += __shfl_xor_sync(0xffffffffu, acc[r][g], off);
  if (lane < rows) {
    // Lane r writes row r (registers are indexed statically, hence the unrolled select).
    float z[4];
#pragma unroll
    for (int r = 0; r < kMatvecRows; ++r)
      if (r == lane)
        for (int g = 0; g < 4; ++g) z[g] = acc[r][g];
    epilogue<LSTM>(a, m0 + lane, p, z);
  }
}

// Large batches: a shared-memory tiled SGEMM, (16 TM) rows x 16 units (64 columns) per block,
// k tiles of 16, 256 threads with a TM x 4 register tile each: thread (ty, tx) owns rows
// TM ty .. TM ty + TM - 1 and unit p0 + tx (its 4 gates), so the epilogue has everything for the
// cell update. TM = 8 for big batches (more FMAs per shared-memory load), 4 for mid-size ones
// (less padding waste).
constexpr int kTU = 16, kTK = 16, kGemmThreads = 256;

template <int TM>
struct __align__(16) GemmTiles {
  float As[kTK][16 * TM + 4];  // A tile, k-major, so a thread's TM rows are one float4 run
  float Bs[kTK][4 * kTU + 4];  // 16 units x 4 gates
};

// Thread tid's share of loading the tiles at k0.
template <int TM>
MUSGEN_HD void gemm_load(const LinearArgs& a, int tid, int m0, int p0, int k0, GemmTiles<TM>& t) {
  const int K = a.K1 + a.K2;
#pragma unroll
  for (int i = 0; i < TM; ++i) {  // 16 TM x kTK = 256 TM floats of A
    const int idx = tid + kGemmThreads * i, mm = idx / kTK, kk = idx % kTK;
    const int m = m0 + mm, k = k0 + kk;
    float v = 0.0f;
    if (m < a.M && k < K)
      v = k < a.K1 ? a.x1[static_cast<size_t>(m) * a.ld1 + k]
                   : a.x2[static_cast<size_t>(m) * a.ld2 + (k - a.K1)];
    t.As[kk][mm] = v;
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {  // kTK x 64 = 1024 floats of the panels
    const int idx = tid + kGemmThreads * i, pp = idx / (4 * kTK), rem = idx % (4 * kTK);
    const int kk = rem / 4, g = rem % 4, p = p0 + pp, k = k0 + kk;
    t.Bs[kk][4 * pp + g] =
        (p < a.np && k < K) ? MUSGEN_LDG(a.P + (static_cast<size_t>(p) * K + k) * 4 + g) : 0.0f;
  }
}

// Thread tid's FMAs over one k tile.
template <int TM>
MUSGEN_HD void gemm_compute(int tid, const GemmTiles<TM>& t, float acc[TM][4]) {
  const int tx = tid % kTU, ty = tid / kTU;
#pragma unroll
  for (int kk = 0; kk < kTK; ++kk) {
    float ar[TM];
#pragma unroll
    for (int i = 0; i < TM; i += 4) {
      const float4 av = *reinterpret_cast<const float4*>(&t.As[kk][TM * ty + i]);
      ar[i] = av.x;
      ar[i + 1] = av.y;
      ar[i + 2] = av.z;
      ar[i + 3] = av.w;
    }
    const float4 bv = *reinterpret_cast<const float4*>(&t.Bs[kk][4 * tx]);
    const float br[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] += ar[i] * br[j];
  }
}

template <bool LSTM, int TM>
MUSGEN_HD void gemm_finish(const LinearArgs& a, int tid, int m0, int p0, float acc[TM][4]) {
  const int tx = tid % kTU, ty = tid / kTU, p = p0 + tx;
  if (p >= a.np) return;
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + TM * ty + i;
    if (m < a.M) epilogue<LSTM>(a, m, p, acc[i]);
  }
}

template <bool LSTM, int TM>
__global__ void __launch_bounds__(kGemmThreads) gemm_kernel(LinearArgs a) {
  __shared__ GemmTiles<TM> tiles;
  const int tid = threadIdx.x;
  const int m0 = blockIdx.y * 16 * TM, p0 = blockIdx.x * kTU;
  const int K = a.K1 + a.K2;
  float acc[TM][4];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  for (int k0 = 0; k0 < K; k0 += kTK) {
    gemm_load<TM>(a, tid, m0, p0, k0, tiles);
    __syncthreads();
    gemm_compute<TM>(tid, tiles, acc);
    __syncthreads();
  }
  gemm_finish<LSTM, TM>(a, tid, m0, p0, acc);
}

// Below this batch the warp-per-unit kernel wins (a 64-row tile would be mostly empty).
constexpr int kGemmMinRows = 16;
// From this batch on, 128-row tiles (TM = 8) still leave enough blocks to fill the GPU.
constexpr int kGemmBigRows = 1024;

// Which kernel a batch of M rows uses: 0 = matvec, else the GEMM's TM (TM = 4 and 8 sum every
// output in the same order, so only the matvec / GEMM choice changes the numbers).
int linear_plan(int M) { return M < kGemmMinRows ? 0 : M < kGemmBigRows ? 4 : 8; }
int linear_plan(const LinearArgs& a) {
  const int plan = linear_plan(a.M);
  return plan == 0 && a.plan_rows >= kGemmMinRows ? 4 : plan;
}

template <bool LSTM>
void launch_linear(const LinearArgs& a, cudaStream_t s) {
  if (a.M <= 0) return;
  const int plan = linear_plan(a);
  if (plan == 0) {
    dim3 grid((a.np + kMatvecWarps - 1) / kMatvecWarps, (a.M + kMatvecRows - 1) / kMatvecRows);
    matvec_kernel<LSTM><<<grid, 32 * kMatvecWarps, 0, s>>>(a);
  } else if (plan == 4) {
    dim3 grid((a.np + kTU - 1) / kTU, (a.M + 63) / 64);
    gemm_kernel<LSTM, 4><<<grid, kGemmThreads, 0, s>>>(a);
  } else {
    dim3 grid((a.np + kTU - 1) / kTU, (a.M + 127) / 128);
    gemm_kernel<LSTM, 8><<<grid, kGemmThreads, 0, s>>>(a);
  }
  check(cudaGetLastError(), "kernel launch");
}

// Host emulation of launch_linear: every block and thread of the chosen kernel, in phases
// separated where the kernel has barriers; the warp reduction as the same xor butterfly.
template <bool LSTM, int TM>
void emulate_gemm(const LinearArgs& a) {
  const int K = a.K1 + a.K2;
  auto tiles = std::make_unique<GemmTiles<TM>>();
  std::vector<float> acc(static_cast<size_t>(kGemmThreads) * TM * 4);
  auto acc_of = [&](int tid) { return reinterpret_cast<float(*)[4]>(acc.data() + tid * TM * 4); };
  for (int by = 0; by < (a.M + 16 * TM - 1) / (16 * TM); ++by)
    for (int bx = 0; bx < (a.np + kTU - 1) / kTU; ++bx) {
      const int m0 = by * 16 * TM, p0 = bx * kTU;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int k0 = 0; k0 < K; k0 += kTK) {
        for (int tid = 0; tid < kGemmThreads; ++tid) gemm_load<TM>(a, tid, m0, p0, k0, *tiles);
        for (int tid = 0; tid < kGemmThreads; ++tid) gemm_compute<TM>(tid, *tiles, acc_of(tid));
      }
      for (int tid = 0; tid < kGemmThreads; ++tid) gemm_finish<LSTM, TM>(a, tid, m0, p0, acc_of(tid));
    }
}

template <bool LSTM>
void emulate_linear(const LinearArgs& a) {
  if (a.M <= 0) return;
  const int plan = linear_plan(a);
  if (plan == 4) return emulate_gemm<LSTM, 4>(a);
  if (plan == 8) return emulate_gemm<LSTM, 8>(a);
  std::vector<float> lanes(32 * kMatvecRows * 4), tmp(lanes.size());
  for (int p = 0; p < a.np; ++p)
    for (int m0 = 0; m0 < a.M; m0 += kMatvecRows) {
      const int rows = std::min(kMatvecRows, a.M - m0);
      for (int lane = 0; lane < 32; ++lane)
        matvec_partial(a, p, m0, rows, lane,
                       reinterpret_cast<float(*)[4]>(lanes.data() + lane * kMatvecRows * 4));
      for (int off = 16; off > 0; off >>= 1) {  // __shfl_xor_sync butterfly
        for (int lane = 0; lane < 32; ++lane)
          for (int i = 0; i < kMatvecRows * 4; ++i)
            tmp[lane * kMatvecRows * 4 + i] =
                lanes[lane * kMatvecRows * 4 + i] + lanes[(lane ^ off) * kMatvecRows * 4 + i];
        lanes.swap(tmp);
      }
      for (int lane = 0; lane < rows; ++lane)
        epilogue<LSTM>(a, m0 + lane, p, lanes.data() + lane * kMatvecRows * 4 + lane * 4);
    }
}

// ------------------------------------------------------------------------------------------
// Sampling: one block per stream slot. Slots hold the streams still running: when streams
// finish, the host gathers the running ones to the front (gather_rows) and steps fewer rows.

struct SampleArgs {
  int n = 0, V = 0;               // slots in this batch, vocabulary
  const float* logits = nullptr;  // [n, ldl]
  int ldl = 0;
  const std::int32_t* table = nullptr;  // [n_states, V]
  const std::uint8_t* can_end = nullptr;
  std::int32_t eos = -1;
  const std::int32_t* clock_steps = nullptr;
  const std::uint8_t* is_note = nullptr;
  int length_kind = 0;
  long long length = 0, cap = 0;
  // per stream (indexed by the stream's id sid[slot])
  const std::uint64_t* seeds = nullptr;
  const float* temperature = nullptr;
  const std::int32_t* top_k = nullptr;
  const float* top_p = nullptr;
  // per slot
  const std::int32_t* sid = nullptr;  // the stream in each slot
  std::int32_t* state = nullptr;
  long long* count = nullptr;
  long long* len = nullptr;
  std::uint8_t* done = nullptr;       // rules::Reason, 0 while running
  std::int32_t* next_tok = nullptr;
  rules::State* rstate = nullptr;     // with rules
  std::int32_t* out = nullptr;        // [n, kChunk]: the tokens of the current chunk, -1: none
  int* error = nullptr;  // [3]: slot, state, step of the first "no token allowed" (-1: none)
  // the generation rules (device copies of the tables; rules.on = 0: off)
  rules::Tables tables;
  rules::Settings rules;
  // scratch when the vocabulary does not fit shared memory: [n, V] each
  double* g_w = nullptr;
  int* g_i = nullptr;
};

// Slot s took token v at position k of the chunk: store it, advance the grammar state, the
// rules and the length budget, and mark why the stream stops (EOS, the cap, the budget or the
// rules' ending), exactly as the CPU loop (sampling.hpp, Stream::advance).
MUSGEN_HD void record_token(const SampleArgs& a, int s, int k, std::int32_t v) {
  const long long L = a.len[s] + 1;
  a.out[static_cast<size_t>(s) * CudaLstmEngine::kChunk + k] = v;
  a.len[s] = L;
  const std::int32_t ns = a.table[static_cast<size_t>(a.state[s]) * a.V + v];
  a.state[s] = ns;
  a.next_tok[s] = v;
  int reason = rules::kRunning;
  if (a.rules.on) {
    rules::record(a.rstate[s], a.tables, a.rules, v, true);
    reason = rules::stop_reason(a.rstate[s], a.rules, v, a.eos, L, a.cap, a.can_end[ns] != 0);
  } else {
    long long c = a.count[s];
    if (a.length_kind == 0) c += 1;
    else if (a.length_kind == 1) c += a.is_note[v] ? 1 : 0;
    else c += a.clock_steps[v];
    a.count[s] = c;
    if (v == a.eos) reason = c >= a.length ? rules::kEosAfter : rules::kEosEarly;
    else if (c >= a.length && a.can_end[ns]) reason = rules::kBudget;
    else if (L >= a.cap) reason = rules::kCut;
  }
  a.done[s] = static_cast<std::uint8_t>(reason);
}

// The allowed tokens and the logits one sampling decision sees: the grammar (and the rules'
// verdict and bias when they are on).
struct TokenView {
  const std::int32_t* row;
  const float* lg;
  bool ce;
  std::int32_t eos;
  const SampleArgs* a;
  const rules::State* rs;  // null without rules
  rules::View w;
  MUSGEN_HD bool ok(int v) const {
    if (rs == nullptr) return rule::allowed(row, v, ce, eos);
    return row[v] >= 0 && rules::allows(w, *rs, a->tables, a->rules, row[v], ce, eos, v);
  }
  MUSGEN_HD float logit(int v) const {
    if (rs == nullptr || (a->rules.bias == nullptr && a->rules.density_milli == 0)) return lg[v];
    return lg[v] + rules::token_bias(w, *rs, a->tables, a->rules, v);
  }
};

constexpr int kSampleThreads = 128;

struct Status {
  long long active;
  long long generated;
  int error_slot;
  int error_state;
  int error_step;
};

// Block-wide exclusive scan of 0/1 flags (ordered by thread id); returns the prefix and sets
// *total. Deterministic: warp ballots and a fixed-order scan of the warp totals.
__device__ int block_flag_scan(bool flag, int* warp_sums, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  const unsigned mask = __ballot_sync(0xffffffffu, flag);
  const int in_warp = __popc(mask & ((1u << lane) - 1u));
  if (lane == 0) warp_sums[warp] = __popc(mask);
  __syncthreads();
  int before = 0, all = 0;
  for (int w = 0; w < nw; ++w) {
    if (w < warp) before += warp_sums[w];
    all += warp_sums[w];
  }
  __syncthreads();
  *total = all;
  return before + in_warp;
}

// The greedy pick of slot s: the allowed token with the largest logit, lowest id on ties.
__device__ int greedy_pick(const TokenView& tv, int V, float* red_f, int* red_i) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
  float best = 0.0f;
  int bi = -1;
  for (int v = tid; v < V; v += blockDim.x)
    if (tv.ok(v)) {
      const float x = tv.logit(v);
      if (rule::greedy_better(x, v, best, bi)) {
        best = x;
        bi = v;
      }
    }
  for (int off = 16; off > 0; off >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, off);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, off);
    if (oi >= 0 && rule::greedy_better(ob, oi, best, bi)) {
      best = ob;
      bi = oi;
    }
  }
  if (lane == 0) {
    red_f[warp] = best;
    red_i[warp] = bi;
  }
  __syncthreads();
  float b = 0.0f;
  int id = -1;
  for (int w = 0; w < nw; ++w)
    if (red_i[w] >= 0 && rule::greedy_better(red_f[w], red_i[w], b, id)) {
      b = red_f[w];
      id = red_i[w];
    }
  __syncthreads();
  return id;
}

// Sampling position k of the chunk for every running slot (one block per slot).
__global__ void __launch_bounds__(kSampleThreads) sample_kernel(SampleArgs a, int use_shared,
                                                                int k) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int warp_sums[kSampleThreads / 32];
  __shared__ double red_d[kSampleThreads / 32];
  __shared__ float red_f[kSampleThreads / 32];
  __shared__ int red_i[kSampleThreads / 32];
  __shared__ int s_pick, s_limit;
  __shared__ rules::View s_view;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
  const int V = a.V;
  for (int s = blockIdx.x; s < a.n; s += gridDim.x) {
    if (tid == 0) a.out[static_cast<size_t>(s) * CudaLstmEngine::kChunk + k] = -1;
    if (a.done[s]) continue;  // block-uniform
    const int sid = a.sid[s];
    double* wk = use_shared ? reinterpret_cast<double*>(smem) : a.g_w + static_cast<size_t>(s) * V;
    int* ids = use_shared ? reinterpret_cast<int*>(smem + sizeof(double) * V)
                          : a.g_i + static_cast<size_t>(s) * V * 3;
    // ids, rank and order: three int arrays of V in the same scratch (sized so by the host).
    int* rank = ids + V;
    int* order = rank + V;
    const std::int32_t st = a.state[s];
    TokenView tv;
    tv.row = a.table + static_cast<size_t>(st) * V;
    tv.ce = a.can_end[st] != 0;
    tv.lg = a.logits + static_cast<size_t>(s) * a.ldl;
    tv.eos = a.eos;
    tv.a = &a;
    tv.rs = a.rules.on ? a.rstate + s : nullptr;
    if (a.rules.on) {
      if (tid == 0) {
        s_view = rules::view(a.rstate[s], a.tables, a.rules);
        rules::settle_view(s_view, a.rstate[s], a.tables, a.rules, tv.row, tv.ce, a.eos);
      }
      __syncthreads();
      tv.w = s_view;
    }
    const float temp = a.temperature[sid];
    if (tid == 0) s_pick = -1;
    if (temp == 0.0f) {
      const int id = greedy_pick(tv, V, red_f, red_i);
      if (tid == 0) s_pick = id;
      __syncthreads();
    } else {
      const double T = static_cast<double>(temp);
      // 1. the allowed ids, compacted in ascending order, and the max of x over them
      int nk = 0;
      double mx = -INFINITY;
      for (int base = 0; base < V; base += blockDim.x) {
        const int v = base + tid;
        const bool ok = v < V && tv.ok(v);
        int tile = 0;
        const int pos = block_flag_scan(ok, warp_sums, &tile);
        if (ok) {
          ids[nk + pos] = v;
          mx = fmax(mx, rule::scaled(tv.logit(v), T));
        }
        nk += tile;
      }
      for (int off = 16; off > 0; off >>= 1) mx = fmax(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      if (lane == 0) red_d[warp] = mx;
      __syncthreads();
      mx = red_d[0];
      for (int w = 1; w < nw; ++w) mx = fmax(mx, red_d[w]);
      if (nk > 0) {
        // 2. weights (max is order-independent, so this equals the sequential max)
        for (int i = tid; i < nk; i += blockDim.x) wk[i] = rule::weight(tv.logit(ids[i]), T, mx);
        __syncthreads();
        const int kk = a.top_k[sid];
        const float p = a.top_p[sid];
        const bool use_k = kk > 0 && kk < nk;
        const bool use_p = p > 0.0f && p < 1.0f;
        const int n_keep = use_k ? kk : nk;
        if (use_k || use_p) {
          // 3. rank of each kept token in (w desc, id asc) order: a counting sort, exact and
          // deterministic; O(nk^2 / threads), cheap for grammar-masked vocabularies.
          for (int i = tid; i < nk; i += blockDim.x) {
            const double wi = wk[i];
            int r = 0;
            for (int j = 0; j < nk; ++j) r += rule::ranks_before(wk[j], j, wi, i) ? 1 : 0;
            rank[i] = r;
            order[r] = i;
          }
          __syncthreads();
          if (tid == 0) s_limit = use_p ? rule::top_p_keep(wk, rank, order, nk, n_keep, p) : n_keep;
          __syncthreads();
        }
        // 4. the draw: float64 sums in id order, by one thread, exactly as the CPU loop.
        if (tid == 0) {
          const double u = rule::philox_uniform(a.seeds[sid], static_cast<std::uint32_t>(a.len[s]),
                                                static_cast<std::uint32_t>(sid));
          const int i = rule::pick(wk, (use_k || use_p) ? rank : nullptr, nk,
                                   (use_k || use_p) ? s_limit : nk, u);
          s_pick = ids[i];
        }
      }
      __syncthreads();
    }
    if (tid == 0) {
      const int v = s_pick;
      if (v < 0) {
        if (atomicCAS(&a.error[0], -1, s) == -1) {
          a.error[1] = st;
          a.error[2] = static_cast<int>(a.len[s]);
        }
        a.done[s] = rules::kCut;
      } else {
        record_token(a, s, k, v);
      }
    }
    __syncthreads();  // the scratch, s_pick and s_view are reused by the next slot of this block
  }
}

__global__ void status_kernel(const std::uint8_t* done, int n, const int* error, Status* out) {
  __shared__ long long sa[256];
  long long act = 0;
  for (int s = threadIdx.x; s < n; s += blockDim.x) act += done[s] ? 0 : 1;
  sa[threadIdx.x] = act;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) sa[threadIdx.x] += sa[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    out->active = sa[0];
    out->generated = 0;
    out->error_slot = error[0];
    out->error_state = error[1];
    out->error_step = error[2];
  }
}

// Row i of dst = row perm[i] of src, for rows of `row_bytes` bytes (perm: [rows]).
MUSGEN_HD void gather_row(const unsigned char* src, unsigned char* dst, const int* perm, int i,
                          size_t row_bytes, size_t b) {
  dst[static_cast<size_t>(i) * row_bytes + b] = src[static_cast<size_t>(perm[i]) * row_bytes + b];
}

__global__ void gather_kernel(const unsigned char* src, unsigned char* dst, const int* perm,
                              int rows, size_t row_bytes) {
  const size_t total = static_cast<size_t>(rows) * row_bytes;
  for (size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<size_t>(gridDim.x) * blockDim.x)
    gather_row(src, dst, perm, static_cast<int>(idx / row_bytes), row_bytes, idx % row_bytes);
}

std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

const engine::TensorView& need(const std::map<std::string, engine::TensorView>& w,
                               const std::string& name, std::vector<std::int64_t> shape) {
  auto it = w.find(name);
  if (it == w.end())
    throw ModelFormatError("CudaLstmEngine: tensor '" + name + "' is missing (expected shape " +
                           shape_str(shape) + ")");
  if (it->second.shape != shape)
    throw ModelFormatError("CudaLstmEngine: tensor '" + name + "' has shape " +
                           shape_str(it->second.shape) + ", expected " + shape_str(shape));
  if (it->second.data == nullptr && !shape.empty())
    throw ModelFormatError("CudaLstmEngine: tensor '" + name + "' has no data");
  return it->second;
}

// The packed weights, on the host (see the layout notes at the top of this file).
struct Packed {
  int vocab = 0, emb = 0, head_np = 0;
  std::vector<int> units;
  std::vector<float> token_table;  // [vocab, 4 u0]: embedding @ W0 + b0, interleaved columns
  std::vector<std::vector<float>> panels;  // per layer: [u][K][4] (K = in + u; layer 0: u0)
  std::vector<std::vector<float>> biases;  // per layer: [4u] interleaved (layer 0 unused)
  std::vector<float> head_panels, head_bias;  // [ceil(V/4)][u_last][4], [4 ceil(V/4)]
};

Packed pack_weights(const std::string& kind, const std::vector<int>& units,
                    const std::map<std::string, engine::TensorView>& weights) {
  if (kind != "lstm_lm")
    throw BackendUnavailable("the CUDA engine runs models of kind lstm_lm; a '" + kind +
                             "' model runs on backend 'cpp' or 'python'");
  if (units.empty()) throw ModelFormatError("CudaLstmEngine: lstm_units is empty");
  for (int u : units)
    if (u <= 0) throw ModelFormatError("CudaLstmEngine: lstm_units must be positive");
  auto e = weights.find("embedding/embeddings");
  if (e == weights.end() || e->second.shape.size() != 2)
    throw ModelFormatError("CudaLstmEngine: tensor 'embedding/embeddings' is missing or not 2-D");
  Packed W;
  W.vocab = static_cast<int>(e->second.shape[0]);
  W.emb = static_cast<int>(e->second.shape[1]);
  W.units = units;
  const engine::TensorView& E = need(weights, "embedding/embeddings", {W.vocab, W.emb});
  int in = W.emb;
  for (size_t l = 0; l < units.size(); ++l) {
    const std::string pre = "lstm_" + std::to_string(l) + "/";
    const int u = units[l];
    const engine::TensorView& Wk = need(weights, pre + "kernel", {in, 4L * u});
    const engine::TensorView& U = need(weights, pre + "recurrent_kernel", {u, 4L * u});
    const engine::TensorView& b = need(weights, pre + "bias", {4L * u});
    const int in_rows = l == 0 ? 0 : in;  // layer 0's input part is the token table
    const int K = in_rows + u;
    std::vector<float> P(static_cast<size_t>(u) * K * 4), bias(4 * static_cast<size_t>(u));
    for (int j = 0; j < u; ++j)
      for (int g = 0; g < 4; ++g) {
        const size_t kc = static_cast<size_t>(g) * u + j;  // Keras column (gates i, f, c, o)
        for (int r = 0; r < in_rows; ++r)
          P[(static_cast<size_t>(j) * K + r) * 4 + g] = Wk.data[static_cast<size_t>(r) * 4 * u + kc];
        for (int r = 0; r < u; ++r)
          P[(static_cast<size_t>(j) * K + in_rows + r) * 4 + g] =
              U.data[static_cast<size_t>(r) * 4 * u + kc];
        bias[4 * static_cast<size_t>(j) + g] = b.data[kc];
      }
    if (l == 0) {
      // Like the CPU engine: accumulate embedding @ W0 + b0 in double, once.
      W.token_table.assign(static_cast<size_t>(W.vocab) * 4 * u, 0.0f);
      std::vector<double> acc(4 * static_cast<size_t>(u));
      for (int v = 0; v < W.vocab; ++v) {
        for (size_t kc = 0; kc < acc.size(); ++kc) acc[kc] = b.data[kc];
        for (int r = 0; r < W.emb; ++r) {
          const double x = E.data[static_cast<size_t>(v) * W.emb + r];
          const float* wr = Wk.data + static_cast<size_t>(r) * 4 * u;
          for (size_t kc = 0; kc < acc.size(); ++kc) acc[kc] += x * wr[kc];
        }
        for (int j = 0; j < u; ++j)
          for (int g = 0; g < 4; ++g)
            W.token_table[static_cast<size_t>(v) * 4 * u + 4 * j + g] =
                static_cast<float>(acc[static_cast<size_t>(g) * u + j]);
      }
    }
    W.panels.push_back(std::move(P));
    W.biases.push_back(std::move(bias));
    in = u;
  }
  const int uL = units.back();
  const engine::TensorView& hk = need(weights, "head/kernel", {uL, W.vocab});
  const engine::TensorView& hb = need(weights, "head/bias", {W.vocab});
  W.head_np = (W.vocab + 3) / 4;
  W.head_panels.assign(static_cast<size_t>(W.head_np) * uL * 4, 0.0f);
  W.head_bias.assign(4 * static_cast<size_t>(W.head_np), 0.0f);
  for (int p = 0; p < W.head_np; ++p)
    for (int g = 0; g < 4; ++g) {
      const int n = 4 * p + g;
      if (n >= W.vocab) continue;
      for (int r = 0; r < uL; ++r)
        W.head_panels[(static_cast<size_t>(p) * uL + r) * 4 + g] =
            hk.data[static_cast<size_t>(r) * W.vocab + n];
      W.head_bias[n] = hb.data[n];
    }
  return W;
}

// Raw pointers to one copy of the packed weights (device, or host for the emulation).
struct WeightPtrs {
  int vocab = 0, head_np = 0;
  std::vector<int> units;
  const float* token_table = nullptr;
  std::vector<const float*> panels, biases;
  const float* head_panels = nullptr;
  const float* head_bias = nullptr;
  int ldl() const { return 4 * head_np; }
};

// Recurrent state of M streams: c and h (two parities) per layer, and the logits [M, ldl].
struct StatePtrs {
  int M = 0;
  int plan_rows = 0;  // the batch the layer kernels are chosen for (LinearArgs::plan_rows)
  std::vector<float*> c, h0, h1;
  float* logits = nullptr;
  float* h(size_t l, int parity) const { return parity ? h1[l] : h0[l]; }
};

// One step: tokens tok[m * stride] -> logits (out [M, ldo], or the state's buffer). The layer
// kernels go through `linear(args, is_lstm)`: the device launcher or the host emulation.
template <class Linear>
void lstm_step(const WeightPtrs& w, const StatePtrs& st, const std::int32_t* tok, int stride,
               int parity, float* out, int ldo, Linear&& linear) {
  const size_t L = w.units.size();
  for (size_t l = 0; l < L; ++l) {
    LinearArgs a;
    a.M = st.M;
    a.plan_rows = st.plan_rows;
    a.np = w.units[l];
    if (l == 0) {
      a.table = w.token_table;
      a.tok = tok;
      a.tok_stride = stride;
    } else {
      a.x1 = st.h(l - 1, parity ^ 1);
      a.ld1 = a.K1 = w.units[l - 1];
      a.bias = w.biases[l];
    }
    a.x2 = st.h(l, parity);
    a.ld2 = a.K2 = w.units[l];
    a.P = w.panels[l];
    a.c = st.c[l];
    a.ldc = w.units[l];
    a.h = st.h(l, parity ^ 1);
    a.ldh = w.units[l];
    linear(a, true);
  }
  LinearArgs a;
  a.M = st.M;
  a.plan_rows = st.plan_rows;
  a.np = w.head_np;
  a.x2 = st.h(L - 1, parity ^ 1);
  a.ld2 = a.K2 = w.units.back();
  a.P = w.head_panels;
  a.bias = w.head_bias;
  a.out = out ? out : st.logits;
  a.ldo = out ? ldo : w.ldl();
  a.N = out ? w.vocab : w.ldl();
  linear(a, false);
}

// The host side of a generate() call, shared by the device loop and its emulation: the checked
// request, every stream's start, the tokens collected from each chunk, why each stream
// stopped, and which slots go on when finished streams leave the batch.
class Loop {
 public:
  static constexpr int kChunk = CudaLstmEngine::kChunk;

  Loop(const engine::GenerateRequest& req, int V) : r(req), start(engine::prepare_request(req, V)) {
    if (r.n > (1 << 30)) throw std::invalid_argument("LstmEngine::generate: n too large");
    n = static_cast<int>(r.n);
    sid.resize(n);
    next0.resize(n);
    done0.resize(n);
    for (int s = 0; s < n; ++s) {
      sid[s] = s;
      next0[s] = r.primer[s * r.primer_len + r.primer_len - 1];
      done0[s] = static_cast<std::uint8_t>(start.reason[s]);
      if (r.out_reason != nullptr) r.out_reason[s] = start.reason[s];
    }
  }

  // The tokens of one chunk, chunk[slot * kChunk + k] (-1: no token), to their streams.
  long long take_chunk(const std::int32_t* chunk, int M) {
    long long got = 0;
    for (int m = 0; m < M; ++m)
      for (int k = 0; k < kChunk; ++k) {
        const std::int32_t v = chunk[static_cast<size_t>(m) * kChunk + k];
        if (v < 0) continue;
        r.out_tokens[sid[m]].push_back(v);
        ++got;
      }
    return got;
  }

  // The reasons of the finished slots (done[m] != 0) are recorded; returns the slots that go
  // on, in order (the gather permutation), and makes them the new batch.
  std::vector<int> survivors(const std::uint8_t* done, int M) {
    std::vector<int> perm;
    std::vector<std::int32_t> kept;
    for (int m = 0; m < M; ++m) {
      if (done[m] && r.out_reason != nullptr)
        r.out_reason[sid[m]] = static_cast<std::int8_t>(done[m]);
      if (!done[m]) {
        perm.push_back(m);
        kept.push_back(sid[m]);
      }
    }
    sid = std::move(kept);
    return perm;
  }

  // Gathering costs a synchronization and a new graph: worth it once a quarter of the batch
  // (or 256 rows) has finished.
  static bool worth_compacting(long long active, int M) {
    return active < M && ((M - active) * 4 >= M || M - active >= 256);
  }

  [[noreturn]] void no_token(int slot, int state, int step) const {
    throw CodecError("LstmEngine::generate: grammar state " + std::to_string(state) +
                     " allows no token (stream " + std::to_string(sid[slot]) + ", step " +
                     std::to_string(step) + ")");
  }

  const engine::GenerateRequest& r;
  engine::Prepared start;
  int n = 0;
  std::vector<std::int32_t> sid;    // the stream in each slot of the current batch
  std::vector<std::int32_t> next0;  // per stream: the last primer token (the first input)
  std::vector<std::uint8_t> done0;  // per stream: why it has nothing to generate (0: it has)
};

// The sampling arguments every slot shares (grammar, budget, per-stream settings, rules), for
// arrays at the given addresses (device or host).
SampleArgs shared_args(const engine::GenerateRequest& r, const rules::Settings& rules, int V,
                       const std::int32_t* table, const std::uint8_t* can_end,
                       const std::int32_t* clock, const std::uint8_t* notes) {
  SampleArgs a;
  a.V = V;
  a.table = table;
  a.can_end = can_end;
  a.eos = r.eos_id;
  a.clock_steps = clock;
  a.is_note = notes;
  a.length_kind = r.length_kind;
  a.length = r.length;
  a.cap = r.max_tokens;
  a.tables = r.tables;
  a.rules = rules;
  return a;
}

}  // namespace

struct CudaLstmEngine::Impl {
  std::string device;
  WeightPtrs w;  // into the device arrays below
  DeviceArray<float> token_table, head_panels, head_bias;
  std::vector<DeviceArray<float>> panels, biases;
  int vocab() const { return w.vocab; }

  // Per-call device state.
  struct State {
    std::vector<DeviceArray<float>> c, h0, h1;
    DeviceArray<float> logits;
    StatePtrs ptrs;
  };

  void make_state(State& st, int M, cudaStream_t s) const {
    const size_t L = w.units.size();
    st.c.resize(L);
    st.h0.resize(L);
    st.h1.resize(L);
    st.ptrs.M = M;
    for (size_t l = 0; l < L; ++l) {
      const size_t sz = static_cast<size_t>(M) * w.units[l];
      for (auto* arr : {&st.c[l], &st.h0[l], &st.h1[l]}) {
        arr->resize(sz);
        check(cudaMemsetAsync(arr->get(), 0, sz * sizeof(float), s), "cudaMemset");
      }
      st.ptrs.c.push_back(st.c[l].get());
      st.ptrs.h0.push_back(st.h0[l].get());
      st.ptrs.h1.push_back(st.h1[l].get());
    }
    st.logits.resize(static_cast<size_t>(M) * w.ldl());
    st.ptrs.logits = st.logits.get();
  }

  void step(const State& st, const std::int32_t* tok, int stride, int parity, cudaStream_t s,
            float* out = nullptr, int ldo = 0) const {
    lstm_step(w, st.ptrs, tok, stride, parity, out, ldo, [s](const LinearArgs& a, bool lstm) {
      if (lstm) launch_linear<true>(a, s);
      else launch_linear<false>(a, s);
    });
  }

  int ldl() const { return w.ldl(); }
};

CudaLstmEngine::CudaLstmEngine(const std::string& kind, const std::vector<int>& units,
                               const std::map<std::string, engine::TensorView>& weights)
    : impl_(new Impl) {
  try {
    Impl& I = *impl_;
    Packed P = pack_weights(kind, units, weights);
    const auto [ok, why] = runtime_status();
    if (!ok) throw BackendUnavailable("the CUDA backend is not available: " + why);
    check(cudaSetDevice(0), "cudaSetDevice");
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    I.device = prop.name;
    I.token_table = to_device(P.token_table);
    I.head_panels = to_device(P.head_panels);
    I.head_bias = to_device(P.head_bias);
    for (size_t l = 0; l < units.size(); ++l) {
      I.panels.push_back(to_device(P.panels[l]));
      I.biases.push_back(to_device(P.biases[l]));
    }
    I.w.vocab = P.vocab;
    I.w.head_np = P.head_np;
    I.w.units = P.units;
    I.w.token_table = I.token_table.get();
    I.w.head_panels = I.head_panels.get();
    I.w.head_bias = I.head_bias.get();
    for (size_t l = 0; l < units.size(); ++l) {
      I.w.panels.push_back(I.panels[l].get());
      I.w.biases.push_back(I.biases[l].get());
    }
    check(cudaDeviceSynchronize(), "uploading the weights");
  } catch (...) {
    delete impl_;
    throw;
  }
}

CudaLstmEngine::~CudaLstmEngine() { delete impl_; }

int CudaLstmEngine::vocab_size() const { return impl_->vocab(); }
std::string CudaLstmEngine::device_name() const { return impl_->device; }

void CudaLstmEngine::logits(const std::int32_t* tokens, std::int64_t batch, std::int64_t steps,
                            float* out) const {
  const Impl& I = *impl_;
  const int V = I.vocab();
  for (std::int64_t i = 0; i < batch * steps; ++i)
    if (tokens[i] < 0 || tokens[i] >= V)
      throw std::invalid_argument("CudaLstmEngine::logits: token id " + std::to_string(tokens[i]) +
                                  " outside [0, " + std::to_string(V) + ")");
  if (batch <= 0 || steps <= 0) return;
  if (batch > (1 << 30) || steps > (1 << 30))
    throw std::invalid_argument("CudaLstmEngine::logits: batch or steps too large");
  check(cudaSetDevice(0), "cudaSetDevice");
  StreamGuard stream;
  Impl::State st;
  I.make_state(st, static_cast<int>(batch), stream.s);
  DeviceArray<std::int32_t> d_tok(static_cast<size_t>(batch * steps));
  d_tok.upload(tokens, d_tok.size(), stream.s);
  // Logits go straight into a [B, T, V] buffer: the head writes row b at (b * T + t) * V.
  DeviceArray<float> d_out(static_cast<size_t>(batch * steps) * V);
  for (std::int64_t t = 0; t < steps; ++t)
    I.step(st, d_tok.get() + t, static_cast<int>(steps), static_cast<int>(t & 1), stream.s,
           d_out.get() + t * V, static_cast<int>(steps) * V);
  check(cudaMemcpyAsync(out, d_out.get(), d_out.size() * sizeof(float), cudaMemcpyDeviceToHost,
                        stream.s),
        "copying logits");
  check(cudaStreamSynchronize(stream.s), "the logits kernels");
}

namespace {

// Device copies of what a generate() call reads: the grammar, the per-token tables, the
// per-stream settings and the rules' tables and static arrays.
struct DeviceRequest {
  DeviceArray<std::int32_t> table, clock, t_clock, t_duration, t_bar_steps;
  DeviceArray<std::uint8_t> can_end, notes, t_is_note, t_is_bar, allowed, needs_note, note_kinds;
  DeviceArray<std::int16_t> t_pitch, t_part, t_program;
  DeviceArray<float> bias, temp, topp;
  DeviceArray<std::uint64_t> seeds;
  DeviceArray<std::int32_t> topk;
  rules::Tables tables;    // with device pointers
  rules::Settings rules;   // with device pointers

  template <class T>
  static const T* up(DeviceArray<T>& d, const T* src, size_t n, cudaStream_t s) {
    if (src == nullptr || n == 0) return nullptr;
    d.resize(n);
    d.upload(src, n, s);
    return d.get();
  }

  DeviceRequest(const engine::GenerateRequest& r, const engine::Prepared& p, int V,
                cudaStream_t s) {
    const int n = static_cast<int>(r.n);
    up(table, r.table, static_cast<size_t>(r.n_states) * V, s);
    up(can_end, r.can_end, r.n_states, s);
    std::vector<std::int32_t> c(V, 0);
    std::vector<std::uint8_t> o(V, 0);
    if (r.clock_steps) std::memcpy(c.data(), r.clock_steps, sizeof(std::int32_t) * V);
    if (r.is_note) std::memcpy(o.data(), r.is_note, V);
    up(clock, c.data(), V, s);
    up(notes, o.data(), V, s);
    up(seeds, r.seeds, n, s);
    up(temp, r.temperature, n, s);
    up(topp, r.top_p, n, s);
    up(topk, r.top_k, n, s);
    rules = p.rules;
    tables = r.tables;
    if (!rules.on) return;
    tables.clock_steps = up(t_clock, r.tables.clock_steps, V, s);
    tables.is_note = up(t_is_note, r.tables.is_note, V, s);
    tables.pitch = up(t_pitch, r.tables.pitch, V, s);
    tables.duration = up(t_duration, r.tables.duration, V, s);
    tables.is_bar = up(t_is_bar, r.tables.is_bar, V, s);
    tables.bar_steps = up(t_bar_steps, r.tables.bar_steps, V, s);
    tables.part = up(t_part, r.tables.part, V, s);
    tables.program = up(t_program, r.tables.program, V, s);
    rules.allowed = up(allowed, p.rules.allowed, V, s);
    rules.bias = up(bias, p.rules.bias, V, s);
    rules.needs_note = up(needs_note, p.needs_note.data(), p.needs_note.size(), s);
    rules.note_kinds = up(note_kinds, p.note_kinds.data(), p.note_kinds.size(), s);
  }
};

// Per-slot device arrays (the batch of running streams), and their rows for gathering.
struct DeviceSlots {
  DeviceArray<std::int32_t> state, next, sid, chunk;
  DeviceArray<long long> count, len;
  DeviceArray<std::uint8_t> done;
  DeviceArray<rules::State> rstate;

  DeviceSlots(const Loop& L, cudaStream_t s) {
    const size_t n = L.n;
    state.resize(n);
    state.upload(L.start.state.data(), n, s);
    next.resize(n);
    next.upload(L.next0.data(), n, s);
    sid.resize(n);
    sid.upload(L.sid.data(), n, s);
    done.resize(n);
    done.upload(L.done0.data(), n, s);
    count.resize(n);
    len.resize(n);
    check(cudaMemsetAsync(count.get(), 0, n * sizeof(long long), s), "cudaMemset");
    check(cudaMemsetAsync(len.get(), 0, n * sizeof(long long), s), "cudaMemset");
    chunk.resize(n * CudaLstmEngine::kChunk);
    if (!L.start.rule_state.empty()) {
      rstate.resize(n);
      rstate.upload(L.start.rule_state.data(), n, s);
    }
  }

  // (address, bytes per row) of every array with one row per slot.
  template <class Model>
  std::vector<std::pair<void*, size_t>> rows(const Model& st, const std::vector<int>& units,
                                             int ldl) const {
    std::vector<std::pair<void*, size_t>> out = {
        {state.get(), 4}, {next.get(), 4}, {count.get(), 8}, {len.get(), 8}, {done.get(), 1}};
    if (rstate.get() != nullptr) out.push_back({rstate.get(), sizeof(rules::State)});
    for (size_t l = 0; l < units.size(); ++l)
      for (float* p : {st.c[l], st.h0[l], st.h1[l]}) out.push_back({p, units[l] * sizeof(float)});
    out.push_back({st.logits, ldl * sizeof(float)});
    return out;
  }
};

}  // namespace

void CudaLstmEngine::generate(const engine::GenerateRequest& r) const {
  const Impl& I = *impl_;
  const int V = I.vocab();
  Loop L(r, V);
  const int n = L.n;
  if (n == 0) return;
  check(cudaSetDevice(0), "cudaSetDevice");
  StreamGuard stream;
  cudaStream_t cs = stream.s;
  Impl::State st;
  I.make_state(st, n, cs);
  st.ptrs.plan_rows = n;
  DeviceRequest req(r, L.start, V, cs);
  DeviceSlots slots(L, cs);
  DeviceArray<int> d_error(3);
  check(cudaMemsetAsync(d_error.get(), 0xff, 3 * sizeof(int), cs), "cudaMemset");
  DeviceArray<Status> d_status(1);
  DeviceArray<std::int32_t> d_primer(static_cast<size_t>(n) * r.primer_len);
  d_primer.upload(r.primer, d_primer.size(), cs);

  // Sampling scratch: w (double) + ids, rank, order (int) per stream, in shared memory when the
  // vocabulary fits the default 48 KiB, else in global memory.
  const size_t scratch_bytes = static_cast<size_t>(V) * (sizeof(double) + 3 * sizeof(int));
  const bool use_shared = scratch_bytes <= 48 * 1024 - 1024;
  DeviceArray<double> g_w;
  DeviceArray<int> g_i;
  if (!use_shared) {
    g_w.resize(static_cast<size_t>(n) * V);
    g_i.resize(static_cast<size_t>(n) * V * 3);
  }
  SampleArgs sa = shared_args(r, req.rules, V, req.table.get(), req.can_end.get(),
                              req.clock.get(), req.notes.get());
  sa.tables = req.tables;
  sa.logits = st.ptrs.logits;
  sa.ldl = I.ldl();
  sa.seeds = req.seeds.get();
  sa.temperature = req.temp.get();
  sa.top_k = req.topk.get();
  sa.top_p = req.topp.get();
  sa.sid = slots.sid.get();
  sa.state = slots.state.get();
  sa.count = slots.count.get();
  sa.len = slots.len.get();
  sa.done = slots.done.get();
  sa.next_tok = slots.next.get();
  sa.rstate = slots.rstate.get();
  sa.out = slots.chunk.get();
  sa.error = d_error.get();
  sa.g_w = g_w.get();
  sa.g_i = g_i.get();
  int sms = 1;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "cudaDeviceGetAttribute");
  const size_t sample_smem = use_shared ? scratch_bytes : 0;

  // Warm the state on the primers (the last step leaves the first logits).
  int parity = 0;
  for (std::int64_t t = 0; t < r.primer_len; ++t, parity ^= 1)
    I.step(st, d_primer.get() + t, static_cast<int>(r.primer_len), parity, cs);

  // kChunk steps (an even number, so the parity pattern repeats) of M slots in one graph.
  GraphGuard graph;
  auto capture = [&](int M) {
    graph.reset();
    sa.n = M;
    st.ptrs.M = M;
    check(cudaStreamBeginCapture(cs, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    try {
      int p = parity;
      const int blocks = std::min(M, sms * 16);
      for (int k = 0; k < kChunk; ++k, p ^= 1) {
        sample_kernel<<<blocks, kSampleThreads, sample_smem, cs>>>(sa, use_shared ? 1 : 0, k);
        check(cudaGetLastError(), "sample kernel launch");
        I.step(st, slots.next.get(), 1, p, cs);
      }
      status_kernel<<<1, 256, 0, cs>>>(slots.done.get(), M, d_error.get(), d_status.get());
      check(cudaGetLastError(), "status kernel launch");
    } catch (...) {
      cudaGraph_t g = nullptr;
      cudaStreamEndCapture(cs, &g);
      if (g) cudaGraphDestroy(g);
      throw;
    }
    check(cudaStreamEndCapture(cs, &graph.g), "cudaStreamEndCapture");
    check(cudaGraphInstantiateWithFlags(&graph.exec, graph.g, 0), "cudaGraphInstantiate");
  };

  // Replay with one chunk of look-ahead: chunk i+1 is queued before chunk i is read back.
  PinnedGuard pinned(2 * sizeof(Status) +
                     2 * static_cast<size_t>(n) * kChunk * sizeof(std::int32_t));
  Status* hs = static_cast<Status*>(pinned.p);
  std::int32_t* htok = reinterpret_cast<std::int32_t*>(hs + 2);
  EventGuard ev[2];
  int M = n;
  auto launch = [&](int slot) {
    check(cudaGraphLaunch(graph.exec, cs), "cudaGraphLaunch");
    check(cudaMemcpyAsync(hs + slot, d_status.get(), sizeof(Status), cudaMemcpyDeviceToHost, cs),
          "status copy");
    check(cudaMemcpyAsync(htok + static_cast<size_t>(slot) * n * kChunk, slots.chunk.get(),
                          static_cast<size_t>(M) * kChunk * sizeof(std::int32_t),
                          cudaMemcpyDeviceToHost, cs),
          "token copy");
    check(cudaEventRecord(ev[slot].e, cs), "cudaEventRecord");
    if (r.rows_stepped != nullptr)
      r.rows_stepped->fetch_add(static_cast<long long>(M) * kChunk, std::memory_order_relaxed);
  };
  auto read = [&](int slot) {
    const Status now = hs[slot];
    if (now.error_slot >= 0) {
      cudaStreamSynchronize(cs);  // let the queued chunk finish before its buffers are freed
      L.no_token(now.error_slot, now.error_state, now.error_step);
    }
    const long long got = L.take_chunk(htok + static_cast<size_t>(slot) * n * kChunk, M);
    if (r.progress != nullptr) r.progress->fetch_add(got, std::memory_order_relaxed);
    return now.active;
  };
  std::vector<std::uint8_t> hdone(n);
  DeviceArray<int> d_perm(n);
  size_t widest = 0;
  for (const auto& row : slots.rows(st.ptrs, I.w.units, I.ldl()))
    widest = std::max(widest, row.second);
  DeviceArray<unsigned char> scratch(static_cast<size_t>(n) * widest);
  bool any = false;
  for (int s = 0; s < n; ++s) any |= L.done0[s] == 0;
  while (any) {
    capture(M);
    launch(0);
    long long active = M;
    for (long long i = 0;; ++i) {
      launch(static_cast<int>((i + 1) & 1));
      check(cudaEventSynchronize(ev[i & 1].e), "the generation kernels");
      active = read(static_cast<int>(i & 1));
      if (active == 0 || Loop::worth_compacting(active, M)) {
        check(cudaStreamSynchronize(cs), "the generation kernels");
        active = read(static_cast<int>((i + 1) & 1));
        break;
      }
    }
    // The running streams move to the front; the next graph steps only them.
    check(cudaMemcpyAsync(hdone.data(), slots.done.get(), M, cudaMemcpyDeviceToHost, cs),
          "copying flags");
    check(cudaStreamSynchronize(cs), "copying flags");
    const std::vector<int> perm = L.survivors(hdone.data(), M);
    any = !perm.empty();
    if (!any) break;
    d_perm.upload(perm.data(), perm.size(), cs);
    for (const auto& [ptr, row] : slots.rows(st.ptrs, I.w.units, I.ldl())) {
      const size_t bytes = perm.size() * row;
      const int blocks = static_cast<int>(std::min<size_t>((bytes + 255) / 256, 4096));
      gather_kernel<<<blocks, 256, 0, cs>>>(static_cast<unsigned char*>(ptr), scratch.get(),
                                            d_perm.get(), static_cast<int>(perm.size()), row);
      check(cudaGetLastError(), "gather kernel launch");
      check(cudaMemcpyAsync(ptr, scratch.get(), bytes, cudaMemcpyDeviceToDevice, cs), "gather");
    }
    slots.sid.upload(L.sid.data(), L.sid.size(), cs);
    M = static_cast<int>(perm.size());
  }
  check(cudaStreamSynchronize(cs), "the generation kernels");
}

namespace {

// The packed weights and the state of M streams in host memory, for the kernel emulation.
struct HostModel {
  Packed P;
  WeightPtrs w;
  std::vector<std::vector<float>> bufs;
  StatePtrs st;

  HostModel(Packed packed, int M) : P(std::move(packed)) {
    w.vocab = P.vocab;
    w.head_np = P.head_np;
    w.units = P.units;
    w.token_table = P.token_table.data();
    w.head_panels = P.head_panels.data();
    w.head_bias = P.head_bias.data();
    for (size_t l = 0; l < P.units.size(); ++l) {
      w.panels.push_back(P.panels[l].data());
      w.biases.push_back(P.biases[l].data());
    }
    st.M = M;
    for (int u : P.units)
      for (int k = 0; k < 3; ++k) bufs.emplace_back(static_cast<size_t>(M) * u, 0.0f);
    bufs.emplace_back(static_cast<size_t>(M) * w.ldl(), 0.0f);
    for (size_t l = 0; l < P.units.size(); ++l) {
      st.c.push_back(bufs[3 * l].data());
      st.h0.push_back(bufs[3 * l + 1].data());
      st.h1.push_back(bufs[3 * l + 2].data());
    }
    st.logits = bufs.back().data();
  }

  void step(const std::int32_t* tok, int stride, int parity, float* out = nullptr, int ldo = 0) {
    lstm_step(w, st, tok, stride, parity, out, ldo, [](const LinearArgs& a, bool lstm) {
      if (lstm) emulate_linear<true>(a);
      else emulate_linear<false>(a);
    });
  }
};

}  // namespace

void emulate_logits(const std::string& kind, const std::vector<int>& units,
                    const std::map<std::string, engine::TensorView>& weights,
                    const std::int32_t* tokens, std::int64_t batch, std::int64_t steps,
                    float* out) {
  Packed P = pack_weights(kind, units, weights);
  for (std::int64_t i = 0; i < batch * steps; ++i)
    if (tokens[i] < 0 || tokens[i] >= P.vocab)
      throw std::invalid_argument("emulate_logits: token id " + std::to_string(tokens[i]) +
                                  " outside [0, " + std::to_string(P.vocab) + ")");
  if (batch <= 0 || steps <= 0) return;
  const int V = P.vocab;
  HostModel H(std::move(P), static_cast<int>(batch));
  for (std::int64_t t = 0; t < steps; ++t)
    H.step(tokens + t, static_cast<int>(steps), static_cast<int>(t & 1), out + t * V,
           static_cast<int>(steps) * V);
}

namespace {

// One slot's sampling decision on the host, by the code the sampling kernel runs: the kernel's
// TokenView (grammar, rules' verdict and bias) turned into a grammar row and logits for
// sample_reference (the kernel's decision steps run serially).
std::int32_t sample_slot(const SampleArgs& a, int s, std::vector<std::int32_t>& row,
                         std::vector<float>& lg) {
  const int sid = a.sid[s];
  const std::int32_t st = a.state[s];
  TokenView tv;
  tv.row = a.table + static_cast<size_t>(st) * a.V;
  tv.ce = a.can_end[st] != 0;
  tv.lg = a.logits + static_cast<size_t>(s) * a.ldl;
  tv.eos = a.eos;
  tv.a = &a;
  tv.rs = a.rules.on ? a.rstate + s : nullptr;
  if (a.rules.on) {
    tv.w = rules::view(a.rstate[s], a.tables, a.rules);
    rules::settle_view(tv.w, a.rstate[s], a.tables, a.rules, tv.row, tv.ce, a.eos);
  }
  for (int v = 0; v < a.V; ++v) {
    row[v] = tv.ok(v) ? 0 : -1;
    lg[v] = tv.logit(v);
  }
  const double u = rule::philox_uniform(a.seeds[sid], static_cast<std::uint32_t>(a.len[s]),
                                        static_cast<std::uint32_t>(sid));
  return sample_reference(lg.data(), row.data(), a.V, true, a.eos, a.temperature[sid],
                          a.top_k[sid], a.top_p[sid], u);
}

}  // namespace

void emulate_generate(const std::string& kind, const std::vector<int>& units,
                      const std::map<std::string, engine::TensorView>& weights,
                      const engine::GenerateRequest& r) {
  Packed P = pack_weights(kind, units, weights);
  const int V = P.vocab;
  Loop L(r, V);
  const int n = L.n;
  if (n == 0) return;
  HostModel H(std::move(P), n);
  H.st.plan_rows = n;
  std::vector<std::int32_t> clock(V, 0);
  std::vector<std::uint8_t> notes(V, 0);
  if (r.clock_steps) std::memcpy(clock.data(), r.clock_steps, sizeof(std::int32_t) * V);
  if (r.is_note) std::memcpy(notes.data(), r.is_note, V);
  // Per-slot arrays, as on the device.
  std::vector<std::int32_t> state = L.start.state, next = L.next0;
  std::vector<std::int32_t> chunk(static_cast<size_t>(n) * CudaLstmEngine::kChunk);
  std::vector<long long> count(n, 0), len(n, 0);
  std::vector<std::uint8_t> done = L.done0;
  std::vector<rules::State> rstate = L.start.rule_state;
  SampleArgs a = shared_args(r, L.start.rules, V, r.table, r.can_end, clock.data(), notes.data());
  a.logits = H.st.logits;
  a.ldl = H.w.ldl();
  a.seeds = r.seeds;
  a.temperature = r.temperature;
  a.top_k = r.top_k;
  a.top_p = r.top_p;
  int parity = 0;
  for (std::int64_t t = 0; t < r.primer_len; ++t, parity ^= 1)
    H.step(r.primer + t, static_cast<int>(r.primer_len), parity);
  std::vector<std::int32_t> row(V);
  std::vector<float> lg(V);
  int M = n;
  for (;;) {
    // One chunk of kChunk steps over the M slots (the graph the device replays).
    a.n = M;
    H.st.M = M;
    a.sid = L.sid.data();
    a.state = state.data();
    a.count = count.data();
    a.len = len.data();
    a.done = done.data();
    a.next_tok = next.data();
    a.rstate = rstate.data();
    a.out = chunk.data();
    long long active = 0;
    for (int k = 0; k < CudaLstmEngine::kChunk; ++k) {
      for (int s = 0; s < M; ++s) {
        chunk[static_cast<size_t>(s) * CudaLstmEngine::kChunk + k] = -1;
        if (done[s]) continue;
        const std::int32_t v = sample_slot(a, s, row, lg);
        if (v < 0) L.no_token(s, state[s], static_cast<int>(len[s]));
        record_token(a, s, k, v);
      }
      H.step(next.data(), 1, parity);
      parity ^= 1;
    }
    for (int s = 0; s < M; ++s) active += done[s] ? 0 : 1;
    const long long got = L.take_chunk(chunk.data(), M);
    if (r.progress != nullptr) r.progress->fetch_add(got, std::memory_order_relaxed);
    if (r.rows_stepped != nullptr)
      r.rows_stepped->fetch_add(static_cast<long long>(M) * CudaLstmEngine::kChunk,
                                std::memory_order_relaxed);
    if (active > 0 && !Loop::worth_compacting(active, M)) continue;
    // The running streams move to the front (the device's gather, row by row).
    const std::vector<int> perm = L.survivors(done.data(), M);
    if (perm.empty()) break;
    auto gather = [&](void* base, size_t row_bytes) {
      std::vector<unsigned char> tmp(perm.size() * row_bytes);
      auto* src = static_cast<unsigned char*>(base);
      for (size_t i = 0; i < perm.size(); ++i)
        for (size_t b = 0; b < row_bytes; ++b)
          gather_row(src, tmp.data(), perm.data(), static_cast<int>(i), row_bytes, b);
      std::memcpy(base, tmp.data(), tmp.size());
    };
    gather(state.data(), 4);
    gather(next.data(), 4);
    gather(count.data(), 8);
    gather(len.data(), 8);
    gather(done.data(), 1);
    if (!rstate.empty()) gather(rstate.data(), sizeof(rules::State));
    for (size_t l = 0; l < H.w.units.size(); ++l)
      for (float* p : {H.st.c[l], H.st.h0[l], H.st.h1[l]}) gather(p, H.w.units[l] * sizeof(float));
    gather(H.st.logits, H.w.ldl() * sizeof(float));
    M = static_cast<int>(perm.size());
  }
}

double philox_uniform_shared(std::uint64_t seed, std::uint32_t step, std::uint32_t stream) {
  return rule::philox_uniform(seed, step, stream);
}

std::int32_t sample_reference(const float* logits, const std::int32_t* row, int V, bool can_end,
                              std::int32_t eos, float temperature, std::int32_t top_k,
                              float top_p, double u) {
  // The kernel's steps run serially: the parallel parts (max, compaction, counting-sort ranks)
  // are order-independent, the deciding sums call the same rule:: functions.
  if (temperature == 0.0f) {
    float best = 0.0f;
    int bi = -1;
    for (int v = 0; v < V; ++v)
      if (rule::allowed(row, v, can_end, eos) && rule::greedy_better(logits[v], v, best, bi)) {
        best = logits[v];
        bi = v;
      }
    return bi;
  }
  const double T = static_cast<double>(temperature);
  std::vector<int> ids;
  double mx = -INFINITY;
  for (int v = 0; v < V; ++v)
    if (rule::allowed(row, v, can_end, eos)) {
      ids.push_back(v);
      mx = std::fmax(mx, rule::scaled(logits[v], T));
    }
  const int nk = static_cast<int>(ids.size());
  if (nk == 0) return -1;
  std::vector<double> wk(nk);
  for (int i = 0; i < nk; ++i) wk[i] = rule::weight(logits[ids[i]], T, mx);
  const bool use_k = top_k > 0 && top_k < nk;
  const bool use_p = top_p > 0.0f && top_p < 1.0f;
  const int n_keep = use_k ? top_k : nk;
  std::vector<int> rank(nk), order(nk);
  int limit = nk;
  if (use_k || use_p) {
    for (int i = 0; i < nk; ++i) {
      int rr = 0;
      for (int j = 0; j < nk; ++j) rr += rule::ranks_before(wk[j], j, wk[i], i) ? 1 : 0;
      rank[i] = rr;
      order[rr] = i;
    }
    limit = use_p ? rule::top_p_keep(wk.data(), rank.data(), order.data(), nk, n_keep, top_p)
                  : n_keep;
  }
  const int i = rule::pick(wk.data(), (use_k || use_p) ? rank.data() : nullptr, nk, limit, u);
  return ids[i];
}

}  // namespace musgen::cuda
