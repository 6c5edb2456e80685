// The CUDA backend's host-side API (compiled only with MUSGEN_ENABLE_CUDA=ON). No CUDA headers
// here, so the bindings compile with the ordinary C++ compiler.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "musgen/engine.hpp"

namespace musgen::cuda {

// (usable, why): false with the reason when there is no driver, no device, or the device is
// older than the architectures this build carries.
std::pair<bool, std::string> runtime_status();

// The LSTM language model (kind "lstm_lm") on device 0: weights uploaded once at construction
// (plain device allocations), the whole sampling loop on the device. Same weights, same
// GenerateRequest and same results as musgen::engine::LstmEngine (tokens are identical wherever
// the float32 logits agree; the sampling decisions run the same float64 arithmetic in the same
// order). Kind "paper" is not supported here (it runs on the CPU engine).
// Every CUDA runtime failure throws musgen::BackendUnavailable with the CUDA error text.
class CudaLstmEngine {
 public:
  CudaLstmEngine(const std::string& kind, const std::vector<int>& units,
                 const std::map<std::string, engine::TensorView>& weights);
  ~CudaLstmEngine();
  CudaLstmEngine(const CudaLstmEngine&) = delete;
  CudaLstmEngine& operator=(const CudaLstmEngine&) = delete;

  int vocab_size() const;
  std::string device_name() const;

  // Teacher-forced logits from a zero state: tokens [B, T] -> out [B, T, vocab] (host memory).
  void logits(const std::int32_t* tokens, std::int64_t batch, std::int64_t steps, float* out) const;
  // The sampling loop; req.threads is ignored. Thread-safe: each call has its own CUDA stream,
  // state and graph; the weights are shared read-only.
  void generate(const engine::GenerateRequest& req) const;

  // Steps per captured CUDA graph (the host checks the "all finished" flag once per chunk).
  static constexpr int kChunk = 32;

  struct Impl;

 private:
  Impl* impl_;
};

// Host runs of the kernels' __host__ __device__ code (for tests without a GPU): the teacher-forced
// forward pass through an emulation of every block and thread of the layer kernels, on the same
// packed weights the engine uploads (needs no device).
void emulate_logits(const std::string& kind, const std::vector<int>& units,
                    const std::map<std::string, engine::TensorView>& weights,
                    const std::int32_t* tokens, std::int64_t batch, std::int64_t steps,
                    float* out);
// The whole sampling loop the same way: emulated layer kernels, the sampling kernel's decision
// code (sample_reference) and its per-token bookkeeping, on the host. req.threads is ignored.
void emulate_generate(const std::string& kind, const std::vector<int>& units,
                      const std::map<std::string, engine::TensorView>& weights,
                      const engine::GenerateRequest& req);
// The Philox uniform and one sampling decision, by the code the sampling kernel runs.
double philox_uniform_shared(std::uint64_t seed, std::uint32_t step, std::uint32_t stream);
// One sampling decision: logits [V], grammar row [V] (next state or -1). -1: nothing allowed.
std::int32_t sample_reference(const float* logits, const std::int32_t* row, int V, bool can_end,
                              std::int32_t eos, float temperature, std::int32_t top_k,
                              float top_p, double u);

}  // namespace musgen::cuda
