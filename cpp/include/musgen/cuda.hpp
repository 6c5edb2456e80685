// The CUDA backend's host-side API (compiled only with MUSGEN_ENABLE_CUDA=ON). No CUDA headers
// here, so the bindings compile with the ordinary C++ compiler.
#pragma once

#include <string>
#include <utility>

namespace musgen::cuda {

// (usable, why): false with the reason when there is no driver, no device, or the device is
// older than the architectures this build carries.
std::pair<bool, std::string> runtime_status();

}  // namespace musgen::cuda
