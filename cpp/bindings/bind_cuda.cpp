// Bindings for the CUDA backend's availability. The engine itself is bound in bind_engine.cpp.
#include <string>
#include <utility>

#include <pybind11/stl.h>

#include "bindings.hpp"

#if MUSGEN_HAS_CUDA
#include "musgen/cuda.hpp"
#endif

namespace musgen::bindings {
void bind_cuda(pybind11::module_& m) {
  m.def("cuda_runtime_status", []() -> std::pair<bool, std::string> {
#if MUSGEN_HAS_CUDA
    return musgen::cuda::runtime_status();
#else
    return {false, "this build has no CUDA backend (build with MUSGEN_ENABLE_CUDA=ON and nvcc)"};
#endif
  });
}
}  // namespace musgen::bindings
