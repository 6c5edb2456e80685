"""The size, dropout and batch of a default-preset model fitted to its corpus and time budget,
for the settings a user leaves unset (``units``, ``layers``, ``embedding_dim``, ``dropout``,
``batch_size``). Explicit settings always win; the paper preset is never sized.

What decides it (measurements in ``bench/results/small_data.md``: the first 120 Nottingham
tunes, about 10^5 training tokens, 3 minutes on a shared 2-core CPU):

* Updates within the budget. A model learns per optimizer step, and under a short budget the
  default batch of 64 stops after a few hundred steps, far from converged (2 x 256: 6 epochs,
  144 steps, test NLL 1.33 nats/token against the 5-gram's 0.91). Smaller batches make more
  steps of the same tokens in the same time (Keskar et al. 2017 also find that they generalize
  better); measured: batch 16 reached 1.15 in 3 epochs. The rule takes the largest batch of
  ``BATCHES`` whose steps within the budget reach ``TARGET_STEPS`` (the runs that beat the
  n-gram on JSB Chorales and Nottingham, ``training.md``, made 1 600-2 000 steps), estimating
  a step's time from a fixed overhead plus multiply-adds at the throughput measured on a 2-core
  CPU. A budget of 25 minutes keeps batch 64 for any model of the ladder; on faster machines the estimate is
  pessimistic (a smaller batch than needed, never a broken run).
* Capacity against data. Character-level LSTM practice (Karpathy's char-rnn notes) keeps the
  parameters within a small multiple of the training tokens, and larger models on small data
  need more dropout (Zaremba et al. 2014). The model is the largest of ``LADDER`` with at most
  ``MAX_PARAMS_PER_TOKEN`` parameters per training token: shrinking is the last resort, as on
  10^5 tokens under 3 minutes the 2 x 96 model lost to the 2 x 256 one (1.58 against 1.33 nats
  per token; it learns less per step than it gains in speed). Dropout goes from 0.2 at up to
  ``PARAMS_PER_TOKEN_FREE`` parameters per token to 0.3 at twice that, when the budget allows
  the many epochs in which a model overfits (``OVERFIT_EPOCHS``); a run that stops after a few
  epochs is underfit, and more dropout would only slow it.

Corpora of chorale or folk size (10^5-10^6 tokens) under the default 25-minute budget keep the
default 2 x 256 model and batch 64.
"""

from __future__ import annotations

import math

__all__ = ["LADDER", "BATCHES", "TARGET_STEPS", "size_model", "lstm_parameters",
           "macs_per_token", "dropout_for", "step_seconds"]

#: Candidate architectures, largest first: (layers, units, embedding_dim). The first is the
#: default preset's.
LADDER = ((2, 256, 64), (2, 192, 64), (2, 128, 64), (2, 96, 48), (2, 64, 32))
#: Candidate batch sizes, largest (the default) first.
BATCHES = (64, 32, 16, 8)
#: Optimizer steps a budget should afford.
TARGET_STEPS = 1000
#: Parameters per training token a model of the ladder may have.
MAX_PARAMS_PER_TOKEN = 20.0
#: Parameters per training token up to which the default dropout is kept.
PARAMS_PER_TOKEN_FREE = 2.0
#: Epochs the budget must afford before dropout is raised above the default.
OVERFIT_EPOCHS = 10
DEFAULT_DROPOUT = 0.2
MAX_DROPOUT = 0.3
#: A training step's time on a shared 2-core CPU: a fixed overhead plus a time per forward
#: multiply-add of the batch (forward and backward together; fitted to 2 x 256 at batch 64,
#: about 0.6 s, batch 16, about 0.35 s, and 2 x 96 at batch 64, about 0.27 s).
STEP_OVERHEAD_SECONDS = 0.2
SECONDS_PER_MAC = 5e-11


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


def step_seconds(batch_size: int, window: int, macs: int) -> float:
    """Estimated seconds of one training step on a 2-core CPU."""
    return STEP_OVERHEAD_SECONDS + SECONDS_PER_MAC * batch_size * window * macs


def dropout_for(parameters: int, tokens: int, epochs: float | None = None) -> float:
    """0.2 up to PARAMS_PER_TOKEN_FREE parameters per token, rising linearly in log2 of the
    ratio to 0.3 at twice that; 0.2 whenever the budget affords fewer than OVERFIT_EPOCHS
    epochs (``epochs``; None: no budget)."""
    ratio = parameters / max(tokens, 1)
    if ratio <= PARAMS_PER_TOKEN_FREE or (epochs is not None and epochs < OVERFIT_EPOCHS):
        return DEFAULT_DROPOUT
    step = min(1.0, math.log2(ratio / PARAMS_PER_TOKEN_FREE))
    return round(DEFAULT_DROPOUT + (MAX_DROPOUT - DEFAULT_DROPOUT) * step, 2)


def _architecture(tokens: int, vocab_size: int) -> tuple:
    for arch in LADDER:
        if lstm_parameters(*arch, vocab_size) <= MAX_PARAMS_PER_TOKEN * tokens:
            return arch
    return LADDER[-1]


def _batch(max_minutes, window: int, macs: int) -> tuple:
    """(batch size, steps the budget affords at it or None without a budget)."""
    if max_minutes is None:
        return BATCHES[0], None
    for batch in BATCHES:
        steps = int(max_minutes * 60 / step_seconds(batch, window, macs))
        if steps >= TARGET_STEPS:
            break
    return batch, steps


def size_model(train_tokens: int, vocab_size: int, max_minutes: float | None, *,
               window: int, stride: int, layers: int | None = None, units: int | None = None,
               embedding_dim: int | None = None, batch_size: int | None = None) -> dict:
    """Architecture, batch and dropout for ``train_tokens`` training tokens and the budget.

    Settings given (not None) are kept and the others follow from them. Returns a dict:
    ``layers``, ``units``, ``embedding_dim``, ``batch_size``, ``dropout``, ``parameters``,
    ``train_tokens``, ``budget_steps`` (steps the budget affords at the estimated step time;
    None without a budget), ``budget_epochs`` and ``reason`` (one line for the training log).
    """
    arch = _architecture(train_tokens, vocab_size)
    layers = arch[0] if layers is None else layers
    units = arch[1] if units is None else units
    embedding_dim = arch[2] if embedding_dim is None else embedding_dim
    macs = macs_per_token(layers, units, embedding_dim, vocab_size)
    if batch_size is None:
        batch_size, steps = _batch(max_minutes, window, macs)
    else:
        steps = (None if max_minutes is None else
                 int(max_minutes * 60 / step_seconds(batch_size, window, macs)))
    steps_per_epoch = max(1.0, train_tokens / stride / batch_size)
    epochs = None if steps is None else steps / steps_per_epoch
    params = lstm_parameters(layers, units, embedding_dim, vocab_size)
    dropout = dropout_for(params, train_tokens, epochs)
    budget = ("no time budget" if steps is None else
              f"{max_minutes:g} min afford ~{steps} steps, ~{epochs:.0f} epochs")
    reason = (f"{train_tokens} training tokens, {budget} -> {layers}x{units} LSTM, embedding "
              f"{embedding_dim}, batch {batch_size}, {params / 1e6:.2f} M parameters "
              f"({params / max(train_tokens, 1):.1f} per token), dropout {dropout:g}")
    return {"layers": layers, "units": units, "embedding_dim": embedding_dim,
            "batch_size": batch_size, "dropout": dropout, "parameters": params,
            "train_tokens": int(train_tokens), "budget_steps": steps,
            "budget_epochs": None if epochs is None else round(epochs, 1), "reason": reason}
