// Bindings for musgen::engine::LstmEngine: NumPy arrays in and out, the GIL released around
// every call into the engine (the sampling loop runs entirely in C++).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "engine_common.hpp"
#include "musgen/engine.hpp"
#include "musgen/philox.hpp"

namespace py = pybind11;

namespace musgen::bindings {
namespace {

using engine::LstmEngine;

std::unique_ptr<LstmEngine> make_engine(const std::string& kind, const std::vector<int>& units,
                                        const py::dict& weights, const std::string& activation,
                                        const std::string& kernels,
                                        const std::string& precision) {
  WeightViews w(weights);
  py::gil_scoped_release release;
  return std::make_unique<LstmEngine>(kind, units, w.views, activation, kernels, precision);
}

}  // namespace

void bind_engine(py::module_& m) {
  py::class_<GenerateProgress>(m, "EngineProgress",
                               "Tokens generated so far by a running generate() (any engine)")
      .def(py::init<>())
      .def_property_readonly("value", [](const GenerateProgress& p) { return p.value.load(); })
      .def_property_readonly("rows", [](const GenerateProgress& p) { return p.rows.load(); },
                             "Rows the engine computed a step for (every backend)");

  m.def("philox4x32_10",
        [](std::array<std::uint32_t, 4> ctr, std::array<std::uint32_t, 2> key) {
          return philox4x32_10(ctr, key);
        },
        py::arg("counter"), py::arg("key"), "One Philox4x32-10 block (for known-answer tests)");
  m.def("probe_read_bandwidth",
        [](std::int64_t nbytes, double seconds) {
          py::gil_scoped_release release;
          return engine::probe_read_bandwidth(nbytes, seconds);
        },
        py::arg("nbytes"), py::arg("seconds") = 0.5,
        "Bytes/s one thread reads from a warm buffer of nbytes (benchmark bounds)");
  m.def("probe_fma_peak",
        [](double seconds) {
          py::gil_scoped_release release;
          return engine::probe_fma_peak(seconds);
        },
        py::arg("seconds") = 0.5, "Multiply-add FLOP/s of one thread (benchmark bounds)");
  m.def("philox_uniform", &philox_uniform, py::arg("seed"), py::arg("step"), py::arg("stream"),
        "The sampling uniform of (seed, step, stream)");

  auto cls = py::class_<LstmEngine>(m, "LstmEngine", "The CPU LSTM inference engine (weights copied)")
      .def(py::init(&make_engine), py::arg("kind"), py::arg("units"), py::arg("weights"),
           py::arg("dense_activation") = "relu", py::arg("kernels") = "auto",
           py::arg("precision") = "float32")
      .def_property_readonly("kind", &LstmEngine::kind)
      .def_property_readonly("vocab_size", &LstmEngine::vocab_size)
      .def_property_readonly("n_features", &LstmEngine::n_features)
      .def_property_readonly("kernels", &LstmEngine::kernels)
      .def_property_readonly("precision", &LstmEngine::precision)
      .def_static("available_kernels", &LstmEngine::available_kernels)
      .def("logits",
           [](const LstmEngine& e, const carray<std::int32_t>& tokens, int threads) {
             if (tokens.ndim() != 2) throw std::invalid_argument("logits: tokens must be [B, T]");
             const auto B = tokens.shape(0), T = tokens.shape(1);
             py::array_t<float> out({B, T, static_cast<py::ssize_t>(e.vocab_size())});
             float* dst = out.mutable_data();
             const std::int32_t* src = tokens.data();
             {
               py::gil_scoped_release release;
               e.logits(src, B, T, dst, threads);
             }
             return out;
           },
           py::arg("tokens"), py::arg("threads") = 0)
      .def("warm_up_logits",
           [](const LstmEngine& e, const carray<std::int32_t>& tokens, int threads,
              std::int64_t block_floats) {
             if (tokens.ndim() != 2) throw std::invalid_argument("warm_up_logits: tokens [B, T]");
             const auto B = tokens.shape(0), T = tokens.shape(1);
             py::array_t<float> out({B, static_cast<py::ssize_t>(e.vocab_size())});
             float* dst = out.mutable_data();
             const std::int32_t* src = tokens.data();
             {
               py::gil_scoped_release release;
               e.warm_up_logits(src, B, T, dst, threads, block_floats);
             }
             return out;
           },
           py::arg("tokens"), py::arg("threads") = 0, py::arg("block_floats") = 0,
           "The logits after warming up on tokens [B, T], as generate() warms up on a primer")
      .def("predict",
           [](const LstmEngine& e, const carray<float>& x, int threads) {
             if (x.ndim() != 3 || x.shape(2) != e.n_features())
               throw std::invalid_argument("predict: features must be [B, T, n_features]");
             const auto B = x.shape(0), T = x.shape(1);
             py::array_t<float> out({B, T, x.shape(2)});
             float* dst = out.mutable_data();
             const float* src = x.data();
             {
               py::gil_scoped_release release;
               e.predict(src, B, T, dst, threads);
             }
             return out;
           },
           py::arg("features"), py::arg("threads") = 0)
      .def("generate_features",
           [](const LstmEngine& e, const carray<float>& primer, std::int64_t steps, int threads) {
             if (primer.ndim() != 3 || primer.shape(2) != e.n_features())
               throw std::invalid_argument("generate_features: primer must be [B, P, n_features]");
             const auto B = primer.shape(0), P = primer.shape(1);
             py::array_t<float> out({B, static_cast<py::ssize_t>(steps), primer.shape(2)});
             float* dst = out.mutable_data();
             const float* src = primer.data();
             {
               py::gil_scoped_release release;
               e.generate_features(src, B, P, steps, dst, threads);
             }
             return out;
           },
           py::arg("primer"), py::arg("steps"), py::arg("threads") = 0);
  def_generate<LstmEngine>(cls);
}

}  // namespace musgen::bindings
