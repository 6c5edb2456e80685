// Bindings for musgen::codec: encode (one score or many, on threads) and decode, both codec
// versions, with the GIL released around the C++ work. Called only by
// python/musgen/codec/tokens.py, which prepares the arrays (NOTE_DTYPE notes, int64 time-base
// segments, PROGRAM_DTYPE program changes, tempo and meter events) and the grammar table.
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

// The parameters of python's tokens._c_params: 11 for version 1, 20 for version 2.
codec::Vocab vocab_from(const py::tuple& p) {
  if (p.size() != 11 && p.size() != 20)
    throw CodecError("codec params: expected 11 or 20 values, got " + std::to_string(p.size()));
  codec::VocabParams q;
  q.version = p.size() == 11 ? 1 : 2;
  q.max_time_shift = p[0].cast<std::int32_t>();
  q.max_duration = p[1].cast<std::int32_t>();
  q.pitch_lo = p[2].cast<std::int32_t>();
  q.pitch_hi = p[3].cast<std::int32_t>();
  q.keep_drums = p[4].cast<bool>();
  q.drum_lo = p[5].cast<std::int32_t>();
  q.drum_hi = p[6].cast<std::int32_t>();
  q.velocity_bins = p[7].cast<std::int32_t>();
  q.cap_steps = p[8].cast<std::int64_t>();
  q.silence_steps = p[9].cast<std::int64_t>();
  q.silence_unit = p[10].cast<std::int64_t>();
  if (q.version == 2) {
    q.steps_per_beat = p[11].cast<std::int32_t>();
    q.max_parts = p[12].cast<std::int32_t>();
    q.styles = p[13].cast<std::vector<std::string>>();
    q.tempo_bins = p[14].cast<std::int32_t>();
    q.default_tempo_bin = p[15].cast<std::int32_t>();
    q.meter_44 = p[16].cast<std::int32_t>();
    q.meters = p[17].cast<std::vector<std::pair<std::int32_t, std::int32_t>>>();
    q.meter_bar_steps = p[18].cast<std::vector<std::int64_t>>();
    q.density_bounds_milli = p[19].cast<std::vector<std::int64_t>>();
  }
  return codec::make_vocab(q);
}

// A report as python's tokens._as_report reads it: None when encode changed nothing (the usual
// case, and the cheapest to return and test), else a tuple of counts.
bool empty(const codec::EncodeReport& r) {
  return (r.notes_capped | r.silences_shortened | r.steps_removed | r.parts_merged |
          r.parts_dropped | r.notes_dropped) == 0;
}

py::object report_v1(const codec::EncodeReport& r) {
  if (empty(r)) return py::none();
  return py::make_tuple(r.notes_capped, r.silences_shortened, r.steps_removed);
}

py::object report_v2(const codec::EncodeReport& r) {
  if (empty(r)) return py::none();
  return py::make_tuple(r.notes_capped, r.silences_shortened, r.steps_removed, r.parts_merged,
                        r.parts_dropped, r.notes_dropped);
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
  // version 2
  py::array programs;
  I64Array tempo_ticks, meter_ticks;
  I32Array tempo_bins, meter_index;
};

const py::object& program_dtype() {
  static const py::object* dt =
      new py::object(py::module_::import("musgen.score").attr("PROGRAM_DTYPE"));
  return *dt;
}

// Version 2: the score's other events (python: _python_v2.Events, in its field order).
void prepare_events(Prepared& p, const py::tuple& t, std::size_t first) {
  p.programs = t[first].cast<py::array>();
  if (!p.programs.dtype().attr("__eq__")(program_dtype()).cast<bool>() ||
      p.programs.ndim() != 1 || !(p.programs.flags() & py::array::c_style))
    throw CodecError("codec: programs must be a 1-D C-contiguous array of PROGRAM_DTYPE");
  p.tempo_ticks = t[first + 1].cast<I64Array>();
  p.tempo_bins = t[first + 2].cast<I32Array>();
  p.meter_ticks = t[first + 3].cast<I64Array>();
  p.meter_index = t[first + 4].cast<I32Array>();
  if (p.tempo_ticks.size() != p.tempo_bins.size() || p.meter_ticks.size() != p.meter_index.size())
    throw CodecError("codec: tempo and meter events must come in (ticks, values) pairs");
  codec::ScoreView& v = p.view;
  v.programs = static_cast<const codec::ProgramChange*>(p.programs.data());
  v.n_programs = static_cast<std::size_t>(p.programs.shape(0));
  v.tempo_ticks = p.tempo_ticks.data();
  v.tempo_bins = p.tempo_bins.data();
  v.n_tempos = static_cast<std::size_t>(p.tempo_ticks.size());
  v.meter_ticks = p.meter_ticks.data();
  v.meter_index = p.meter_index.data();
  v.n_meters = static_cast<std::size_t>(p.meter_ticks.size());
  v.meta_key = t[first + 5].cast<std::int32_t>();
  v.style = t[first + 6].cast<std::int32_t>();
}

Prepared prepare(py::array notes, I64Array seg_ticks, I64Array seg_rates, std::int64_t divisor) {
  Prepared p{std::move(notes), std::move(seg_ticks), std::move(seg_rates), {}, {}, {}, {}, {},
             {}};
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
py::array_t<std::int32_t> to_array(codec::Tokens&& v) {
  auto* owned = new codec::Tokens(std::move(v));
  py::capsule free_when_done(owned, [](void* p) {
    delete static_cast<codec::Tokens*>(p);
  });
  return py::array_t<std::int32_t>(static_cast<py::ssize_t>(owned->size()), owned->data(),
                                   free_when_done);
}

py::array_t<std::int64_t> to_array64(const std::vector<std::int64_t>& v) {
  py::array_t<std::int64_t> out(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(std::int64_t));
  return out;
}

}  // namespace

void bind_codec(py::module_& m) {
  // A vocabulary built once per codec config (python: tokens._c_params caches it), so that
  // encoding a file does not parse the parameters again.
  py::class_<codec::Vocab>(m, "CodecVocab")
      .def(py::init([](const py::tuple& params) { return vocab_from(params); }),
           py::arg("vocab"))
      .def_property_readonly("vocab_size", [](const codec::Vocab& v) { return v.vocab_size; })
      .def_property_readonly("version", [](const codec::Vocab& v) { return v.p.version; });

  m.def(
      "codec_encode",
      [](py::array notes, I64Array seg_ticks, I64Array seg_rates, std::int64_t divisor,
         const codec::Vocab& vocab) {
        Prepared p = prepare(std::move(notes), std::move(seg_ticks), std::move(seg_rates), divisor);
        if (vocab.p.version != 1) throw CodecError("codec_encode: a version-1 codec expected");
        codec::Tokens out;
        codec::EncodeReport report;
        {
          py::gil_scoped_release release;
          thread_local codec::EncodeScratch scratch;  // no allocations per file
          codec::encode_score(p.view, vocab, out, scratch, report);
        }
        return py::make_tuple(to_array(std::move(out)), report_v1(report));
      },
      py::arg("notes"), py::arg("seg_ticks"), py::arg("seg_rates"), py::arg("divisor"),
      py::arg("vocab"),
      "(tokens int32, report) of one notes array, codec version 1 (see musgen.codec.encode).");

  // Many scores: items are (notes, seg_ticks, seg_rates, divisor), and for version 2 also the
  // seven event fields. Returns [(tokens, report), ...].
  auto encode_items = [](const py::list& items, const codec::Vocab& vocab, int threads,
                         int version) {
    if (vocab.p.version != version)
      throw CodecError("codec_encode: the vocabulary is not of codec version " +
                       std::to_string(version));
    const std::size_t width = version == 1 ? 4 : 11;
    std::vector<Prepared> held;
    held.reserve(items.size());
    std::vector<codec::ScoreView> views;
    views.reserve(items.size());
    for (const py::handle& h : items) {
      py::tuple t = py::reinterpret_borrow<py::tuple>(h);
      if (t.size() != width)
        throw CodecError("codec_encode_many: each item must have " + std::to_string(width) +
                         " fields");
      held.push_back(prepare(t[0].cast<py::array>(), t[1].cast<I64Array>(),
                             t[2].cast<I64Array>(), t[3].cast<std::int64_t>()));
      if (version == 2) prepare_events(held.back(), t, 4);
      views.push_back(held.back().view);
    }
    std::vector<codec::Tokens> out;
    std::vector<codec::EncodeReport> reports;
    {
      py::gil_scoped_release release;
      codec::encode_many(views, vocab, threads, out, reports);
    }
    py::list result;
    for (std::size_t i = 0; i < out.size(); ++i)
      result.append(py::make_tuple(to_array(std::move(out[i])),
                                   version == 1 ? report_v1(reports[i]) : report_v2(reports[i])));
    return result;
  };

  m.def(
      "codec_encode_many",
      [encode_items](const py::list& items, const codec::Vocab& vocab, int threads) {
        return encode_items(items, vocab, threads, 1);
      },
      py::arg("items"), py::arg("vocab"), py::arg("threads"),
      "[(tokens, report)] of many notes arrays, codec version 1, encoded on threads.");

  m.def(
      "codec_encode_v2",
      [encode_items](const py::list& items, const codec::Vocab& vocab, int threads) {
        return encode_items(items, vocab, threads, 2);
      },
      py::arg("items"), py::arg("vocab"), py::arg("threads"),
      "[(tokens, report)] of many scores, codec version 2, encoded on threads.");

  m.def(
      "codec_decode_v2",
      [](I32Array tokens, I32Array table, std::int32_t start_state, const codec::Vocab& vocab) {
        if (vocab.p.version != 2) throw CodecError("codec_decode_v2: a version-2 codec expected");
        if (tokens.ndim() != 1) throw CodecError("codec_decode: tokens must be 1-D");
        if (table.ndim() != 2 || table.shape(1) != vocab.vocab_size)
          throw CodecError("codec_decode: the grammar table must be [n_states, " +
                           std::to_string(vocab.vocab_size) + "]");
        codec::GrammarTable g{table.data(), static_cast<std::int32_t>(table.shape(0)),
                              start_state};
        codec::DecodedPiece d;
        {
          py::gil_scoped_release release;
          d = codec::decode_tokens_v2(tokens.data(), static_cast<std::size_t>(tokens.shape(0)),
                                      g, vocab);
        }
        py::array_t<std::int32_t> programs(static_cast<py::ssize_t>(d.programs.size()));
        if (!d.programs.empty())
          std::memcpy(programs.mutable_data(), d.programs.data(),
                      d.programs.size() * sizeof(std::int32_t));
        return py::make_tuple(programs,
                              py::make_tuple(d.key, d.style, d.density, d.tempo, d.meter, d.end),
                              to_array64(d.on), to_array64(d.dur), to_array64(d.code),
                              to_array64(d.vel), to_array64(d.part),
                              to_array64(d.tempo_changes), to_array64(d.meter_changes));
      },
      py::arg("tokens"), py::arg("table"), py::arg("start_state"), py::arg("vocab"),
      "What a version-2 token sequence holds (see musgen.codec.tokens.decode_piece).");

  m.def(
      "codec_decode",
      [](I32Array tokens, I32Array table, std::int32_t start_state, const codec::Vocab& vocab,
         std::int64_t num, std::int64_t den) {
        if (vocab.p.version != 1) throw CodecError("codec_decode: a version-1 codec expected");
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
      py::arg("tokens"), py::arg("table"), py::arg("start_state"), py::arg("vocab"),
      py::arg("num"), py::arg("den"),
      "Notes (NOTE_DTYPE) of a token sequence (see musgen.codec.decode).");
}

}  // namespace musgen::bindings
