// CUDA runtime probing: whether a usable device exists, and a clear reason when it does not.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <string>
#include <utility>

#include "musgen/cuda.hpp"

namespace musgen::cuda {

namespace {
// A trivial kernel: launching it proves this binary carries code the device can run.
__global__ void probe_kernel(int* out) { *out = 42; }
}  // namespace

std::pair<bool, std::string> runtime_status() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    // The static runtime reports a missing driver as "insufficient driver": say which it is.
    if (void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD)) {
      dlclose(lib);
    } else if (void* lib2 = dlopen("libcuda.so.1", RTLD_LAZY)) {
      dlclose(lib2);
    } else {
      cudaGetLastError();
      return {false, "no NVIDIA driver on this machine (libcuda.so.1 cannot be loaded)"};
    }
    std::string why = std::string("no usable CUDA driver/device (") + cudaGetErrorName(err) +
                      ": " + cudaGetErrorString(err) + ")";
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return {false, why};
  }
  if (count == 0) return {false, "the CUDA driver reports no device"};
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    cudaGetLastError();
    return {false, "cudaGetDeviceProperties failed for device 0"};
  }
  int* d = nullptr;
  if (cudaMalloc(&d, sizeof(int)) != cudaSuccess) {
    cudaGetLastError();
    return {false, std::string("cannot allocate on ") + prop.name};
  }
  probe_kernel<<<1, 1>>>(d);
  err = cudaGetLastError();
  int h = 0;
  if (err == cudaSuccess) err = cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(d);
  if (err != cudaSuccess || h != 42) {
    cudaGetLastError();
    return {false, std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
                       std::to_string(prop.minor) +
                       ") cannot run this build's kernels: rebuild with "
                       "MUSGEN_CUDA_ARCHITECTURES including it (" +
                       cudaGetErrorString(err) + ")"};
  }
  return {true, std::to_string(count) + " device(s); device 0: " + prop.name + " (sm_" +
                    std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
                    std::to_string(prop.totalGlobalMem >> 20) + " MiB)"};
}

}  // namespace musgen::cuda
