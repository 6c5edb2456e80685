"""The size and dropout of a default-preset model fitted to its corpus and time budget, for the
settings a user leaves unset (``units``, ``layers``, ``embedding_dim``, ``dropout``).

Two limits decide it:

* Compute. A model learns from optimizer steps, and a 2 x 256 LSTM on two CPU cores takes about
  a quarter of a second per step of 64 x 128 tokens; under a short budget it stops after a few
  epochs, far from converged (on 120 Nottingham tunes with 3 minutes: 5 epochs, 125 steps, test
  NLL 1.08 nats/token against the 5-gram's 0.89; ``bench/results/small_data.md``). The rule
  takes the largest model of ``LADDER`` that the budget gives at least ``MIN_STEPS`` steps, at
  the training throughput measured on a 2-core CPU (``MACS_PER_SECOND``): the runs that beat
  the n-gram (JSB Chorales, full Nottingham) had 550-820 steps. On faster machines the estimate
  is pessimistic, so a short budget there gets a smaller model than it could afford; an
  explicit ``units`` always wins.
* Data. Character-level LSTM practice (Karpathy's char-rnn notes; Zaremba et al. 2014, whose
  larger PTB models needed more dropout) keeps parameters within a small multiple of the
  training tokens and raises dropout when the model has more parameters than the data has
  tokens. Dropout goes from 0.2 at up to ``PARAMS_PER_TOKEN_FREE`` parameters per token to 0.3
  at twice that and more.

Corpora of chorale or folk size (10^5-10^6 tokens) with the default 25-minute budget keep the
default 2 x 256 model.
"""

from __future__ import annotations

import math

__all__ = ["LADDER", "MIN_STEPS", "MACS_PER_SECOND", "size_model", "lstm_parameters",
           "macs_per_token", "dropout_for"]

#: Candidate architectures, largest first: (layers, units, embedding_dim). The first is the
#: default preset's.
LADDER = ((2, 256, 64), (2, 192, 64), (2, 128, 64), (2, 96, 48), (2, 64, 32))
#: Optimizer steps a budget must afford.
MIN_STEPS = 500
#: Training throughput in forward multiply-adds per second (forward and backward pass together,
#: validation included), measured with the 2 x 256 model on a shared 2-core CPU.
MACS_PER_SECOND = 5.0e9
#: Parameters per training token up to which the default dropout is kept.
PARAMS_PER_TOKEN_FREE = 2.0
DEFAULT_DROPOUT = 0.2
MAX_DROPOUT = 0.3


def lstm_parameters(layers: int, units: int, embedding_dim: int, vocab_size: int) -> int:
    """Weights of embedding -> LSTM stack -> dense head (Keras layout, biases included)."""
    lstm = 0
    width = embedding_dim
    for _ in range(layers):
        lstm += 4 * units * (width + units + 1)
        width = units
    return vocab_size * embedding_dim + lstm + units * vocab_size + vocab_size


def macs_per_token(layers: int, units: int, embedding_dim: int, vocab_size: int) -> int:
    """Forward multiply-adds per token (LSTM gates and the head; the embedding is a lookup)."""
    return (lstm_parameters(layers, units, embedding_dim, vocab_size)
            - vocab_size * embedding_dim)


def dropout_for(parameters: int, tokens: int) -> float:
    """0.2 up to PARAMS_PER_TOKEN_FREE parameters per token, rising linearly in log2 of the
    ratio to 0.3 at twice that."""
    ratio = parameters / max(tokens, 1)
    if ratio <= PARAMS_PER_TOKEN_FREE:
        return DEFAULT_DROPOUT
    step = min(1.0, math.log2(ratio / PARAMS_PER_TOKEN_FREE))
    return round(DEFAULT_DROPOUT + (MAX_DROPOUT - DEFAULT_DROPOUT) * step, 2)


def size_model(train_tokens: int, vocab_size: int, max_minutes: float | None, *,
               batch_size: int, window: int) -> dict:
    """The architecture and dropout for ``train_tokens`` training tokens and the budget.

    Returns a dict: ``layers``, ``units``, ``embedding_dim``, ``dropout``, ``parameters``,
    ``train_tokens``, ``budget_steps`` (the steps the budget affords at the measured
    throughput; None without a budget) and ``reason`` (one line for the training log).
    """
    chosen = LADDER[0]
    steps = None
    if max_minutes is not None:
        for layers, units, emb in LADDER:
            per_step = batch_size * window * macs_per_token(layers, units, emb, vocab_size)
            steps = int(max_minutes * 60 * MACS_PER_SECOND / per_step)
            chosen = (layers, units, emb)
            if steps >= MIN_STEPS:
                break
    layers, units, emb = chosen
    params = lstm_parameters(layers, units, emb, vocab_size)
    dropout = dropout_for(params, train_tokens)
    budget = (f"{max_minutes:g} min affords ~{steps} steps of {batch_size}x{window} tokens"
              if steps is not None else "no time budget")
    reason = (f"{train_tokens} training tokens, {budget} -> {layers}x{units} LSTM, embedding "
              f"{emb}, {params / 1e6:.2f} M parameters ({params / max(train_tokens, 1):.1f} "
              f"per token), dropout {dropout:g}")
    return {"layers": layers, "units": units, "embedding_dim": emb, "dropout": dropout,
            "parameters": params, "train_tokens": int(train_tokens), "budget_steps": steps,
            "reason": reason}
