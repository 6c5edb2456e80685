// Bindings for musgen::midi (filled in by the midi work).
#include "bindings.hpp"

namespace musgen::bindings {
void bind_midi(pybind11::module_& /*m*/) {}
}  // namespace musgen::bindings
