// Bindings for musgen::engine (filled in by the engine work).
#include "bindings.hpp"

namespace musgen::bindings {
void bind_engine(pybind11::module_& /*m*/) {}
}  // namespace musgen::bindings
