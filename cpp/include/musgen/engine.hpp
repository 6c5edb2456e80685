// musgen::engine: the CPU LSTM inference engine. Embedding -> LSTM stack -> dense head (kind
// "lstm_lm"), or float features -> LSTM stack -> dense layers (kind "paper"), for a batch of
// independent streams; the whole sampling loop runs here, without Python.
//
// Weights come in Keras layout (musgen.modeldir: kernel [in, 4u], recurrent kernel [u, 4u],
// bias [4u], gate order i, f, c, o) and are repacked once into panels (src/engine/kernels.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "musgen/rules.hpp"

namespace musgen::engine {

// A read-only view of one float32 tensor (row-major).
struct TensorView {
  const float* data = nullptr;
  std::vector<std::int64_t> shape;
};

// Sampling and stopping rules of one generate() call. Arrays are borrowed for the call.
//
// Per stream s and generated token t (0-based, counted after the primer):
//   allowed(v)  = table[state, v] >= 0 and (v != eos_id or can_end[state])
//                 and, with rules.on, rules::allows(...) (see musgen/rules.hpp)
//   logit(v)    = the model's float32 logit, plus rules::token_bias(...) with rules.on
//   temperature 0: v = argmax over allowed of the float32 logits (lowest id on ties).
//   otherwise, in float64: x_v = logit_v / T; w_v = exp(x_v - max_allowed x) on allowed tokens;
//     top_k > 0: keep the k largest w (ties: lowest id);
//     0 < top_p < 1: order kept tokens by (w descending, id ascending) and keep the shortest
//       prefix whose running sum (in that order) is >= top_p * (sum of kept w in id order);
//     u = philox_uniform(seed_s, t, s); target = u * (sum of kept w in id order);
//     v = the first kept id (ascending) whose running sum exceeds target (else the last kept).
//   Without rules, stop after the token when: v == eos_id; or the length budget is reached
//   (tokens, notes via is_note[v], or clock steps via clock_steps[v]) and can_end[new state];
//   or max_tokens. With rules, rules::stop_reason decides (endings, min_length).
struct GenerateRequest {
  std::int64_t n = 1;                    // streams
  const std::int32_t* primer = nullptr;  // [n, primer_len] token ids (warm the state)
  std::int64_t primer_len = 0;           // >= 1
  const std::int32_t* table = nullptr;   // [n_states, vocab] next state, -1 = forbidden
  std::int64_t n_states = 0;
  std::int32_t start_state = 0;          // the state before the first primer token
  const std::uint8_t* can_end = nullptr;  // [n_states]
  std::int32_t eos_id = -1;              // -1: no end token
  const std::int32_t* clock_steps = nullptr;  // [vocab] (length_kind 2)
  const std::uint8_t* is_note = nullptr;      // [vocab] (length_kind 1)
  int length_kind = 0;                   // 0 tokens, 1 notes, 2 clock steps
  std::int64_t length = 0;               // budget in that unit
  std::int64_t max_tokens = 0;           // hard cap on generated tokens per stream
  const std::uint64_t* seeds = nullptr;  // [n]
  const float* temperature = nullptr;    // [n], >= 0
  const std::int32_t* top_k = nullptr;   // [n], 0 = off
  const float* top_p = nullptr;          // [n], >= 1 = off
  // The generation rules (rules.on = 0: none; the loop above). With rules on, every table of
  // `tables` is set; rules.unit / rules.length / needs_note / note_kinds are filled in by the
  // engine from length_kind, length and the grammar.
  rules::Tables tables;
  rules::Settings rules;
  int threads = 0;                       // 0 = all cores
  std::atomic<std::int64_t>* progress = nullptr;  // incremented per generated token (optional)
  // Rows the engine computed a step for after the warm-up (optional): (tokens generated - n)
  // divided by this is the share of stream-steps that made a kept token.
  std::atomic<std::int64_t>* rows_stepped = nullptr;
  // outputs: each stream's tokens, growing with what it makes (so memory follows the tokens
  // produced, not max_tokens), and why it stopped (a rules::Reason).
  std::vector<std::int32_t>* out_tokens = nullptr;  // [n]
  std::int8_t* out_reason = nullptr;                // [n], optional
};

// A checked request: every stream's grammar state and rule state after its primer, why a
// stream has nothing to generate (rules::kRunning when it has), and the rule settings with the
// budget and the per-state flags filled in. Move-only: `rules` points into the vectors.
struct Prepared {
  std::vector<std::int32_t> state;
  std::vector<rules::State> rule_state;   // empty when the rules are off
  std::vector<std::int8_t> reason;
  rules::Settings rules;
  std::vector<std::uint8_t> needs_note, note_kinds;
  Prepared() = default;
  Prepared(Prepared&&) = default;
  Prepared& operator=(Prepared&&) = default;
  Prepared(const Prepared&) = delete;
  Prepared& operator=(const Prepared&) = delete;
};

// Checks a request against a vocabulary of `vocab` tokens and walks every stream's primer
// through the grammar (and the rules): the state of every stream after its primer. Throws
// std::invalid_argument (bad arguments) or CodecError (a primer the grammar refuses). Every
// backend calls this, so they accept and refuse exactly the same requests with the same words.
Prepared prepare_request(const GenerateRequest& r, int vocab);

// Probes of one core's limits with this CPU's best kernels, for benchmark bounds: the read
// bandwidth over a buffer of `nbytes` already in cache (bytes/s) and the multiply-add peak
// (FLOP/s), each the best of repeated windows of about `seconds` / 5.
double probe_read_bandwidth(std::int64_t nbytes, double seconds);
double probe_fma_peak(double seconds);

class LstmEngine {
 public:
  // kind: "lstm_lm" or "paper"; weights by modeldir tensor name; dense_activation (paper):
  // "relu", "tanh", "sigmoid" or "linear", applied between dense layers (the last is linear).
  // kernels: "auto" or a name from available_kernels(). precision: "float32", or "float16" to
  // store every kernel and recurrent kernel as IEEE half (half the bytes read per step; the
  // math stays float32 on the exactly widened weights; embeddings and biases stay float32).
  // Throws ModelFormatError on any missing or mis-shaped tensor, or a kernel value beyond
  // float16's range.
  LstmEngine(const std::string& kind, const std::vector<int>& units,
             const std::map<std::string, TensorView>& weights,
             const std::string& dense_activation = "relu", const std::string& kernels = "auto",
             const std::string& precision = "float32");
  ~LstmEngine();
  LstmEngine(const LstmEngine&) = delete;
  LstmEngine& operator=(const LstmEngine&) = delete;

  const std::string& kind() const;
  int vocab_size() const;     // lstm_lm
  int n_features() const;     // paper
  int output_dim() const;
  std::string kernels() const;
  std::string precision() const;
  static std::vector<std::string> available_kernels();

  // Teacher-forced logits from a zero state: tokens [B, T] -> out [B, T, vocab].
  void logits(const std::int32_t* tokens, std::int64_t batch, std::int64_t steps, float* out,
              int threads = 0) const;
  // The logits after warming up on tokens [B, T] (T >= 1) -> out [B, vocab], as generate()
  // warms up on a primer (long ones layer by layer, in time blocks of at most `block_floats`
  // input projections; 0: the engine's default): equal to the last step of logits().
  void warm_up_logits(const std::int32_t* tokens, std::int64_t batch, std::int64_t steps,
                      float* out, int threads = 0, std::int64_t block_floats = 0) const;
  // Teacher-forced paper outputs: x [B, T, F] -> out [B, T, F].
  void predict(const float* x, std::int64_t batch, std::int64_t steps, float* out,
               int threads = 0) const;
  // Autoregressive paper generation: warm on primer [B, P, F] (P >= 1), then feed each output
  // back as the next input for `steps` steps -> out [B, steps, F].
  void generate_features(const float* primer, std::int64_t batch, std::int64_t primer_len,
                         std::int64_t steps, float* out, int threads = 0) const;
  // The sampling loop (see GenerateRequest). Thread-safe: the engine is never modified.
  void generate(const GenerateRequest& req) const;

  struct Impl;

 private:
  // generate() for fewer streams than threads: `team` threads share each step.
  void generate_team(const GenerateRequest& req, const Prepared& start, int team) const;

  Impl* impl_;
};

}  // namespace musgen::engine
