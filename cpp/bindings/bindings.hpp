// Shared declarations of the binding units: each bind_<area>.cpp defines one bind_<area>().
#pragma once

#include <pybind11/pybind11.h>

namespace musgen::bindings {
void bind_midi(pybind11::module_& m);
void bind_codec(pybind11::module_& m);
void bind_engine(pybind11::module_& m);
void bind_cuda(pybind11::module_& m);
}  // namespace musgen::bindings
