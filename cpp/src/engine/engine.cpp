// musgen::engine::LstmEngine: the teacher-forced passes (logits, predict) and paper-model
// generation over streams split between threads. Packing lives in weights.cpp, sampling in
// generate.cpp and team.cpp, the machine probes in probes.cpp.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "impl.hpp"
#include "musgen/errors.hpp"

namespace musgen::engine {

int detail::resolve_threads(int threads) {
  if (threads > 0) return threads;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

LstmEngine::~LstmEngine() { delete impl_; }

const std::string& LstmEngine::kind() const { return impl_->kind; }
int LstmEngine::vocab_size() const { return impl_->vocab; }
int LstmEngine::n_features() const { return impl_->features; }
int LstmEngine::output_dim() const { return impl_->out_dim; }
std::string LstmEngine::kernels() const { return impl_->ops->name; }
std::string LstmEngine::precision() const { return impl_->half ? "float16" : "float32"; }
std::vector<std::string> LstmEngine::available_kernels() {
  std::vector<std::string> out;
  for (const char* const* n = kernels::available_ops(); *n != nullptr; ++n) out.emplace_back(*n);
  return out;
}

void LstmEngine::logits(const std::int32_t* tokens, std::int64_t batch, std::int64_t steps,
                        float* out, int threads) const {
  const Impl& I = *impl_;
  if (!I.lm) throw std::invalid_argument("LstmEngine::logits: the model is not of kind lstm_lm");
  for (std::int64_t i = 0; i < batch * steps; ++i)
    if (tokens[i] < 0 || tokens[i] >= I.vocab)
      throw std::invalid_argument("LstmEngine::logits: token id " + std::to_string(tokens[i]) +
                                  " outside [0, " + std::to_string(I.vocab) + ")");
  detail::parallel_chunks(batch, threads, [&](std::int64_t b0, std::int64_t b1) {
    Impl::Work w;
    I.make_work(w, static_cast<int>(b1 - b0));
    for (std::int64_t t = 0; t < steps; ++t) {
      I.step_tokens(w, tokens + b0 * steps + t, static_cast<long>(steps));
      for (std::int64_t b = b0; b < b1; ++b)
        std::memcpy(out + (b * steps + t) * I.vocab, w.out.data() + (b - b0) * I.max_out,
                    sizeof(float) * I.vocab);
    }
  });
}

void LstmEngine::predict(const float* x, std::int64_t batch, std::int64_t steps, float* out,
                         int threads) const {
  const Impl& I = *impl_;
  if (I.lm) throw std::invalid_argument("LstmEngine::predict: the model is not of kind paper");
  const int F = I.features;
  detail::parallel_chunks(batch, threads, [&](std::int64_t b0, std::int64_t b1) {
    Impl::Work w;
    I.make_work(w, static_cast<int>(b1 - b0));
    for (std::int64_t t = 0; t < steps; ++t) {
      I.step_features(w, x + (b0 * steps + t) * F, static_cast<long>(steps) * F);
      for (std::int64_t b = b0; b < b1; ++b)
        std::memcpy(out + (b * steps + t) * F, w.out.data() + (b - b0) * I.max_out,
                    sizeof(float) * F);
    }
  });
}

void LstmEngine::generate_features(const float* primer, std::int64_t batch,
                                   std::int64_t primer_len, std::int64_t steps, float* out,
                                   int threads) const {
  const Impl& I = *impl_;
  if (I.lm)
    throw std::invalid_argument("LstmEngine::generate_features: the model is not of kind paper");
  if (primer_len < 1)
    throw std::invalid_argument("LstmEngine::generate_features: the primer needs >= 1 row");
  const int F = I.features;
  detail::parallel_chunks(batch, threads, [&](std::int64_t b0, std::int64_t b1) {
    Impl::Work w;
    const int nb = static_cast<int>(b1 - b0);
    I.make_work(w, nb);
    for (std::int64_t t = 0; t < primer_len; ++t)
      I.step_features(w, primer + (b0 * primer_len + t) * F, static_cast<long>(primer_len) * F);
    std::vector<float> x(static_cast<size_t>(nb) * F);
    for (std::int64_t t = 0; t < steps; ++t) {
      for (int m = 0; m < nb; ++m) {
        std::memcpy(out + ((b0 + m) * steps + t) * F, w.out.data() + m * I.max_out,
                    sizeof(float) * F);
        std::memcpy(x.data() + m * F, w.out.data() + m * I.max_out, sizeof(float) * F);
      }
      if (t + 1 < steps) I.step_features(w, x.data(), F);
    }
  });
}

}  // namespace musgen::engine
