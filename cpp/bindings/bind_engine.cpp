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
#include "musgen/engine.hpp"
#include "musgen/philox.hpp"

namespace py = pybind11;

namespace musgen::bindings {
namespace {

using engine::LstmEngine;
template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// A token counter the sampling loop increments while Python polls it for a progress bar.
struct Progress {
  std::atomic<std::int64_t> value{0};
};

template <class T>
const T* ptr_of(const carray<T>& a, py::ssize_t size, const char* what) {
  if (a.size() != size)
    throw std::invalid_argument(std::string("generate: ") + what + " has " +
                                std::to_string(a.size()) + " elements, expected " +
                                std::to_string(size));
  return a.data();
}

std::unique_ptr<LstmEngine> make_engine(const std::string& kind, const std::vector<int>& units,
                                        const py::dict& weights, const std::string& activation,
                                        const std::string& kernels) {
  std::map<std::string, carray<float>> keep;  // owns contiguous float32 copies while packing
  std::map<std::string, engine::TensorView> views;
  for (auto item : weights) {
    const std::string name = py::str(item.first);
    carray<float> arr = py::cast<carray<float>>(item.second);
    engine::TensorView v;
    v.data = arr.data();
    for (py::ssize_t d = 0; d < arr.ndim(); ++d) v.shape.push_back(arr.shape(d));
    views[name] = v;
    keep.emplace(name, std::move(arr));
  }
  py::gil_scoped_release release;
  return std::make_unique<LstmEngine>(kind, units, views, activation, kernels);
}

}  // namespace

void bind_engine(py::module_& m) {
  py::class_<Progress>(m, "EngineProgress", "Tokens generated so far by a running generate()")
      .def(py::init<>())
      .def_property_readonly("value", [](const Progress& p) { return p.value.load(); });

  m.def("philox4x32_10",
        [](std::array<std::uint32_t, 4> ctr, std::array<std::uint32_t, 2> key) {
          return philox4x32_10(ctr, key);
        },
        py::arg("counter"), py::arg("key"), "One Philox4x32-10 block (for known-answer tests)");
  m.def("philox_uniform", &philox_uniform, py::arg("seed"), py::arg("step"), py::arg("stream"),
        "The sampling uniform of (seed, step, stream)");

  py::class_<LstmEngine>(m, "LstmEngine", "The CPU LSTM inference engine (weights copied)")
      .def(py::init(&make_engine), py::arg("kind"), py::arg("units"), py::arg("weights"),
           py::arg("dense_activation") = "relu", py::arg("kernels") = "auto")
      .def_property_readonly("kind", &LstmEngine::kind)
      .def_property_readonly("vocab_size", &LstmEngine::vocab_size)
      .def_property_readonly("n_features", &LstmEngine::n_features)
      .def_property_readonly("kernels", &LstmEngine::kernels)
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
           py::arg("primer"), py::arg("steps"), py::arg("threads") = 0)
      .def("generate",
           [](const LstmEngine& e, const carray<std::int32_t>& primer,
              const carray<std::int32_t>& table, std::int32_t start_state,
              const carray<std::uint8_t>& can_end, std::int32_t eos_id,
              const carray<std::int32_t>& clock_steps, const carray<std::uint8_t>& is_note,
              int length_kind, std::int64_t length, std::int64_t max_tokens,
              const carray<std::uint64_t>& seeds, const carray<float>& temperature,
              const carray<std::int32_t>& top_k, const carray<float>& top_p, int threads,
              Progress* progress) {
             if (primer.ndim() != 2) throw std::invalid_argument("generate: primer must be [n, P]");
             if (table.ndim() != 2 || table.shape(1) != e.vocab_size())
               throw std::invalid_argument("generate: grammar table must be [n_states, vocab]");
             engine::GenerateRequest r;
             r.n = primer.shape(0);
             r.primer = primer.data();
             r.primer_len = primer.shape(1);
             r.table = table.data();
             r.n_states = table.shape(0);
             r.start_state = start_state;
             r.can_end = ptr_of(can_end, r.n_states, "can_end");
             r.eos_id = eos_id;
             r.clock_steps = ptr_of(clock_steps, e.vocab_size(), "clock_steps");
             r.is_note = ptr_of(is_note, e.vocab_size(), "is_note");
             r.length_kind = length_kind;
             r.length = length;
             r.max_tokens = max_tokens;
             r.seeds = ptr_of(seeds, r.n, "seeds");
             r.temperature = ptr_of(temperature, r.n, "temperature");
             r.top_k = ptr_of(top_k, r.n, "top_k");
             r.top_p = ptr_of(top_p, r.n, "top_p");
             r.threads = threads;
             r.progress = progress ? &progress->value : nullptr;
             py::array_t<std::int32_t> tokens({static_cast<py::ssize_t>(r.n),
                                               static_cast<py::ssize_t>(max_tokens)});
             py::array_t<std::int64_t> lengths(static_cast<py::ssize_t>(r.n));
             r.out_tokens = tokens.mutable_data();
             r.out_length = lengths.mutable_data();
             {
               py::gil_scoped_release release;
               e.generate(r);
             }
             return py::make_tuple(tokens, lengths);
           },
           py::arg("primer"), py::arg("table"), py::arg("start_state"), py::arg("can_end"),
           py::arg("eos_id"), py::arg("clock_steps"), py::arg("is_note"), py::arg("length_kind"),
           py::arg("length"), py::arg("max_tokens"), py::arg("seeds"), py::arg("temperature"),
           py::arg("top_k"), py::arg("top_p"), py::arg("threads") = 0,
           py::arg("progress") = nullptr);
}

}  // namespace musgen::bindings
