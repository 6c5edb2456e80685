// Bindings for musgen::codec (filled in by the codec work).
#include "bindings.hpp"

namespace musgen::bindings {
void bind_codec(pybind11::module_& /*m*/) {}
}  // namespace musgen::bindings
