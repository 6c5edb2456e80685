"""Musical evaluation of sets of pieces: features of every piece (``metrics``), each set
compared with a reference set (``compare``), copies from a training set (``memorization``);
and the two entry points, ``score_files`` (any MIDI files: ``musgen metrics``) and
``evaluate_music`` (a model on a dataset split with its baselines: ``musgen evaluate --music``).

The result is one JSON-ready dict (``MusicEvaluation.result``):

* per feature name (``metrics.FEATURES``): ``mean``, ``reference_mean``, ``overlap_area``,
  ``kl`` and the other fields of :func:`compare.compare_feature`, for the generated set;
* ``memorization``: ``copy_rate_8``, ``copy_rate_12``, ``copy_rate_16``,
  ``longest_run_median``, ``longest_run_max`` of the generated set against the training set,
  with ``reference`` (the reference set against the training set: the honest level) and, when
  asked, ``intervals`` (the same, transposition-invariant); None without a training set;
* ``baselines``: the same per-feature and memorization fields for each baseline set
  (``ngram``: pieces sampled from the n-gram; ``train``: training pieces, the ceiling);
* ``sets``, ``features``, ``settings`` and, from ``evaluate_music``, ``nll``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EvaluationError
from .compare import compare_tables
from .memorization import CopyIndex, memorization, pitch_sequence
from .metrics import FEATURES, feature_table

__all__ = ["PieceSet", "MusicEvaluation", "piece_set", "collect_midi_paths", "read_piece_set",
           "compare_sets", "score_files", "evaluate_music", "summary", "FORMAT",
           "FORMAT_VERSION", "target_beats_of"]

FORMAT = "musgen.music_metrics"
FORMAT_VERSION = 1
_LIST_SUFFIXES = (".txt", ".lst", ".list")
#: The Markov baseline's order: tokens of context (a Kneser-Ney model of order MARKOV_ORDER + 1).
MARKOV_ORDER = 3
_MEMORIZATION_KEYS = ("copy_rate_8", "copy_rate_12", "copy_rate_16", "longest_run_median",
                      "longest_run_max", "n_pieces")


@dataclass(eq=False)
class PieceSet:
    """One set of pieces and what was measured on it.

    ``table`` is ``metrics.feature_table`` of ``scores``; ``sequences`` and ``intervals`` are
    their memorization sequences (pitches, and steps between them); ``paths`` name the files
    when the pieces came from files.
    """

    name: str
    label: str
    scores: list
    table: dict
    sequences: list
    paths: list | None = None
    longest_run: list | None = None  # per piece, filled by compare_sets

    @property
    def n_notes(self) -> int:
        return int(sum(s.size for s in self.sequences))


@dataclass(eq=False)
class MusicEvaluation:
    """The JSON-ready ``result`` and the sets it was computed from (for reports)."""

    result: dict
    sets: dict = field(default_factory=dict)


def piece_set(name: str, label: str, scores, *, paths=None, target_beats=None,
              quiet: bool = True) -> PieceSet:
    """Measure the features of ``scores`` (a progress bar unless ``quiet``)."""
    from .._progress import progress_bar

    scores = list(scores)
    if not scores:
        raise EvaluationError(f"{label}: no pieces to evaluate")
    with progress_bar(len(scores), f"features of {label}", unit="pieces", quiet=quiet) as bar:
        table = feature_table(scores, target_beats=target_beats, progress=bar.update)
    return PieceSet(name, label, scores, table, [pitch_sequence(s) for s in scores],
                    list(paths) if paths is not None else None)


# ----------------------------------------------------------------------------- files
def collect_midi_paths(sources) -> list:
    """MIDI files named by ``sources``: folders (every MIDI file below, sorted), MIDI files,
    or list files (``.txt``/``.lst``: one path per line, relative to the list's folder; blank
    lines and ``#`` comments skipped). Raises EvaluationError for a missing source."""
    from ..data.files import find_midi_files
    from ..data.format import MIDI_SUFFIXES

    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    paths = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            paths += find_midi_files(src)
        elif src.is_file() and src.suffix.lower() in _LIST_SUFFIXES:
            for n, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                p = Path(line) if Path(line).is_absolute() else src.parent / line
                if not p.is_file():
                    raise EvaluationError(f"{src}:{n}: no such MIDI file {line!r}")
                paths.append(p)
        elif src.is_file():
            if src.suffix.lower() not in MIDI_SUFFIXES:
                raise EvaluationError(
                    f"{src}: expected a folder, a MIDI file ({', '.join(MIDI_SUFFIXES)}) or a "
                    f"list of paths ({', '.join(_LIST_SUFFIXES)})")
            paths.append(src)
        else:
            raise EvaluationError(f"{src}: no such folder or file")
    return paths


def read_piece_set(name: str, label: str, sources, *, skip_bad: bool = False,
                   target_beats=None, quiet: bool = True) -> PieceSet:
    """Read the MIDI files of ``sources`` and measure them. A file that cannot be read raises
    its MidiError, or with ``skip_bad`` is left out (a one-line warning per file on stderr)."""
    import sys

    from .. import midi

    paths = collect_midi_paths(sources)
    if not paths:
        raise EvaluationError(f"{label}: no MIDI files in {', '.join(map(str, sources))}")
    if skip_bad:
        got = midi.read_many(paths, on_error="skip")
        for path, err in got.errors:
            print(f"musgen: skipping {path}: {err}", file=sys.stderr)
        scores, paths = got.scores, got.paths
    else:
        scores = midi.read_many(paths)
    return piece_set(name, label, scores, paths=[str(p) for p in paths],
                     target_beats=target_beats, quiet=quiet)


# ----------------------------------------------------------------------------- comparing
def _clean(value):
    """JSON-ready: NaN and infinities become None, NumPy scalars and arrays plain Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _memorization_row(pieces: PieceSet, index, interval_index) -> dict:
    row = memorization(pieces.sequences, index)
    pieces.longest_run = row.pop("longest_run")
    if interval_index is not None:
        inter = memorization([np.diff(s) for s in pieces.sequences], interval_index,
                             intervals=True)
        inter.pop("longest_run")
        row["intervals"] = inter
    return row


def _set_info(s: PieceSet) -> dict:
    lengths = s.table["length_beats"]
    return {"label": s.label, "n_pieces": len(s.scores), "n_notes": s.n_notes,
            "mean_length_beats": float(np.mean(lengths)) if len(lengths) else None}


def compare_sets(generated: PieceSet, reference: PieceSet, *, train: PieceSet | None = None,
                 baselines=(), intervals: bool = False, seed: int = 0,
                 settings: dict | None = None) -> MusicEvaluation:
    """Compare ``generated`` and every set of ``baselines`` with ``reference``, and measure
    their copies from ``train`` (also the reference's: the honest level) -> MusicEvaluation.

    A baseline named ``train`` (training pieces) gets no memorization row: it is the training
    set itself.
    """
    index = interval_index = None
    if train is not None:
        index = CopyIndex(train.sequences)
        if intervals:
            interval_index = CopyIndex([np.diff(s) for s in train.sequences])
    result: dict = {"format": FORMAT, "version": FORMAT_VERSION, "features": list(FEATURES)}
    result.update(compare_tables(generated.table, reference.table, seed=seed))
    if index is not None:
        mem = _memorization_row(generated, index, interval_index)
        ref = _memorization_row(reference, index, interval_index)
        if "intervals" in ref:
            mem["intervals"]["reference"] = ref.pop("intervals")
        mem["reference"] = ref
        result["memorization"] = mem
    else:
        result["memorization"] = None
    rows = {}
    for b in baselines:
        row = compare_tables(b.table, reference.table, seed=seed)
        row["memorization"] = (None if index is None or b.name == "train"
                               else _memorization_row(b, index, interval_index))
        rows[b.name] = row
    result["baselines"] = rows
    sets = {"generated": generated, "reference": reference}
    sets.update({b.name: b for b in baselines})
    if train is not None:
        sets["training"] = train
    result["sets"] = {name: _set_info(s) for name, s in sets.items()}
    result["settings"] = dict(settings or {})
    return MusicEvaluation(_clean(result), sets)


def target_beats_of(length) -> float | None:
    """The asked length in beats of a length like "64 beats" (None for tokens or notes, or
    no length)."""
    from ..generation import parse_length

    if length is None:
        return None
    amount, unit = parse_length(length)
    return float(amount) if unit == "beats" else None


def score_files(generated, reference, *, train=None, length=None, intervals: bool = False,
                skip_bad: bool = False, seed: int = 0, quiet: bool = True,
                settings: dict | None = None) -> MusicEvaluation:
    """Score any generator's MIDI files against reference files (and copies from training
    files): the work of ``musgen metrics``. Sources as :func:`collect_midi_paths`; ``length``
    ("64 beats") is the length the pieces were asked for, for ``ended_early``."""
    target = target_beats_of(length)
    gen = read_piece_set("generated", "generated", generated, skip_bad=skip_bad,
                         target_beats=target, quiet=quiet)
    ref = read_piece_set("reference", "reference", reference, skip_bad=skip_bad, quiet=quiet)
    tr = (read_piece_set("training", "training", train, skip_bad=skip_bad, quiet=quiet)
          if train else None)
    info = {"generated": [str(s) for s in _as_list(generated)],
            "reference": [str(s) for s in _as_list(reference)],
            "train": [str(s) for s in _as_list(train)] if train else None, "length": length,
            "intervals": intervals}
    info.update(settings or {})
    return compare_sets(gen, ref, train=tr, intervals=intervals, seed=seed, settings=info)


def _as_list(sources) -> list:
    return [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)


# ----------------------------------------------------------------------------- a model
_NLL_KEYS = ("nll_per_token", "nll_per_note", "perplexity", "nll_per_token_type",
             "targets_per_token_type", "nll_per_token_without_velocity")


def _nll_summary(nll: dict) -> dict:
    out = {"model": {k: nll["model"][k] for k in _NLL_KEYS + ("accuracy",)
                     if k in nll["model"]}}
    if "ngram" in nll:
        out["ngram"] = {k: nll["ngram"][k] for k in _NLL_KEYS + ("order",) if k in nll["ngram"]}
    out.update({"split": nll["split"], "n_pieces": nll["n_pieces"], "n_notes": nll["n_notes"]})
    if "velocity" in nll:
        out["velocity"] = nll["velocity"]
    return out


def _generation_defaults(model) -> dict:
    """The generation defaults of ``model`` (a loaded Engine, a folder or a shipped name)."""
    from ..generation import generation_defaults
    from ..modeldir import load_config
    from ..modelzoo import resolve_model

    if hasattr(model, "config"):
        return generation_defaults(model.config, getattr(model, "path", None))
    path = resolve_model(model)
    return generation_defaults(load_config(path), path)


def evaluate_music(model, dataset, *, split: str = "test", n: int = 200, length="64 beats",
                   temperature=1.0, top_k=None, top_p=None, seed: int = 0,
                   backend: str | None = None, baselines: bool = True, intervals: bool = False,
                   max_order: int = 5, quiet: bool = True,
                   settings: dict | None = None) -> MusicEvaluation:
    """Generate ``n`` pieces with ``model`` and compare them with ``split`` of ``dataset``.

    The reference and training pieces are the dataset's, decoded from their tokens (on the
    codec's grid, as generated pieces are). With ``baselines``: ``n`` pieces sampled from the
    dataset's Kneser-Ney n-gram with the same sampling settings and seed and the rules the
    model's generation defaults turn on (the floor), as many from its order-3 Markov chain
    (``markov``), and up to
    ``n`` training pieces (the ceiling), each compared with the split the same way; and the
    held-out NLL of the model and of the n-gram (``nll``).
    """
    from .. import generation
    from .._progress import progress_bar
    from .baselines import fit_ngram, ngram_pieces, split_scores, training_pieces
    from .nll import _open_dataset
    from .nll import evaluate as evaluate_nll

    from ..engine._engine import _sampling_settings

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n={n!r}: expected an integer >= 2 (a set needs two pieces to compare)")
    _sampling_settings(n, temperature, top_k, top_p, 1)  # bad settings fail before any work
    generation.parse_length(length)
    dataset = _open_dataset(dataset)
    target = target_beats_of(length)
    nll = evaluate_nll(model, dataset, split=split, backend=backend, baselines=baselines,
                       max_order=max_order)  # also checks that model and dataset share a codec
    reference = piece_set("reference", f"{split} split", split_scores(dataset, split),
                          quiet=quiet)
    train = piece_set("training", "train split", split_scores(dataset, "train"), quiet=quiet)
    with progress_bar(None, "generating", unit="tok", quiet=quiet) as bar:
        scores = generation.generate(model, n=n, length=length, temperature=temperature,
                                     top_k=top_k, top_p=top_p, seed=seed, backend=backend,
                                     progress=bar.update)
    generated = piece_set("generated", "model", scores, target_beats=target, quiet=quiet)
    rows = []
    if baselines:
        # the baselines are held to the rules the model's own generation defaults turn on
        defaults = _generation_defaults(model)
        ngram, order = fit_ngram(dataset, max_order=max_order)
        with progress_bar(None, f"sampling the {order}-gram", unit="tok", quiet=quiet) as bar:
            sampled = ngram_pieces(ngram, order, dataset.codec, n=n, length=length,
                                   temperature=temperature, top_k=top_k, top_p=top_p,
                                   seed=seed, progress=bar.update, defaults=defaults)
        rows.append(piece_set("ngram", f"{order}-gram", sampled,
                              target_beats=target, quiet=quiet))
        # The order-3 Markov chain (the next token from the last three: the same Kneser-Ney
        # counts at order 4), the classic symbolic-music baseline, sampled the same way.
        markov = min(MARKOV_ORDER + 1, ngram.max_order)
        with progress_bar(None, "sampling the order-3 Markov chain", unit="tok",
                          quiet=quiet) as bar:
            sampled = ngram_pieces(ngram, markov, dataset.codec, n=n, length=length,
                                   temperature=temperature, top_k=top_k, top_p=top_p,
                                   seed=seed, progress=bar.update, defaults=defaults)
        rows.append(piece_set("markov", f"order-{markov - 1} Markov", sampled,
                              target_beats=target, quiet=quiet))
        rows.append(piece_set("train", "train pieces", training_pieces(dataset, n, seed),
                              quiet=quiet))
    info = {"model": str(model), "dataset": str(getattr(dataset, "path", dataset)),
            "split": split, "n": int(n), "length": str(length), "temperature": temperature,
            "top_k": top_k, "top_p": top_p, "seed": seed, "intervals": intervals}
    info.update(settings or {})
    evaluation = compare_sets(generated, reference, train=train, baselines=rows,
                              intervals=intervals, seed=seed, settings=info)
    evaluation.result["nll"] = _clean(_nll_summary(nll))
    return evaluation


def summary(result: dict) -> dict:
    """The contract's figures of a result, nothing else (for a model card's ``metrics.json``):
    per feature ``mean``, ``reference_mean``, ``overlap_area``, ``kl`` for the generated set and
    each baseline, the memorization figures, the sets' sizes and the settings."""
    keys = ("mean", "reference_mean", "overlap_area", "kl")

    def features(row: dict) -> dict:
        return {name: {k: row[name].get(k) for k in keys} for name in result["features"]}

    def memo(m):
        if not m:
            return None
        out = {k: m.get(k) for k in _MEMORIZATION_KEYS}
        if m.get("reference"):
            out["reference"] = memo(m["reference"])
        return out

    return {"features": features(result), "memorization": memo(result.get("memorization")),
            "baselines": {name: {"features": features(row),
                                 "memorization": memo(row.get("memorization"))}
                          for name, row in result.get("baselines", {}).items()},
            "sets": result.get("sets"), "settings": result.get("settings")}
