// Probes of one core's limits with this CPU's best kernels (benchmark bounds): read bandwidth
// over a buffer in cache and the multiply-add peak.
#include <algorithm>
#include <chrono>
#include <vector>

#include "kernels.hpp"
#include "musgen/engine.hpp"

namespace musgen::engine {
namespace {

// Best rate of 5 windows of about seconds / 5 each: work(reps) does reps units of `per_rep`.
template <class Work>
double best_rate(double seconds, double per_rep, Work&& work) {
  using clock = std::chrono::steady_clock;
  long reps = 1;
  for (;;) {  // calibrate: a window of >= 1/5 of the time
    const auto t0 = clock::now();
    work(reps);
    const double t = std::chrono::duration<double>(clock::now() - t0).count();
    if (t >= seconds / 5 || reps > (1L << 40)) break;
    reps *= 2;
  }
  double best = 0.0;
  for (int w = 0; w < 5; ++w) {
    const auto t0 = clock::now();
    work(reps);
    const double t = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, per_rep * reps / std::max(t, 1e-9));
  }
  return best;
}

volatile float probe_sink = 0.0f;

}  // namespace

double probe_read_bandwidth(std::int64_t nbytes, double seconds) {
  const kernels::Ops& ops = kernels::best_ops();
  const long n = std::max<long>(1024, static_cast<long>(nbytes / 4));
  std::vector<float> buf(n, 1.0f);
  ops.probe_read(buf.data(), n);  // warm the caches
  return best_rate(seconds, 4.0 * n, [&](long reps) {
    float s = 0.0f;
    for (long r = 0; r < reps; ++r) s += ops.probe_read(buf.data(), n);
    probe_sink = s;
  });
}

double probe_fma_peak(double seconds) {
  const kernels::Ops& ops = kernels::best_ops();
  constexpr long kRounds = 4096;
  return best_rate(seconds, 2.0 * ops.fma_floats * kRounds, [&](long reps) {
    probe_sink = ops.probe_fma(kRounds * reps, probe_sink + 1.0f);
  });
}

}  // namespace musgen::engine
