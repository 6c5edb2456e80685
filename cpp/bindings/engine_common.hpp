// Binding pieces shared by the CPU and CUDA engines: weight views of a Python dict, the progress
// counter Python polls, and the one translation of generate()'s arguments into a GenerateRequest.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "musgen/engine.hpp"

namespace musgen::bindings {

template <class T>
using carray = pybind11::array_t<T, pybind11::array::c_style | pybind11::array::forcecast>;

// A token counter the sampling loop increments while Python polls it for a progress bar
// (bound once, as EngineProgress, and accepted by every engine's generate()).
struct GenerateProgress {
  std::atomic<std::int64_t> value{0};
  std::atomic<std::int64_t> rows{0};  // rows the engine stepped (the share of useful steps)
};

// The array's data after checking it holds `size` elements.
template <class T>
const T* checked_data(const carray<T>& a, pybind11::ssize_t size, const char* what) {
  if (a.size() != size)
    throw std::invalid_argument(std::string("generate: ") + what + " has " +
                                std::to_string(a.size()) + " elements, expected " +
                                std::to_string(size));
  return a.data();
}

// Contiguous float32 copies of the weights (kept alive by `keep`) and views of them by name.
struct WeightViews {
  std::map<std::string, carray<float>> keep;
  std::map<std::string, engine::TensorView> views;

  explicit WeightViews(const pybind11::dict& weights) {
    for (auto item : weights) {
      const std::string name = pybind11::str(item.first);
      carray<float> arr = pybind11::cast<carray<float>>(item.second);
      engine::TensorView v;
      v.data = arr.data();
      for (pybind11::ssize_t d = 0; d < arr.ndim(); ++d) v.shape.push_back(arr.shape(d));
      views[name] = v;
      keep.emplace(name, std::move(arr));
    }
  }
  // Rows of the embedding (0 when there is none, e.g. a paper model).
  int vocab() const {
    auto e = views.find("embedding/embeddings");
    return e == views.end() || e->second.shape.size() != 2 ? 0
                                                           : static_cast<int>(e->second.shape[0]);
  }
};

// The generation rules of a Python dict (see musgen.engine.rules.RuleArrays.as_dict): the
// arrays it holds are kept alive (as contiguous copies of the right dtype) by this object.
struct RuleArrays {
  carray<std::int32_t> clock_steps, duration, bar_steps;
  carray<std::uint8_t> is_note, is_bar, allowed;
  carray<std::int16_t> pitch, part, program;
  carray<float> bias;

  template <class T>
  static const T* table(const pybind11::dict& d, const char* key, carray<T>& keep, int V,
                        bool optional = false) {
    if (!d.contains(key) || d[key].is_none()) {
      if (optional) return nullptr;
      throw std::invalid_argument(std::string("generate: rules need '") + key + "'");
    }
    keep = pybind11::cast<carray<T>>(d[key]);
    return checked_data(keep, V, key);
  }

  void fill(const pybind11::dict& d, int V, engine::GenerateRequest& r) {
    namespace py = pybind11;
    rules::Tables& t = r.tables;
    rules::Settings& c = r.rules;
    t.V = V;
    t.clock_steps = table(d, "clock_steps", clock_steps, V);
    t.is_note = table(d, "is_note", is_note, V);
    t.pitch = table(d, "pitch", pitch, V);
    t.duration = table(d, "duration", duration, V);
    t.is_bar = table(d, "is_bar", is_bar, V);
    t.bar_steps = table(d, "bar_steps", bar_steps, V);
    t.part = table(d, "part", part, V);
    t.program = table(d, "program", program, V);
    t.steps_per_beat = py::cast<int>(d["steps_per_beat"]);
    t.default_bar_steps = py::cast<int>(d["default_bar_steps"]);
    c.on = 1;
    c.allow_early_end = py::cast<bool>(d["allow_early_end"]) ? 1 : 0;
    c.ending = py::cast<int>(d["ending"]);
    c.grace_steps = py::cast<long long>(d["grace_steps"]);
    c.allowed = table(d, "allowed", allowed, V, true);
    c.bias = table(d, "bias", bias, V, true);
    c.max_voices = py::cast<int>(d["max_voices"]);
    c.min_voices = py::cast<int>(d["min_voices"]);
    c.density_milli = py::cast<long long>(d["density_milli"]);
    c.max_rest_steps = py::cast<long long>(d["max_rest_steps"]);
    c.density_strength = py::cast<double>(d["density_strength"]);
  }
};

// The GenerateRequest of generate()'s Python-level arguments; run(request) executes it without
// the GIL. Returns (tokens int32 [total], offsets int64 [n + 1], reasons int8 [n]): stream i's
// tokens are tokens[offsets[i]:offsets[i + 1]].
template <class Run>
pybind11::tuple run_generate(int vocab, const carray<std::int32_t>& primer,
                             const carray<std::int32_t>& table, std::int32_t start_state,
                             const carray<std::uint8_t>& can_end, std::int32_t eos_id,
                             const carray<std::int32_t>& clock_steps,
                             const carray<std::uint8_t>& is_note, int length_kind,
                             std::int64_t length, std::int64_t max_tokens,
                             const carray<std::uint64_t>& seeds, const carray<float>& temperature,
                             const carray<std::int32_t>& top_k, const carray<float>& top_p,
                             int threads, GenerateProgress* progress,
                             const pybind11::object& rule_dict, Run&& run) {
  namespace py = pybind11;
  if (primer.ndim() != 2) throw std::invalid_argument("generate: primer must be [n, P]");
  if (table.ndim() != 2 || table.shape(1) != vocab)
    throw std::invalid_argument("generate: grammar table must be [n_states, vocab]");
  if (max_tokens < 0) throw std::invalid_argument("generate: max_tokens < 0");
  engine::GenerateRequest r;
  r.n = primer.shape(0);
  r.primer = primer.data();
  r.primer_len = primer.shape(1);
  r.table = table.data();
  r.n_states = table.shape(0);
  r.start_state = start_state;
  r.can_end = checked_data(can_end, r.n_states, "can_end");
  r.eos_id = eos_id;
  r.clock_steps = checked_data(clock_steps, vocab, "clock_steps");
  r.is_note = checked_data(is_note, vocab, "is_note");
  r.length_kind = length_kind;
  r.length = length;
  r.max_tokens = max_tokens;
  r.seeds = checked_data(seeds, r.n, "seeds");
  r.temperature = checked_data(temperature, r.n, "temperature");
  r.top_k = checked_data(top_k, r.n, "top_k");
  r.top_p = checked_data(top_p, r.n, "top_p");
  r.threads = threads;
  r.progress = progress ? &progress->value : nullptr;
  r.rows_stepped = progress ? &progress->rows : nullptr;
  RuleArrays keep;
  if (!rule_dict.is_none()) keep.fill(py::cast<py::dict>(rule_dict), vocab, r);
  std::vector<std::vector<std::int32_t>> outputs(static_cast<size_t>(r.n));
  py::array_t<std::int8_t> reasons(static_cast<py::ssize_t>(r.n));
  r.out_tokens = outputs.data();
  r.out_reason = reasons.mutable_data();
  {
    py::gil_scoped_release release;
    run(r);
  }
  py::array_t<std::int64_t> offsets(static_cast<py::ssize_t>(r.n + 1));
  std::int64_t* off = offsets.mutable_data();
  off[0] = 0;
  for (std::int64_t i = 0; i < r.n; ++i)
    off[i + 1] = off[i] + static_cast<std::int64_t>(outputs[i].size());
  py::array_t<std::int32_t> tokens(static_cast<py::ssize_t>(off[r.n]));
  std::int32_t* dst = tokens.mutable_data();
  for (std::int64_t i = 0; i < r.n; ++i) {
    std::copy(outputs[i].begin(), outputs[i].end(), dst + off[i]);
    std::vector<std::int32_t>().swap(outputs[i]);
  }
  return py::make_tuple(tokens, offsets, reasons);
}

// Binds `generate` on an engine class: the same Python signature for every backend.
template <class Engine, class Class>
void def_generate(Class& cls) {
  namespace py = pybind11;
  cls.def(
      "generate",
      [](const Engine& e, const carray<std::int32_t>& primer, const carray<std::int32_t>& table,
         std::int32_t start_state, const carray<std::uint8_t>& can_end, std::int32_t eos_id,
         const carray<std::int32_t>& clock_steps, const carray<std::uint8_t>& is_note,
         int length_kind, std::int64_t length, std::int64_t max_tokens,
         const carray<std::uint64_t>& seeds, const carray<float>& temperature,
         const carray<std::int32_t>& top_k, const carray<float>& top_p, int threads,
         GenerateProgress* progress, const py::object& rules) {
        return run_generate(e.vocab_size(), primer, table, start_state, can_end, eos_id,
                            clock_steps, is_note, length_kind, length, max_tokens, seeds,
                            temperature, top_k, top_p, threads, progress, rules,
                            [&](const engine::GenerateRequest& r) { e.generate(r); });
      },
      py::arg("primer"), py::arg("table"), py::arg("start_state"), py::arg("can_end"),
      py::arg("eos_id"), py::arg("clock_steps"), py::arg("is_note"), py::arg("length_kind"),
      py::arg("length"), py::arg("max_tokens"), py::arg("seeds"), py::arg("temperature"),
      py::arg("top_k"), py::arg("top_p"), py::arg("threads") = 0,
      py::arg("progress") = nullptr, py::arg("rules") = py::none());
}

}  // namespace musgen::bindings
