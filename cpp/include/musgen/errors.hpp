// musgen C++ error types. The core throws these; the bindings map them to the Python classes
// in musgen.errors (MidiError, CodecError, ModelFormatError, BackendUnavailableError).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace musgen {

// A MIDI file could not be read. `offset` is the byte offset in the file (-1 when unknown).
class MidiError : public std::runtime_error {
 public:
  MidiError(std::string reason, std::int64_t offset, std::string path = {})
      : std::runtime_error(reason), reason_(std::move(reason)), path_(std::move(path)),
        offset_(offset) {}
  const std::string& reason() const noexcept { return reason_; }
  const std::string& path() const noexcept { return path_; }
  std::int64_t offset() const noexcept { return offset_; }
  void set_path(std::string p) { path_ = std::move(p); }

 private:
  std::string reason_;
  std::string path_;
  std::int64_t offset_;
};

class CodecError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class ModelFormatError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class BackendUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace musgen
