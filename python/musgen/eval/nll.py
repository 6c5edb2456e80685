"""Held-out evaluation of a model directory, without TensorFlow: NLL per token and per note,
perplexity, accuracy and NLL per token type, next to an n-gram and the paper-preset baselines.

How the LSTM is scored: each piece of the split is run through ``musgen.engine.load(model_dir)
.logits`` whole, from the zero state at its BOS (teacher forcing), so every target token
``tokens[1:]`` (EOS included) is predicted from the complete history of its own piece and is
counted exactly once. Pieces are batched by length and padded with PAD at the end; the LSTM is
causal, so the padding never changes the logits of real positions, and padded positions are
not scored.

What is comparable:

* LSTM and n-gram: same tokens, same split, same targets; NLL per token and per note are on
  the same scale (nats).
* Paper preset: a regression model (MSE on pitch, velocity, seconds to the next onset; no
  durations). To put it on a likelihood scale, a Gaussian per feature is fitted on its
  validation residuals and its mass over each observed value's quantization cell is taken:
  pitch to the semitone, velocity to the codec's velocity bin, time delta to the codec's grid
  step at 120 BPM. Its "NLL per note" is the sum of the three. It models less than the token
  model (no durations, not the first note of a piece) and scores a tempo-dependent time grid,
  so it is a coarse reference, not an exact match: a lower token-model NLL per note is a fair
  win, a lower paper NLL would not be a fair loss.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..codec.vocab import TYPE_NAMES, TYPE_VELOCITY  # the token types of both versions
from ..data.format import piece_field

__all__ = ["evaluate", "format_report", "ngram_baseline", "write_json", "split_pieces",
           "count_notes", "velocity_bins"]


def _open_dataset(dataset):
    if isinstance(dataset, (str, Path)):
        from ..data import Dataset

        return Dataset.open(dataset)
    return dataset



def split_pieces(dataset, split: str) -> list:
    from ..data import DatasetError

    idx = [int(i) for i in dataset.split_indices(split)]
    if not idx:
        raise DatasetError(f"dataset {getattr(dataset, 'path', '?')}: split {split!r} has no "
                           "pieces")
    return idx


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


class _Tally:
    """Sums of NLL (nats) and counts, overall and per target-token type."""

    def __init__(self, types: np.ndarray):
        self.types = types
        self.nll = 0.0
        self.count = 0
        self.correct = 0
        self.by_type: dict = {}

    def add(self, targets: np.ndarray, nll: np.ndarray, correct=None) -> None:
        self.nll += float(nll.sum())
        self.count += int(len(targets))
        if correct is not None:
            self.correct += int(correct.sum())
        tt = self.types[targets]
        for t in np.unique(tt):
            sel = tt == t
            s, c = self.by_type.get(int(t), (0.0, 0))
            self.by_type[int(t)] = (s + float(nll[sel].sum()), c + int(sel.sum()))

    def result(self, n_notes: int, with_accuracy: bool) -> dict:
        per_tok = self.nll / max(self.count, 1)
        out = {"nll_per_token": per_tok, "perplexity": math.exp(per_tok),
               "nll_per_note": self.nll / max(n_notes, 1), "total_nll": self.nll,
               "n_targets": self.count,
               "nll_per_token_type": {TYPE_NAMES.get(t, str(t)): s / c
                                      for t, (s, c) in sorted(self.by_type.items())},
               "targets_per_token_type": {TYPE_NAMES.get(t, str(t)): c
                                          for t, (s, c) in sorted(self.by_type.items())}}
        vel_sum, vel_count = self.by_type.get(TYPE_VELOCITY, (0.0, 0))
        if vel_count and self.count > vel_count:
            # Where velocity is constant its tokens are free to predict and pull the plain
            # mean down; this is the mean over every other target.
            out["nll_per_token_without_velocity"] = ((self.nll - vel_sum)
                                                     / (self.count - vel_count))
        if with_accuracy:
            out["accuracy"] = self.correct / max(self.count, 1)
        return out


def _lstm_scores(engine, pieces: list, pad: int, types: np.ndarray, batch: int = 16) -> _Tally:
    tally = _Tally(types)
    order = sorted(range(len(pieces)), key=lambda j: len(pieces[j]))
    for b in range(0, len(order), batch):
        group = [pieces[j] for j in order[b:b + batch]]
        T = max(len(p) for p in group) - 1
        inputs = np.full((len(group), T), pad, np.int32)
        for r, p in enumerate(group):
            inputs[r, :len(p) - 1] = p[:-1]
        logits = np.asarray(engine.logits(inputs))
        if logits.shape[:2] != (len(group), T):
            raise RuntimeError(f"engine.logits returned shape {logits.shape}, expected "
                               f"({len(group)}, {T}, vocab)")
        for r, p in enumerate(group):
            n = len(p) - 1
            lp = _log_softmax(logits[r, :n])
            tgt = np.asarray(p[1:], np.int64)
            nll = -lp[np.arange(n), tgt]
            tally.add(tgt, nll, lp.argmax(axis=-1) == tgt)
    return tally


def velocity_bins(dataset, split: str = "train") -> dict:
    """How many distinct Velocity tokens ``split`` holds. With one (every note in the same
    velocity bin, as in JSB Chorales) they carry no information and a model predicts them at
    almost no cost, so NLL per token flatters it; reports then give the NLL per token without
    velocity tokens beside the plain figure."""
    types = np.asarray(dataset.codec.token_types)
    seen: set = set()
    count = 0
    for i in split_pieces(dataset, split):
        tokens = np.asarray(dataset.piece_tokens(i), np.int64)
        vel = tokens[types[tokens] == TYPE_VELOCITY]
        count += int(vel.size)
        seen.update(int(t) for t in np.unique(vel))
    single = count > 0 and len(seen) == 1
    out = {"split": split, "bins": len(seen), "tokens": count, "single": single}
    if single:
        out["note"] = (f"the {split} split has a single velocity bin: velocity tokens cost "
                       "almost nothing to predict, so compare NLL per token without them")
    return out


def count_notes(dataset, idx: list) -> int:
    return int(sum(int(piece_field(dataset.pieces[i], "n_notes")) for i in idx))


def _piece_tokens(dataset, i: int, normalize: bool, dtype) -> np.ndarray:
    """Piece ``i``'s tokens, moved to C major / A minor with ``normalize`` (as a
    ``key_normalize`` model was trained on them)."""
    tokens = np.asarray(dataset.piece_tokens(i))
    if normalize:
        tokens = dataset.codec.normalize_key(tokens)[0]
    return tokens.astype(dtype)


def ngram_baseline(dataset, split: str, max_order: int = 5, *, normalize: bool = False) -> dict:
    """Interpolated Kneser-Ney n-gram trained on ``train``, order chosen on ``valid``
    (``normalize``: on every piece moved to C major / A minor, as a key-normalized model)."""
    from .ngram import KneserNey, best_order

    codec = dataset.codec
    seqs = {s: [_piece_tokens(dataset, i, normalize, np.int64)
                for i in split_pieces(dataset, s)] for s in ("train", "valid", split)}
    model = KneserNey(seqs["train"], codec.vocab_size, codec.bos_id, max_order=max_order)
    order, valid_scores = best_order(model, seqs["valid"])
    types = np.asarray(codec.token_types)
    tally = _Tally(types)
    for s in seqs[split]:
        p = model.target_probs([s], order)
        tally.add(s[1:], -np.log(p))
    out = tally.result(count_notes(dataset, split_pieces(dataset, split)), with_accuracy=False)
    out.update({"order": order, "valid_nll_per_token_by_order":
                {str(k): v for k, v in valid_scores.items()}, "smoothing":
                "interpolated Kneser-Ney, one discount per order"})
    return out


# ----------------------------------------------------------------------------- public
def evaluate(model_dir, dataset, *, split: str = "test", backend: str | None = None,
             baselines: bool = True, paper_model=None, max_order: int = 5) -> dict:
    """Held-out metrics of a token model on ``split`` of ``dataset``.

    Returns a JSON-serializable dict: ``model`` (nll_per_token, nll_per_note, perplexity,
    accuracy, nll_per_token_type and targets_per_token_type over the types present,
    nll_per_token_without_velocity, counts), ``velocity`` (``velocity_bins`` of the train
    split), and with ``baselines``: ``ngram`` (best order on the valid split, the same
    breakdown) and, when ``paper_model`` (a paper-preset model directory) is given, ``paper``.
    NLLs are in nats.
    """
    from .. import engine as _engine

    dataset = _open_dataset(dataset)
    idx = split_pieces(dataset, split)
    if baselines:  # the n-gram trains on train and picks its order on valid: check them now
        split_pieces(dataset, "train")
        split_pieces(dataset, "valid")
    eng = _engine.load(model_dir, backend=backend)
    codec = dataset.codec
    saved = eng.config.get("codec")
    if saved != codec.to_dict():
        from ..errors import ModelFormatError

        diff = sorted(k for k in set(saved or {}) | set(codec.to_dict())
                      if (saved or {}).get(k) != codec.to_dict().get(k))
        raise ModelFormatError(f"{model_dir}: the model's codec differs from the dataset's "
                               f"(fields {diff}); evaluate on a dataset prepared with the "
                               "model's codec")
    types = np.asarray(codec.token_types)
    # A key-normalized model is scored on the pieces moved as it was trained on them (a
    # one-to-one change of the notes given the piece's Key condition), and so is its n-gram.
    from ..keyplan import key_normalized

    normalize = key_normalized(eng.config)
    pieces = [_piece_tokens(dataset, i, normalize, np.int32) for i in idx]
    pieces = [p for p in pieces if len(p) >= 2]
    n_notes = count_notes(dataset, idx)
    result = {"model_dir": str(model_dir), "dataset": str(getattr(dataset, "path", "")),
              "split": split, "n_pieces": len(pieces), "n_notes": n_notes,
              "method": "whole pieces from BOS, teacher-forced, each target counted once"
              + (", every piece moved to C major or A minor (the model is key-normalized)"
                 if normalize else ""),
              "model": _lstm_scores(eng, pieces, int(codec.pad_id), types)
              .result(n_notes, with_accuracy=True)}
    if len(dataset.split_indices("train")):
        result["velocity"] = velocity_bins(dataset, "train")
    if baselines:
        ng = ngram_baseline(dataset, split, max_order=max_order, normalize=normalize)
        result["ngram"] = ng
        result["improvement_over_ngram"] = 1.0 - (result["model"]["nll_per_token"]
                                                  / ng["nll_per_token"])
        if paper_model is not None:
            from .paper import paper_baseline

            result["paper"] = paper_baseline(paper_model, dataset, split, backend=backend)
    return result


def format_report(result: dict) -> str:
    """A plain-text table of an ``evaluate`` result: NLL per token, per note and per token type
    (types with targets in the split only), and, where the training split has one velocity
    bin, NLL per token without the velocity tokens."""
    rows = [("model", result["model"])]
    if "ngram" in result:
        rows.append((f"{result['ngram']['order']}-gram KN", result["ngram"]))
    velocity = result.get("velocity") or {}
    apart = bool(velocity.get("single")) and all("nll_per_token_without_velocity" in r
                                                 for _, r in rows)
    types = sorted({t for _, r in rows for t in r["nll_per_token_type"]})
    head = (f"{'':14s} {'NLL/token':>10s} " + (f"{'w/o vel':>10s} " if apart else "")
            + f"{'NLL/note':>10s} {'ppl':>8s} {'acc':>7s} "
            + " ".join(f"{t[:8]:>8s}" for t in types))
    lines = [f"split {result['split']}: {result['n_pieces']} pieces, {result['n_notes']} notes, "
             f"{result['model']['n_targets']} target tokens (NLL in nats; per token type: the "
             "mean over that type's targets)", head]
    for name, r in rows:
        acc = f"{r['accuracy']:7.3f}" if "accuracy" in r else f"{'-':>7s}"
        plain = (f"{r['nll_per_token_without_velocity']:10.4f} " if apart else "")
        lines.append(f"{name:14s} {r['nll_per_token']:10.4f} {plain}{r['nll_per_note']:10.4f} "
                     f"{r['perplexity']:8.3f} {acc} "
                     + " ".join(_type_cell(r, t) for t in types))
    if apart:
        share = result["model"]["targets_per_token_type"].get("velocity", 0)
        lines.append(f"velocity: {velocity['note']} ({share} of "
                     f"{result['model']['n_targets']} targets are velocity tokens; 'w/o vel' "
                     "is the NLL per token over the others)")
    if "improvement_over_ngram" in result:
        lines.append(f"model vs best n-gram: {_comparison(result['improvement_over_ngram'])}")
    if "paper" in result:
        p = result["paper"]
        lines.append(f"paper preset: MSE (normalized) {p['mse_normalized']:.4f}, discretized "
                     f"Gaussian NLL per note {p['nll_per_note']:.4f} "
                     f"(pitch+velocity+time only; see docs)")
    return "\n".join(lines)


def _type_cell(row: dict, name: str) -> str:
    value = row["nll_per_token_type"].get(name)
    return f"{'-':>8s}" if value is None else f"{value:8.4f}"


def _comparison(improvement: float) -> str:
    """``improvement`` = 1 - model NLL / n-gram NLL, in words whose sign cannot mislead."""
    pct = 100.0 * improvement
    if round(pct, 1) == 0:
        return "the same NLL per token (within 0.05%)"
    if pct > 0:
        return f"{pct:.1f}% lower NLL per token (better)"
    return f"{-pct:.1f}% higher NLL per token (worse)"


def write_json(result: dict, path) -> None:
    from .._io import atomic_write_bytes

    atomic_write_bytes(Path(path), (json.dumps(result, indent=2, sort_keys=True) + "\n")
                       .encode())
