// File input for the MIDI reader: read a whole file into memory (one allocation of its size),
// and read many files on a pool of std::threads (results in input order).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cerrno>
#include <cstring>
#include <thread>

#include "musgen/errors.hpp"
#include "musgen/midi.hpp"

namespace musgen::midi {
namespace {

[[noreturn]] void cannot_read(const std::string& path, int err) {
  throw MidiError(std::string("cannot read the file: ") + std::strerror(err), -1, path);
}

void read_whole_file(const std::string& path, std::vector<std::uint8_t>& buf) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) cannot_read(path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    cannot_read(path, err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    cannot_read(path, EISDIR);
  }
  // Regular files: one buffer of their size, then a 1-byte probe in case the file grew.
  // Other files (pipes): grow as bytes arrive.
  buf.resize(S_ISREG(st.st_mode) ? static_cast<std::size_t>(st.st_size) : 65536);
  std::size_t got = 0;
  for (;;) {
    std::uint8_t probe;
    const bool full = got == buf.size();
    const ssize_t r = full ? ::read(fd, &probe, 1) : ::read(fd, buf.data() + got, buf.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      cannot_read(path, err);
    }
    if (r == 0) break;
    if (full) {
      buf.resize(buf.size() * 2 + 65536);
      buf[got] = probe;
    }
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  buf.resize(got);
}

}  // namespace

ScoreData read_midi_file(const std::string& path) {
  std::vector<std::uint8_t> buf;
  read_whole_file(path, buf);
  try {
    return read_midi_bytes(buf.data(), buf.size());
  } catch (MidiError& e) {
    e.set_path(path);
    throw;
  }
}

namespace {

void read_one(const std::string& path, std::vector<std::uint8_t>& buf, ReadResult& r) {
  try {
    read_whole_file(path, buf);
    r.score = read_midi_bytes(buf.data(), buf.size());
    r.ok = true;
  } catch (const MidiError& e) {
    r.reason = e.reason();
    r.offset = e.offset();
  } catch (const std::bad_alloc&) {
    r.reason = "out of memory while reading the file";
  }
}

}  // namespace

std::vector<ReadResult> read_midi_many(const std::vector<std::string>& paths, int threads) {
  std::vector<ReadResult> results(paths.size());
  std::atomic<std::size_t> next{0};
  auto work = [&]() {
    std::vector<std::uint8_t> buf;  // reused across this worker's files
    for (std::size_t i; (i = next.fetch_add(1)) < paths.size();) read_one(paths[i], buf, results[i]);
  };
  const std::size_t n = std::min<std::size_t>(threads < 1 ? 1 : threads, paths.size());
  if (n <= 1) {
    work();
    return results;
  }
  std::vector<std::thread> pool;
  pool.reserve(n);
  for (std::size_t t = 0; t < n; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  return results;
}

struct ReadManyStream::Impl {
  std::vector<ReadResult> slots;
  std::vector<char> ready;
  std::size_t claimed = 0, consumed = 0, window = 0;
  bool stop = false;
  std::mutex m;
  std::condition_variable cv_ready, cv_space;
  std::vector<std::thread> pool;
};

ReadManyStream::ReadManyStream(std::vector<std::string> paths, int threads)
    : paths_(std::move(paths)), impl_(new Impl) {
  impl_->slots.resize(paths_.size());
  impl_->ready.assign(paths_.size(), 0);
  const std::size_t n = std::min<std::size_t>(threads < 1 ? 1 : threads, paths_.size());
  impl_->window = 8 * (n ? n : 1);
  try {
    for (std::size_t t = 0; t < n; ++t) impl_->pool.emplace_back([this] { work(); });
  } catch (...) {  // could not start a thread: stop the ones started, then report
    shutdown();
    throw;
  }
}

ReadManyStream::~ReadManyStream() { shutdown(); }

void ReadManyStream::shutdown() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->m);
    impl_->stop = true;
  }
  impl_->cv_space.notify_all();
  for (auto& t : impl_->pool) t.join();
  delete impl_;
  impl_ = nullptr;
}

void ReadManyStream::work() {
  std::vector<std::uint8_t> buf;  // reused across this worker's files
  Impl& s = *impl_;
  for (;;) {
    std::size_t i;
    {
      std::unique_lock<std::mutex> lock(s.m);
      s.cv_space.wait(lock, [&] {
        return s.stop || s.claimed >= paths_.size() || s.claimed < s.consumed + s.window;
      });
      if (s.stop || s.claimed >= paths_.size()) return;
      i = s.claimed++;
    }
    ReadResult r;
    read_one(paths_[i], buf, r);
    {
      std::lock_guard<std::mutex> lock(s.m);
      s.slots[i] = std::move(r);
      s.ready[i] = 1;
    }
    s.cv_ready.notify_all();
  }
}

bool ReadManyStream::next(ReadResult& out) {
  Impl& s = *impl_;
  std::unique_lock<std::mutex> lock(s.m);
  if (s.consumed >= paths_.size()) return false;
  const std::size_t i = s.consumed;
  s.cv_ready.wait(lock, [&] { return s.ready[i] != 0; });
  out = std::move(s.slots[i]);
  s.slots[i] = ReadResult{};  // release its memory now
  ++s.consumed;
  lock.unlock();
  s.cv_space.notify_all();
  return true;
}

}  // namespace musgen::midi
