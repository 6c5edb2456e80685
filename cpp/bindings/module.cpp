// The thin module entry of musgen._core: exception translation, build facts, then each area.
#include <pybind11/pybind11.h>

#include <string>

#include "bindings.hpp"
#include "musgen/cpu.hpp"
#include "musgen/errors.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "musgen C++ core (private; use the musgen package)";
  m.attr("__version__") = MUSGEN_VERSION;
  m.attr("HAS_CUDA") = static_cast<bool>(MUSGEN_HAS_CUDA);
  m.def("simd_info", &musgen::cpu_features_string, "CPU features detected at run time");

  // Translate core exceptions into musgen.errors classes so every backend raises the same types.
  py::module_ errors = py::module_::import("musgen.errors");
  static py::object midi_error = errors.attr("MidiError");
  static py::object codec_error = errors.attr("CodecError");
  static py::object model_error = errors.attr("ModelFormatError");
  static py::object backend_error = errors.attr("BackendUnavailableError");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const musgen::MidiError& e) {
      py::object path = e.path().empty() ? py::none() : py::object(py::str(e.path()));
      py::object offset = e.offset() < 0 ? py::none() : py::object(py::int_(e.offset()));
      py::object exc = midi_error(py::str(e.reason()), path, offset);
      PyErr_SetObject(midi_error.ptr(), exc.ptr());
    } catch (const musgen::CodecError& e) {
      PyErr_SetString(codec_error.ptr(), e.what());
    } catch (const musgen::ModelFormatError& e) {
      PyErr_SetString(model_error.ptr(), e.what());
    } catch (const musgen::BackendUnavailable& e) {
      PyErr_SetString(backend_error.ptr(), e.what());
    }
  });

  musgen::bindings::bind_midi(m);
  musgen::bindings::bind_codec(m);
  musgen::bindings::bind_engine(m);
  musgen::bindings::bind_cuda(m);
}
