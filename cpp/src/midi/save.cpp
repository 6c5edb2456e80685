// File output for the MIDI writer: one file written atomically (a temporary file beside it,
// renamed over it), and many files on a pool of std::threads.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "musgen/midi.hpp"

namespace musgen::midi {
namespace {

[[noreturn]] void os_fail(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// ".NAME.XXXXXXXX.tmp" beside `path` (the Python writer's pattern).
std::string temp_path(const std::string& path) {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   std::hash<std::thread::id>{}(std::this_thread::get_id())};
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(rng() & 0xFFFFFFFFu));
  return dir + "." + name + "." + hex + ".tmp";
}

void write_all(int fd, const std::uint8_t* p, std::size_t n, const std::string& tmp) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      os_fail(errno, tmp);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void save_atomically(const std::vector<std::uint8_t>& bytes, const std::string& path,
                     bool fsync) {
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = temp_path(path);
    // mode 0666 less the umask, applied by the kernel (what an ordinary open() gives)
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt > 16)) os_fail(errno, path);
  }
  try {
    write_all(fd, bytes.data(), bytes.size(), tmp);
    if (fsync && ::fsync(fd) != 0) os_fail(errno, tmp);
    const int closed = ::close(fd);
    fd = -1;
    if (closed != 0) os_fail(errno, tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) os_fail(errno, path);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
}

template <class Fn>
void on_threads(std::size_t n, int threads, Fn&& fn) {
  std::atomic<std::size_t> next{0};
  auto work = [&]() {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) fn(i);
  };
  const std::size_t t = std::min<std::size_t>(threads < 1 ? 1 : threads, n);
  if (t <= 1) {
    work();
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(t);
  for (std::size_t k = 0; k < t; ++k) pool.emplace_back(work);
  for (auto& th : pool) th.join();
}

}  // namespace

void write_midi_file(const ScoreData& s, const std::string& path, const std::string* text,
                     bool fsync) {
  save_atomically(encode_midi(s, text), path, fsync);
}

std::vector<WriteResult> write_midi_many(const std::vector<const ScoreData*>& scores,
                                         const std::vector<std::string>& paths,
                                         const std::vector<const std::string*>& texts,
                                         int threads, bool fsync) {
  if (paths.size() != scores.size() || texts.size() != scores.size())
    throw std::invalid_argument("write_midi_many: one path and one text per score");
  const std::size_t n = scores.size();
  std::vector<WriteResult> results(n);
  std::vector<std::vector<std::uint8_t>> bytes(n);
  std::atomic<bool> bad{false};
  on_threads(n, threads, [&](std::size_t i) {
    try {
      bytes[i] = encode_midi(*scores[i], texts[i]);
    } catch (const std::invalid_argument& e) {
      results[i] = {WriteResult::bad_value, e.what(), 0};
      bad = true;
    } catch (const std::bad_alloc&) {
      results[i] = {WriteResult::os_error, paths[i], ENOMEM};
      bad = true;
    }
  });
  if (bad) return results;  // nothing written
  on_threads(n, threads, [&](std::size_t i) {
    try {
      save_atomically(bytes[i], paths[i], fsync);
    } catch (const std::system_error& e) {
      results[i] = {WriteResult::os_error, paths[i], e.code().value()};
    }
    std::vector<std::uint8_t>().swap(bytes[i]);
  });
  return results;
}

}  // namespace musgen::midi
