// LstmEngine::generate_team: fewer streams than threads, so a team of threads shares every
// step's matrix work (Impl::team_step), meeting at a spin barrier between layers.
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "impl.hpp"
#include "sampling.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace musgen::engine {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A barrier for a team that meets a few times per token: it spins (a wake-up through the OS
// would cost more than a step's share of work), then yields, so an oversubscribed machine
// still makes progress.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void wait() {
    const unsigned gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    for (int spin = 0; gen_.load(std::memory_order_acquire) == gen; ++spin) {
      if (spin < 2000) cpu_relax();
      else std::this_thread::yield();
    }
  }

 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<unsigned> gen_{0};
};

}  // namespace

using detail::Sampler;
using detail::Stream;

// Fewer streams than threads: the team splits each step's panels (Impl::team_step), and
// thread t samples the streams m with m % team == t between two barriers.
void LstmEngine::generate_team(const GenerateRequest& r, const std::vector<std::int32_t>& state0,
                               int team) const {
  const Impl& I = *impl_;
  const int V = I.vocab;
  const int nb = static_cast<int>(r.n);
  Impl::TeamWork w;
  I.make_team_work(w, nb);
  std::vector<Stream> streams(nb);
  for (int m = 0; m < nb; ++m) streams[m].start(r, m, state0[m]);
  std::vector<std::int32_t> next(nb, 0);
  SpinBarrier barrier(team);
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto fail = [&] {
    std::lock_guard<std::mutex> lock(error_mutex);
    if (!error) error = std::current_exception();
    failed.store(true, std::memory_order_relaxed);
  };
  // Everything a member needs is allocated here, so nothing inside the loop can throw except
  // sampling, whose errors are recorded and end the run for the whole team at one barrier.
  std::vector<std::vector<const float*>> inits(team, std::vector<const float*>(nb, nullptr));
  std::vector<Sampler> samplers(team);
  for (Sampler& sm : samplers) sm.reserve(V);
  std::atomic<int> go{0};  // 0: wait, 1: run, 2: the team could not be started
  auto member = [&](int tid) {
    while (go.load(std::memory_order_acquire) == 0) std::this_thread::yield();
    if (go.load(std::memory_order_relaxed) != 1) return;
    std::vector<const float*>& init = inits[tid];
    auto meet = [&] { barrier.wait(); };
    int parity = 0;
    for (std::int64_t t = 0; t < r.primer_len; ++t, parity ^= 1)
      I.team_step(w, parity, r.primer + t, static_cast<long>(r.primer_len), tid, team, init,
                  meet);
    for (std::int64_t step = 0;; ++step, parity ^= 1) {
      std::int64_t sampled = 0;
      for (int m = tid; m < nb; m += team) {
        if (streams[m].done || failed.load(std::memory_order_relaxed)) continue;
        try {
          next[m] = streams[m].advance(r, V, samplers[tid], m, step,
                                       w.out.data() + static_cast<size_t>(m) * I.max_out);
          ++sampled;
        } catch (...) {
          fail();
        }
      }
      if (sampled > 0 && r.progress != nullptr)
        r.progress->fetch_add(sampled, std::memory_order_relaxed);
      barrier.wait();  // every stream's token and done flag are now visible to all
      bool active = false;
      for (int m = 0; m < nb; ++m) active = active || !streams[m].done;
      if (!active || failed.load(std::memory_order_relaxed)) break;
      I.team_step(w, parity, next.data(), 1, tid, team, init, meet);
    }
  };
  std::vector<std::thread> pool;
  try {
    for (int tid = 1; tid < team; ++tid) pool.emplace_back(member, tid);
  } catch (...) {  // no thread for every member: release the ones started, report why
    go.store(2, std::memory_order_release);
    for (auto& th : pool) th.join();
    throw;
  }
  go.store(1, std::memory_order_release);
  member(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  for (int m = 0; m < nb; ++m) streams[m].finish(r, m);
}

}  // namespace musgen::engine
