// Bindings for the CUDA backend: availability, the CudaLstmEngine (same call signatures as the
// CPU LstmEngine, GIL released around device work) and host runs of the shared device sampling
// code for tests. Every CUDA failure surfaces as musgen.BackendUnavailableError.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings.hpp"

#if MUSGEN_HAS_CUDA
#include "engine_common.hpp"
#include "musgen/cuda.hpp"
#include "musgen/engine.hpp"
#endif

namespace py = pybind11;

namespace musgen::bindings {

#if MUSGEN_HAS_CUDA
namespace {

using cuda::CudaLstmEngine;

std::unique_ptr<CudaLstmEngine> make_cuda_engine(const std::string& kind,
                                                 const std::vector<int>& units,
                                                 const py::dict& weights) {
  WeightViews w(weights);
  py::gil_scoped_release release;
  return std::make_unique<CudaLstmEngine>(kind, units, w.views);
}

}  // namespace
#endif

void bind_cuda(py::module_& m) {
  m.def("cuda_runtime_status", []() -> std::pair<bool, std::string> {
#if MUSGEN_HAS_CUDA
    py::gil_scoped_release release;
    return musgen::cuda::runtime_status();
#else
    return {false, "this build has no CUDA backend (build with MUSGEN_ENABLE_CUDA=ON and nvcc)"};
#endif
  });
#if MUSGEN_HAS_CUDA
  m.def("cuda_emulate_logits",
        [](const std::string& kind, const std::vector<int>& units, const py::dict& weights,
           const carray<std::int32_t>& tokens) {
          if (tokens.ndim() != 2) throw std::invalid_argument("tokens must be [B, T]");
          WeightViews w(weights);
          const py::ssize_t V = w.vocab();
          const auto B = tokens.shape(0), T = tokens.shape(1);
          py::array_t<float> out({B, T, V});
          float* dst = out.mutable_data();
          const std::int32_t* src = tokens.data();
          {
            py::gil_scoped_release release;
            cuda::emulate_logits(kind, units, w.views, src, B, T, dst);
          }
          return out;
        },
        py::arg("kind"), py::arg("units"), py::arg("weights"), py::arg("tokens"),
        "Teacher-forced logits by a host emulation of the CUDA layer kernels (for tests)");
  m.def("cuda_emulate_generate",
        [](const std::string& kind, const std::vector<int>& units, const py::dict& weights,
           const carray<std::int32_t>& primer, const carray<std::int32_t>& table,
           std::int32_t start_state, const carray<std::uint8_t>& can_end, std::int32_t eos_id,
           const carray<std::int32_t>& clock_steps, const carray<std::uint8_t>& is_note,
           int length_kind, std::int64_t length, std::int64_t max_tokens,
           const carray<std::uint64_t>& seeds, const carray<float>& temperature,
           const carray<std::int32_t>& top_k, const carray<float>& top_p, int threads,
           GenerateProgress* progress, const py::object& rules) {
          WeightViews w(weights);
          return run_generate(w.vocab(), primer, table, start_state, can_end, eos_id, clock_steps,
                              is_note, length_kind, length, max_tokens, seeds, temperature, top_k,
                              top_p, threads, progress, rules,
                              [&](const engine::GenerateRequest& r) {
                                cuda::emulate_generate(kind, units, w.views, r);
                              });
        },
        py::arg("kind"), py::arg("units"), py::arg("weights"), py::arg("primer"),
        py::arg("table"), py::arg("start_state"), py::arg("can_end"), py::arg("eos_id"),
        py::arg("clock_steps"), py::arg("is_note"), py::arg("length_kind"), py::arg("length"),
        py::arg("max_tokens"), py::arg("seeds"), py::arg("temperature"), py::arg("top_k"),
        py::arg("top_p"), py::arg("threads") = 0, py::arg("progress") = nullptr,
        py::arg("rules") = py::none(),
        "The CUDA sampling loop emulated on the host (kernel code, no device; for tests)");
  m.def("cuda_philox_uniform", &cuda::philox_uniform_shared, py::arg("seed"), py::arg("step"),
        py::arg("stream"), "The CUDA kernels' Philox uniform, run on the host (for tests)");
  m.def("cuda_sample_reference",
        [](const carray<float>& logits, const carray<std::int32_t>& row, bool can_end,
           std::int32_t eos_id, float temperature, std::int32_t top_k, float top_p, double u) {
          if (logits.ndim() != 1 || row.ndim() != 1 || row.size() != logits.size())
            throw std::invalid_argument("cuda_sample_reference: logits and row must be [V]");
          return cuda::sample_reference(logits.data(), row.data(), static_cast<int>(logits.size()),
                                        can_end, eos_id, temperature, top_k, top_p, u);
        },
        py::arg("logits"), py::arg("row"), py::arg("can_end"), py::arg("eos_id"),
        py::arg("temperature"), py::arg("top_k"), py::arg("top_p"), py::arg("u"),
        "One sampling decision by the CUDA kernel's __host__ __device__ code, run on the host");

  auto cls = py::class_<CudaLstmEngine>(m, "CudaLstmEngine", "The CUDA LSTM engine (kind lstm_lm)")
      .def(py::init(&make_cuda_engine), py::arg("kind"), py::arg("units"), py::arg("weights"))
      .def_property_readonly("vocab_size", &CudaLstmEngine::vocab_size)
      .def_property_readonly("device_name", &CudaLstmEngine::device_name)
      .def("logits",
           [](const CudaLstmEngine& e, const carray<std::int32_t>& tokens) {
             if (tokens.ndim() != 2) throw std::invalid_argument("logits: tokens must be [B, T]");
             const auto B = tokens.shape(0), T = tokens.shape(1);
             py::array_t<float> out({B, T, static_cast<py::ssize_t>(e.vocab_size())});
             float* dst = out.mutable_data();
             const std::int32_t* src = tokens.data();
             {
               py::gil_scoped_release release;
               e.logits(src, B, T, dst);
             }
             return out;
           },
           py::arg("tokens"));
  def_generate<CudaLstmEngine>(cls);
#endif
}
}  // namespace musgen::bindings
