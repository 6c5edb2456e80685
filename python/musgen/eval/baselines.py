"""The baseline rows of a musical evaluation: pieces sampled from the Kneser-Ney n-gram (the
floor a model must beat) and pieces of the training split (the ceiling: real music of the same
kind), each set decoded to Scores like the model's own pieces.

The n-gram samples through the same loop as the engine (``musgen.engine.sampling``): the codec's
grammar masks every token that would not decode, the length budget, the generation rules and
the ending are those of :func:`musgen.generate`, and temperature, top-k, top-p and the Philox
seeds mean the same. Only the next-token distribution differs: the n-gram's instead of the LSTM's.
"""

from __future__ import annotations

import numpy as np

from .nll import split_pieces

__all__ = ["NgramSampler", "fit_ngram", "ngram_pieces", "split_scores", "training_pieces"]


class NgramSampler:
    """A Kneser-Ney model behind the engine's ``zero_state`` / ``step`` interface: the state is
    each stream's last ``max_order - 1`` tokens, the logits are the log-probabilities of every
    next token (float32, -inf where the model gives none)."""

    def __init__(self, model, order: int):
        self.model = model
        self.order = int(order)
        self.vocab_size = model.vocab_size

    def zero_state(self, n: int) -> np.ndarray:
        return np.full((n, self.model.max_order - 1), self.model.bos_id, np.int64)

    def step(self, tokens, state: np.ndarray):
        tokens = np.asarray(tokens, np.int64).reshape(-1, 1)
        state = np.concatenate([state, tokens], axis=1)[:, 1:] if state.shape[1] else state
        with np.errstate(divide="ignore"):
            logits = np.log(self.model.next_probs(state, self.order)).astype(np.float32)
        return logits, state


def fit_ngram(dataset, max_order: int = 5):
    """A Kneser-Ney model on the dataset's train split, its order chosen on the valid split
    (as ``musgen evaluate``'s NLL baseline) -> (model, order)."""
    from .ngram import KneserNey, best_order

    codec = dataset.codec
    train = [np.asarray(dataset.piece_tokens(i), np.int64) for i in split_pieces(dataset, "train")]
    valid = [np.asarray(dataset.piece_tokens(i), np.int64) for i in split_pieces(dataset, "valid")]
    model = KneserNey(train, codec.vocab_size, codec.bos_id, max_order=max_order)
    order, _ = best_order(model, valid)
    return model, order


def ngram_pieces(model, order: int, codec, *, n: int, length, temperature=1.0, top_k=None,
                 top_p=None, seed=None, progress=None, defaults: dict | None = None) -> list:
    """Sample ``n`` pieces from an n-gram model through the codec's grammar and the generation
    rules of :func:`musgen.generate` (the length asked at least, the same ending, and the
    rules a model's generation ``defaults`` turn on: ``max_rest``, ``max_voices``,
    ``min_voices``, so a baseline is held to what the model is held to) -> list of Score."""
    from .. import codec as codec_mod
    from ..engine._engine import LENGTH_UNITS, TokenStreams, _sampling_settings, stream_seeds
    from ..engine.rules import Rules
    from ..engine.sampling import numpy_generate
    from ..generation import decode_pieces, length_budget, parse_length, rest_steps, token_tables

    grammar = codec_mod.grammar(codec)
    tables = token_tables(codec)
    budget, unit, cap = length_budget(*parse_length(length), tables)
    defaults = defaults or {}
    rules = Rules(tables, ending="bar" if tables.has_bars else "beat",
                  max_voices=defaults.get("max_voices", 0),
                  min_voices=defaults.get("min_voices", 0),
                  max_rest_steps=rest_steps(defaults.get("max_rest"), tables.steps_per_beat))
    temps, ks, ps = _sampling_settings(n, temperature, top_k, top_p, codec.vocab_size)
    primer = np.full((n, 1), codec.bos_id, np.int32)
    streams, reasons = numpy_generate(
        NgramSampler(model, order), primer, grammar.table, grammar.start_state,
        grammar.can_end.astype(np.uint8), codec.eos_id, tables.clock_steps, tables.is_note,
        LENGTH_UNITS.index(unit), budget, cap, stream_seeds(seed, n), temps, ks, ps,
        progress=progress, rules=rules)
    scores, _ = decode_pieces(TokenStreams(streams, reasons=reasons), primer[0], codec)
    return scores


def split_scores(dataset, split: str, indices=None) -> list:
    """The pieces of a dataset split decoded from their tokens (so on the codec's grid, like
    generated pieces) -> list of Score; ``indices`` picks some of the split's pieces."""
    from .. import codec as codec_mod

    idx = split_pieces(dataset, split)
    if indices is not None:
        idx = [idx[int(i)] for i in indices]
    return [codec_mod.decode(np.asarray(dataset.piece_tokens(i)), dataset.codec) for i in idx]


def training_pieces(dataset, n: int, seed: int = 0) -> list:
    """``n`` pieces of the train split (all when it has no more), a seeded random choice."""
    count = len(split_pieces(dataset, "train"))
    if n >= count:
        return split_scores(dataset, "train")
    pick = np.sort(np.random.default_rng(seed).choice(count, size=n, replace=False))
    return split_scores(dataset, "train", pick)
