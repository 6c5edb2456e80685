// Bindings for musgen::midi: parse with the GIL released, then copy the C++ arrays into NumPy
// arrays of the dtypes defined in musgen.score (layouts checked once, at import); the writer
// copies a Score's arrays the other way, then encodes and writes with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "bindings.hpp"
#include "musgen/errors.hpp"
#include "musgen/midi.hpp"

namespace py = pybind11;

namespace musgen::bindings {
namespace {

struct Dtypes {
  py::dtype note, tempo, time_signature, key_signature, program;
};

const Dtypes& dtypes() {
  static const Dtypes* d = [] {
    py::module_ score = py::module_::import("musgen.score");
    auto* p = new Dtypes{score.attr("NOTE_DTYPE"), score.attr("TEMPO_DTYPE"),
                         score.attr("TIME_SIGNATURE_DTYPE"), score.attr("KEY_SIGNATURE_DTYPE"),
                         score.attr("PROGRAM_DTYPE")};
    return p;
  }();
  return *d;
}

// The C++ structs must have the NumPy dtypes' sizes and field offsets (one definition: score.py).
template <class T>
void check_layout(const py::dtype& dt, const char* name,
                  std::initializer_list<std::pair<const char*, std::size_t>> fields) {
  if (static_cast<std::size_t>(dt.itemsize()) != sizeof(T))
    throw std::runtime_error(std::string("musgen._core: ") + name + " itemsize " +
                             std::to_string(dt.itemsize()) + " != C++ " +
                             std::to_string(sizeof(T)));
  py::dict f = dt.attr("fields");
  for (const auto& [field, offset] : fields) {
    py::tuple entry = f[field];
    const auto got = py::cast<std::size_t>(entry[1]);
    if (got != offset)
      throw std::runtime_error(std::string("musgen._core: ") + name + "." + field +
                               " offset mismatch");
  }
}

void check_layouts() {
  using namespace musgen::midi;
  const Dtypes& d = dtypes();
  check_layout<Note>(d.note, "NOTE_DTYPE",
                     {{"track", offsetof(Note, track)}, {"channel", offsetof(Note, channel)},
                      {"pitch", offsetof(Note, pitch)}, {"velocity", offsetof(Note, velocity)},
                      {"start", offsetof(Note, start)}, {"end", offsetof(Note, end)}});
  check_layout<Tempo>(d.tempo, "TEMPO_DTYPE",
                      {{"tick", offsetof(Tempo, tick)}, {"tempo", offsetof(Tempo, tempo)}});
  check_layout<TimeSignature>(
      d.time_signature, "TIME_SIGNATURE_DTYPE",
      {{"tick", offsetof(TimeSignature, tick)},
       {"numerator", offsetof(TimeSignature, numerator)},
       {"denominator", offsetof(TimeSignature, denominator)},
       {"clocks_per_click", offsetof(TimeSignature, clocks_per_click)},
       {"notated_32nds", offsetof(TimeSignature, notated_32nds)}});
  check_layout<KeySignature>(d.key_signature, "KEY_SIGNATURE_DTYPE",
                             {{"tick", offsetof(KeySignature, tick)},
                              {"track", offsetof(KeySignature, track)},
                              {"key", offsetof(KeySignature, key)},
                              {"mode", offsetof(KeySignature, mode)}});
  check_layout<Program>(d.program, "PROGRAM_DTYPE",
                        {{"tick", offsetof(Program, tick)},
                         {"track", offsetof(Program, track)},
                         {"channel", offsetof(Program, channel)},
                         {"program", offsetof(Program, program)}});
}

template <class T>
py::array to_array(const std::vector<T>& v, const py::dtype& dt) {
  py::array a(dt, std::vector<py::ssize_t>{static_cast<py::ssize_t>(v.size())},
              std::vector<py::ssize_t>{});
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(T));
  return a;
}

// (Score constructor arguments as a dict, list of warning strings).
py::tuple to_python(const musgen::midi::ScoreData& s) {
  const Dtypes& d = dtypes();
  py::dict f;
  f["notes"] = to_array(s.notes, d.note);
  f["ticks_per_beat"] = s.ticks_per_beat;
  f["tempos"] = to_array(s.tempos, d.tempo);
  f["time_signatures"] = to_array(s.time_signatures, d.time_signature);
  f["key_signatures"] = to_array(s.key_signatures, d.key_signature);
  f["programs"] = to_array(s.programs, d.program);
  py::list names;
  for (const std::string& n : s.track_names)
    names.append(py::reinterpret_steal<py::object>(
        PyUnicode_DecodeLatin1(n.data(), static_cast<py::ssize_t>(n.size()), nullptr)));
  f["track_names"] = names;
  f["format"] = s.format;
  if (s.smpte_fps == 0)
    f["smpte"] = py::none();
  else if (s.smpte_fps == 29)
    f["smpte"] = py::make_tuple(29.97, s.smpte_ticks_per_frame);
  else
    f["smpte"] = py::make_tuple(s.smpte_fps, s.smpte_ticks_per_frame);
  py::list warns;
  for (const std::string& w : s.warnings) warns.append(py::str(w));
  return py::make_tuple(f, warns);
}

template <class T>
void from_array(const py::object& arr, const py::dtype& dt, const char* name,
                std::vector<T>& out) {
  static const py::object* contiguous =
      new py::object(py::module_::import("numpy").attr("ascontiguousarray"));
  py::array a = (*contiguous)(arr);
  if (!a.dtype().equal(dt) || a.ndim() != 1)
    throw py::type_error(std::string("Score.") + name + ": expected a 1-D array of its dtype");
  out.resize(static_cast<std::size_t>(a.shape(0)));
  if (!out.empty()) std::memcpy(out.data(), a.data(), out.size() * sizeof(T));
}

// A Score's fields as ScoreData for the writer. Track names are encoded as latin-1 with '?'
// for what it cannot hold, as the Python writer does; a SMPTE division has been checked by the
// facade (fps 24, 25, 29.97 or 30), 29.97 is stored as 29.
musgen::midi::ScoreData from_python(const py::handle& score) {
  const Dtypes& d = dtypes();
  musgen::midi::ScoreData s;
  from_array(score.attr("notes"), d.note, "notes", s.notes);
  from_array(score.attr("tempos"), d.tempo, "tempos", s.tempos);
  from_array(score.attr("time_signatures"), d.time_signature, "time_signatures",
             s.time_signatures);
  from_array(score.attr("key_signatures"), d.key_signature, "key_signatures",
             s.key_signatures);
  from_array(score.attr("programs"), d.program, "programs", s.programs);
  for (const py::handle name : score.attr("track_names")) {
    py::object raw = py::reinterpret_steal<py::object>(
        PyUnicode_AsEncodedString(py::str(name).ptr(), "latin-1", "replace"));
    if (!raw) throw py::error_already_set();
    s.track_names.push_back(raw.cast<std::string>());
  }
  py::object smpte = score.attr("smpte");
  if (smpte.is_none()) {
    s.ticks_per_beat = py::cast<int>(score.attr("ticks_per_beat"));
  } else {
    py::tuple t = smpte;
    const double fps = py::cast<double>(t[0]);
    s.smpte_fps = fps == 29.97 ? 29 : static_cast<int>(fps);
    s.smpte_ticks_per_frame = py::cast<int>(t[1]);
  }
  return s;
}

std::unique_ptr<std::string> text_from(const py::object& text) {
  if (text.is_none()) return nullptr;
  return std::make_unique<std::string>(text.cast<std::string>());
}

}  // namespace

void bind_midi(py::module_& m) {
  check_layouts();
  m.def(
      "midi_read_bytes",
      [](py::bytes data, const std::string& path) {
        std::string_view view = data;  // the bytes object stays alive (and immutable) meanwhile
        musgen::midi::ScoreData s;
        {
          py::gil_scoped_release release;
          try {
            s = musgen::midi::read_midi_bytes(reinterpret_cast<const std::uint8_t*>(view.data()),
                                              view.size());
          } catch (musgen::MidiError& e) {
            e.set_path(path);
            throw;
          }
        }
        return to_python(s);
      },
      py::arg("data"), py::arg("path") = "",
      "Parse MIDI bytes -> (Score fields dict, warnings). Raises MidiError.");
  m.def(
      "midi_read_file",
      [](const std::string& path) {
        musgen::midi::ScoreData s;
        {
          py::gil_scoped_release release;
          s = musgen::midi::read_midi_file(path);
        }
        return to_python(s);
      },
      py::arg("path"), "Read a MIDI file -> (Score fields dict, warnings). Raises MidiError.");
  m.def(
      "midi_read_many",
      [](std::vector<std::string> paths, int threads) {
        // Workers read ahead with the GIL released; this thread converts each result as it
        // arrives (in input order), so results are still in cache and memory stays bounded.
        musgen::midi::ReadManyStream stream(std::move(paths), threads);
        py::list out;
        for (std::size_t i = 0;; ++i) {
          musgen::midi::ReadResult r;
          bool more;
          {
            py::gil_scoped_release release;
            more = stream.next(r);
          }
          if (!more) break;
          if (r.ok) {
            py::tuple t = to_python(r.score);
            out.append(py::make_tuple(t[0], t[1], py::none()));
          } else {
            out.append(py::make_tuple(py::none(), py::list(),
                                      py::make_tuple(r.reason, r.offset, stream.path(i))));
          }
        }
        return out;
      },
      py::arg("paths"), py::arg("threads"),
      "Read files on `threads` threads -> list of (fields or None, warnings, "
      "(reason, offset, path) or None), in input order.");
  m.def(
      "midi_encode",
      [](const py::object& score, const py::object& text) {
        musgen::midi::ScoreData s = from_python(score);
        const auto t = text_from(text);
        std::vector<std::uint8_t> out;
        {
          py::gil_scoped_release release;
          out = musgen::midi::encode_midi(s, t.get());
        }
        return py::bytes(reinterpret_cast<const char*>(out.data()), out.size());
      },
      py::arg("score"), py::arg("text") = py::none(),
      "A Score as type-1 SMF bytes (text: bytes or None). Raises ValueError.");
  m.def(
      "midi_write_many",
      [](const py::list& scores, const std::vector<std::string>& paths, const py::list& texts,
         int threads, bool fsync) {
        std::vector<musgen::midi::ScoreData> data;
        data.reserve(scores.size());
        for (const py::handle sc : scores) data.push_back(from_python(sc));
        std::vector<std::unique_ptr<std::string>> text_store;
        std::vector<const std::string*> text_ptrs;
        std::vector<const musgen::midi::ScoreData*> ptrs;
        for (std::size_t i = 0; i < data.size(); ++i) {
          ptrs.push_back(&data[i]);
          text_store.push_back(text_from(texts[i]));
          text_ptrs.push_back(text_store.back().get());
        }
        std::vector<musgen::midi::WriteResult> res;
        {
          py::gil_scoped_release release;
          res = musgen::midi::write_midi_many(ptrs, paths, text_ptrs, threads, fsync);
        }
        py::list out;
        for (const auto& r : res)
          out.append(py::make_tuple(static_cast<int>(r.kind), r.message, r.error_number));
        return out;
      },
      py::arg("scores"), py::arg("paths"), py::arg("texts"), py::arg("threads"),
      py::arg("fsync"),
      "Encode and write scores atomically on `threads` threads -> per score (kind, message, "
      "errno): kind 0 written, 1 a value MIDI cannot hold (nothing was written), 2 an OS error.");
}

}  // namespace musgen::bindings
