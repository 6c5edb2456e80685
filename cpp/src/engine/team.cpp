// LstmEngine::generate_team: fewer streams than threads, so a team of threads shares every
// step's matrix work (Impl::team_step), meeting at a spin barrier between layers.
#include <atomic>
#include <thread>
#include <utility>
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
// thread t samples the streams in slots m with m % team == t between two barriers. Finished
// streams leave the batch (the last slot takes the place of each), moved by thread 0 while the
// others wait at a barrier.
void LstmEngine::generate_team(const GenerateRequest& r, const Prepared& start, int team) const {
  const Impl& I = *impl_;
  const int V = I.vocab;
  const int nb = static_cast<int>(r.n);
  Impl::TeamWork w;
  I.make_team_work(w, nb);
  // A long primer warms up layer by layer (its input projections as matrix products on the
  // team's threads), then the team starts from that state: the same numbers as stepping it.
  const bool batched = r.primer_len >= Impl::kBatchedWarmUp;
  if (batched) {
    Impl::Work pw;
    I.make_work(pw, nb);
    I.warm_up(pw, r.primer, r.primer_len, team);
    I.copy_state(pw, w);
  }
  std::vector<Stream> streams(nb);
  for (int m = 0; m < nb; ++m) streams[m].start(start, m);
  std::vector<std::int32_t> next(nb, 0);
  SpinBarrier barrier(team);
  std::atomic<bool> failed{false};
  detail::FirstFailure failure;
  // Everything a member needs is allocated here, so nothing inside the loop can throw except
  // sampling, whose errors are recorded and end the run for the whole team at one barrier.
  std::vector<std::vector<const float*>> inits(team, std::vector<const float*>(nb, nullptr));
  std::vector<Sampler> samplers(team);
  for (Sampler& sm : samplers) sm.reserve(V);
  int active = nb;  // written by thread 0 between two barriers
  // Did a stream finish at step k? finished[k & 1], set while sampling, read by every member
  // after the barrier that ends sampling, cleared by thread 0 one step later (once all read it).
  std::atomic<bool> finished[2] = {false, false};
  for (int m = 0; m < nb; ++m)
    if (streams[m].done) finished[0].store(true, std::memory_order_relaxed);
  std::atomic<int> go{0};  // 0: wait, 1: run, 2: the team could not be started
  // Thread 0 drops the finished streams (their tokens and reasons go to the outputs).
  auto compact = [&] {
    active = detail::drop_finished(streams, next, active, r,
                                   [&](int from, int to) { I.move_row(w, from, to); });
    w.nb = active;
  };
  auto member = [&](int tid) {
    while (go.load(std::memory_order_acquire) == 0) std::this_thread::yield();
    if (go.load(std::memory_order_relaxed) != 1) return;
    std::vector<const float*>& init = inits[tid];
    auto meet = [&] { barrier.wait(); };
    int parity = batched ? static_cast<int>(r.primer_len & 1) : 0;
    for (std::int64_t t = 0; !batched && t < r.primer_len; ++t, parity ^= 1)
      I.team_step(w, parity, r.primer + t, static_cast<long>(r.primer_len), tid, team, init,
                  meet);
    for (std::int64_t step = 0;; ++step, parity ^= 1) {
      std::int64_t sampled = 0;
      for (int m = tid; m < active; m += team) {
        if (streams[m].done) continue;  // the others sample this step even after a failure
        try {
          next[m] = streams[m].advance(r, start.rules, V, samplers[tid],
                                       w.out.data() + static_cast<size_t>(m) * I.max_out);
          ++sampled;
          if (streams[m].done) finished[step & 1].store(true, std::memory_order_relaxed);
        } catch (...) {
          failure.record(streams[m].len(), streams[m].s);
          failed.store(true, std::memory_order_relaxed);
        }
      }
      if (sampled > 0 && r.progress != nullptr)
        r.progress->fetch_add(sampled, std::memory_order_relaxed);
      barrier.wait();  // every stream's token and done flag are now visible to all
      if (failed.load(std::memory_order_relaxed)) break;
      const bool changed = finished[step & 1].load(std::memory_order_relaxed);
      if (tid == 0) finished[(step + 1) & 1].store(false, std::memory_order_relaxed);
      if (changed) {  // every member read the same flag, so all take this branch or none
        if (tid == 0) compact();
        barrier.wait();
      }
      if (active == 0) break;
      if (tid == 0 && r.rows_stepped != nullptr)
        r.rows_stepped->fetch_add(active, std::memory_order_relaxed);
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
  failure.rethrow();
}

}  // namespace musgen::engine
