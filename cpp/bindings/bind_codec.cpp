// Bindings for musgen::codec: encode (one score or many, on threads) and decode, with the GIL
// released around the C++ work. Called only by python/musgen/codec/tokens.py, which prepares the
// arrays (NOTE_DTYPE notes, int64 time-base segments) and the grammar table.
#include <cstring>
#include <string>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "musgen/codec.hpp"
#include "musgen/errors.hpp"

namespace py = pybind11;

namespace musgen::bindings {
namespace {

using codec::Note;
using I32Array = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;
using I64Array = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

codec::Vocab vocab_from(const py::tuple& p) {
  if (p.size() != 8)
    throw CodecError("codec params: expected 8 values, got " + std::to_string(p.size()));
  return codec::make_vocab(p[0].cast<std::int32_t>(), p[1].cast<std::int32_t>(),
                           p[2].cast<std::int32_t>(), p[3].cast<std::int32_t>(),
                           p[4].cast<bool>(), p[5].cast<std::int32_t>(),
                           p[6].cast<std::int32_t>(), p[7].cast<std::int32_t>());
}

// Leaked on purpose: a static py::object would be released after the interpreter is gone.
const py::object& note_dtype() {
  static const py::object* dt =
      new py::object(py::module_::import("musgen.score").attr("NOTE_DTYPE"));
  return *dt;
}

py::array zeros_notes(std::size_t n) {
  static const py::object* zeros = new py::object(py::module_::import("numpy").attr("zeros"));
  return (*zeros)(n, note_dtype()).cast<py::array>();
}

// The notes array must be C-contiguous NOTE_DTYPE (the facade guarantees it; checked anyway,
// because the C++ side reads raw bytes).
const Note* notes_ptr(const py::array& a) {
  if (!a.dtype().attr("__eq__")(note_dtype()).cast<bool>() || a.ndim() != 1 ||
      !(a.flags() & py::array::c_style))
    throw CodecError("codec: notes must be a 1-D C-contiguous array of NOTE_DTYPE");
  return static_cast<const Note*>(a.data());
}

// Holds the arrays alive while the views point into them.
struct Prepared {
  py::array notes;
  I64Array seg_ticks, seg_rates;
  codec::ScoreView view;
};

Prepared prepare(py::array notes, I64Array seg_ticks, I64Array seg_rates, std::int64_t divisor) {
  Prepared p{std::move(notes), std::move(seg_ticks), std::move(seg_rates), {}};
  if (p.seg_ticks.ndim() != 1 || p.seg_rates.ndim() != 1 ||
      p.seg_ticks.shape(0) != p.seg_rates.shape(0))
    throw CodecError("codec: seg_ticks and seg_rates must be 1-D arrays of one length");
  p.view.notes = notes_ptr(p.notes);
  p.view.n_notes = static_cast<std::size_t>(p.notes.shape(0));
  p.view.time.seg_ticks = p.seg_ticks.data();
  p.view.time.seg_rates = p.seg_rates.data();
  p.view.time.n_segments = static_cast<std::size_t>(p.seg_ticks.shape(0));
  p.view.time.divisor = divisor;
  return p;
}

// The array takes the vector's buffer over (no copy: copying the tokens of a whole corpus
// into fresh pages cost as much as encoding them).
py::array_t<std::int32_t> to_array(std::vector<std::int32_t>&& v) {
  auto* owned = new std::vector<std::int32_t>(std::move(v));
  py::capsule free_when_done(owned, [](void* p) {
    delete static_cast<std::vector<std::int32_t>*>(p);
  });
  return py::array_t<std::int32_t>(static_cast<py::ssize_t>(owned->size()), owned->data(),
                                   free_when_done);
}

}  // namespace

void bind_codec(py::module_& m) {
  m.def(
      "codec_encode",
      [](py::array notes, I64Array seg_ticks, I64Array seg_rates, std::int64_t divisor,
         const py::tuple& params) {
        const codec::Vocab vocab = vocab_from(params);
        Prepared p = prepare(std::move(notes), std::move(seg_ticks), std::move(seg_rates), divisor);
        std::vector<std::int32_t> out;
        {
          py::gil_scoped_release release;
          codec::EncodeScratch scratch;
          codec::encode_score(p.view, vocab, out, scratch);
        }
        return to_array(std::move(out));
      },
      py::arg("notes"), py::arg("seg_ticks"), py::arg("seg_rates"), py::arg("divisor"),
      py::arg("params"), "Tokens (int32) of one notes array (see musgen.codec.encode).");

  m.def(
      "codec_encode_many",
      [](const py::list& items, const py::tuple& params, int threads) {
        const codec::Vocab vocab = vocab_from(params);
        std::vector<Prepared> held;
        held.reserve(items.size());
        std::vector<codec::ScoreView> views;
        views.reserve(items.size());
        for (const py::handle& h : items) {
          py::tuple t = py::reinterpret_borrow<py::tuple>(h);
          if (t.size() != 4)
            throw CodecError("codec_encode_many: each item must be (notes, seg_ticks, "
                             "seg_rates, divisor)");
          held.push_back(prepare(t[0].cast<py::array>(), t[1].cast<I64Array>(),
                                 t[2].cast<I64Array>(), t[3].cast<std::int64_t>()));
          views.push_back(held.back().view);
        }
        std::vector<std::vector<std::int32_t>> out;
        {
          py::gil_scoped_release release;
          codec::encode_many(views, vocab, threads, out);
        }
        py::list result;
        for (auto& v : out) result.append(to_array(std::move(v)));
        return result;
      },
      py::arg("items"), py::arg("params"), py::arg("threads"),
      "Tokens of many notes arrays, encoded on threads (see musgen.codec.encode_many).");

  m.def(
      "codec_decode",
      [](I32Array tokens, I32Array table, std::int32_t start_state, const py::tuple& params,
         std::int64_t num, std::int64_t den) {
        const codec::Vocab vocab = vocab_from(params);
        if (tokens.ndim() != 1) throw CodecError("codec_decode: tokens must be 1-D");
        if (table.ndim() != 2 || table.shape(1) != vocab.vocab_size)
          throw CodecError("codec_decode: the grammar table must be [n_states, " +
                           std::to_string(vocab.vocab_size) + "]");
        codec::GrammarTable g{table.data(), static_cast<std::int32_t>(table.shape(0)),
                              start_state};
        std::vector<Note> notes;
        {
          py::gil_scoped_release release;
          notes = codec::decode_tokens(tokens.data(), static_cast<std::size_t>(tokens.shape(0)),
                                       g, vocab, num, den);
        }
        py::array out = zeros_notes(notes.size());
        if (!notes.empty())
          std::memcpy(out.mutable_data(), notes.data(), notes.size() * sizeof(Note));
        return out;
      },
      py::arg("tokens"), py::arg("table"), py::arg("start_state"), py::arg("params"),
      py::arg("num"), py::arg("den"),
      "Notes (NOTE_DTYPE) of a token sequence (see musgen.codec.decode).");
}

}  // namespace musgen::bindings
