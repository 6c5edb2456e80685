"""``prepare``: read every MIDI file of one or more corpora, encode it, and write a dataset
folder (format: ``musgen.data.format``), quarantining what cannot be kept and saying why.

New datasets use codec version 2 (``codec_version=1`` keeps the first codec). Every corpus
gets a style label (its folder name, or ``labels``), which version 2 writes as the piece's
Style token; each piece's conditions (key, density bin, instruments, tempo, meter) are stored
in ``pieces.jsonl`` too, so training and evaluation can select and compare by them."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .._progress import progress_bar
from ..errors import MidiWarning
from .files import check_split, folder_split, midi_relpaths, seeded_split
from .format import (
    DRUM_CHANNEL,
    MIDI_SUFFIXES,
    QUARANTINE_NAME,
    SPLIT_FOLDERS,
    SPLITS,
    DatasetError,
)
from .writer import DatasetWriter

__all__ = ["prepare", "format_summary", "style_label", "piece_attributes"]

_CHUNK_FILES = 256  # files read and encoded per round: bounds memory on big corpora


def _sha1_file(path: str) -> tuple[str, str | None]:
    """(sha1 hex, None) or ("", error text) when the file cannot be read at all."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha1(f.read()).hexdigest(), None
    except OSError as exc:
        return "", f"cannot read the file ({exc.strerror or exc})"


def _warnings_by_file(caught, paths: list[str]) -> dict[str, list[str]]:
    """MidiWarning texts (``"<path>: <what>"``) grouped by file; other warnings re-emitted."""
    out: dict[str, list[str]] = {}
    known = set(paths)
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, MidiWarning):
            # paths may themselves hold ": "; take the longest known prefix
            match = [p for p in known if text.startswith(p + ": ")]
            if match:
                p = max(match, key=len)
                out.setdefault(p, []).append(text[len(p) + 2:])
                continue
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out


def _midi_error_text(exc) -> str:
    """A MidiError without its path (the row names the file): ``byte N: what was wrong``."""
    reason = getattr(exc, "reason", None) or str(exc)
    offset = getattr(exc, "offset", None)
    return reason if offset is None else f"byte {offset}: {reason}"


def _without_drums(score):
    notes = score.notes
    drums = notes["channel"] == DRUM_CHANNEL
    if not drums.any():
        return score
    return dataclasses.replace(score, notes=notes[~drums])


def style_label(text: str) -> str:
    """A Style-token label from a folder name: letters, digits and _.+- kept, runs of other
    characters become one '-', at most 64 characters ('unknown' when nothing is left)."""
    label = re.sub(r"[^A-Za-z0-9_.+\-]+", "-", str(text)).strip("-.+_")[:64]
    return label if label and label != "unknown" else "unknown"


def _default_label(root: Path) -> str:
    """The corpus folder's name; for a folder named train/valid/test, its parent's; for a single
    file, its folder's."""
    path = root.resolve()
    if path.is_file():
        path = path.parent
    if path.name.lower() in SPLIT_FOLDERS and path.parent.name:
        path = path.parent
    return style_label(path.name)


def _source_names(roots: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for root in roots:
        base = root.resolve().name or "corpus"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


class _Corpora:
    """The files to read: (source name, file path, POSIX path relative to its corpus), in corpus
    order then sorted path order, and the split each corpus root's own name implies."""

    def __init__(self, corpora, labels=None):
        if isinstance(corpora, (str, os.PathLike)):
            corpora = [corpora]
        self.roots = [Path(c) for c in corpora]
        if not self.roots:
            raise DatasetError("prepare: no corpus given")
        self.names = _source_names(self.roots)
        self.labels = dict(zip(self.names, _labels(labels, self.roots)))
        # a corpus root named train/valid/test puts all its files there (a file given alone: no)
        self.root_names = {n: "" if r.is_file() else r.resolve().name
                           for n, r in zip(self.names, self.roots)}
        self.entries: list[tuple[str, str, str]] = []
        for name, root in zip(self.names, self.roots):
            if root.is_file():
                self.entries.append((name, str(root), root.name))
            elif root.is_dir():
                self.entries.extend((name, os.path.join(root, rel), rel)
                                    for rel in midi_relpaths(str(root)))
            else:
                raise DatasetError(f"corpus {str(root)!r}: no such folder or file")
        if not self.entries:
            where = ", ".join(repr(str(r)) for r in self.roots)
            raise DatasetError(f"no MIDI files ({', '.join(MIDI_SUFFIXES)}) found in {where}; "
                               "nothing to prepare")

    def sources(self) -> list[dict]:
        return [{"name": n, "path": str(r.resolve()),
                 "files": sum(e[0] == n for e in self.entries), "style": self.labels[n]}
                for n, r in zip(self.names, self.roots)]


def _labels(labels, roots: list[Path]) -> list[str]:
    """One style label per corpus: the folder names (None), one label for all (a str), or one
    each (a list as long as the corpora)."""
    if labels is None:
        return [_default_label(r) for r in roots]
    if isinstance(labels, str):
        labels = [labels] * len(roots)
    labels = list(labels)
    if len(labels) == 1:
        labels = labels * len(roots)
    if len(labels) != len(roots):
        raise DatasetError(f"labels: {len(labels)} labels for {len(roots)} corpora; give one "
                           "label for all of them or one per corpus")
    out = []
    for label in labels:
        clean = style_label(label)
        if clean != label:
            raise DatasetError(f"label {label!r}: a style label is 1-64 letters, digits or _.+- "
                               f"(and not 'unknown'), e.g. {clean!r}")
        out.append(clean)
    return out


class _Preparation:
    """One run of ``prepare``: files are hashed, read and encoded a chunk at a time (bounded
    memory), each kept piece streamed to the writer, each other file quarantined with why."""

    def __init__(self, corpora: _Corpora, writer: DatasetWriter, config, *, threads,
                 max_tokens, min_notes: int, backend, paper_features: bool = False):
        self.corpora, self.writer, self.config = corpora, writer, config
        self.threads, self.max_tokens, self.min_notes = threads, max_tokens, min_notes
        self.backend = backend
        self.paper_features = paper_features
        self.reasons: Counter = Counter()
        self.kept: list[dict] = []
        self.seen: dict[str, str] = {}  # sha1 -> label of the first file with those bytes
        self.n_recovered = 0
        self.n_shortened = 0
        self.first_skips: list[str] = []  # a few, for the error when nothing is kept

    def skip(self, label: str, reason: str, detail: str) -> None:
        self.reasons[reason] += 1
        self.writer.quarantine(label, f"{reason}: {detail}")
        if len(self.first_skips) < 2:
            self.first_skips.append(f"{label}: {reason}: {detail}")

    def check_kept(self) -> None:
        """A dataset with no piece is an error, not an empty dataset (an earlier dataset at the
        output stays as it was)."""
        if self.kept:
            return
        counts = ", ".join(f"{n} {r}" for r, n in sorted(self.reasons.items()))
        raise DatasetError(f"none of the {len(self.corpora.entries)} MIDI files could be kept "
                           f"({counts}); first: {'; '.join(self.first_skips)}")

    def run(self, quiet: bool) -> None:
        entries = self.corpora.entries
        workers = self.threads or os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=workers) as pool, \
                progress_bar(len(entries), "prepare", unit="files", quiet=quiet) as bar:
            hash_map = pool.map if workers > 1 else map  # one thread: no hand-over per file
            for lo in range(0, len(entries), _CHUNK_FILES):
                chunk = entries[lo:lo + _CHUNK_FILES]
                todo = self.new_files(chunk, list(hash_map(_sha1_file, [e[1] for e in chunk])))
                self.keep(self.read(todo))
                bar.update(len(chunk))

    def new_files(self, chunk, hashes) -> list[tuple]:
        """The chunk's readable files whose bytes were not seen before: (label, path, rel,
        sha1, source name)."""
        todo = []
        for (name, f, rel), (sha1, err) in zip(chunk, hashes):
            label = f"{name}/{rel}"
            if err is not None:
                self.skip(label, "unreadable", err)
            elif sha1 in self.seen:
                self.skip(label, "duplicate", f"same bytes as {self.seen[sha1]}")
            else:
                self.seen[sha1] = label
                todo.append((label, f, rel, sha1, name))
        return todo

    def read(self, todo: list[tuple]) -> list[tuple]:
        """Read the files on all threads; record recovered damage; drop drums and files with
        too few notes. Returns (entry, score) of the files to encode."""
        from .. import midi

        paths = [t[1] for t in todo]
        with warnings.catch_warnings(record=True) as caught:
            # damage the reader recovered from: recorded per file, not printed
            warnings.simplefilter("always", MidiWarning)
            result = midi.read_many(paths, threads=self.threads, backend=self.backend,
                                    on_error="skip")
        recovered = _warnings_by_file(caught, paths)
        by_path = dict(zip(result.paths, result.scores))
        errors = {str(p): e for p, e in result.errors}
        need = max(1, self.min_notes)
        good = []
        for entry in todo:
            label, f = entry[0], entry[1]
            score = by_path.get(f)
            if score is None:
                self.skip(label, "unreadable", _midi_error_text(errors.get(f)))
                continue
            for text in recovered.get(f, ()):
                self.writer.recovered(label, text)
            self.n_recovered += bool(recovered.get(f))
            if not self.config.keep_drums:
                score = _without_drums(score)
            if score.n_notes < need:
                self.skip(label, "no_notes", f"{score.n_notes} notes"
                          + ("" if self.config.keep_drums else " without drums")
                          + f", need at least {need}")
                continue
            good.append((entry, score))
        return good

    def keep(self, good: list[tuple]) -> None:
        """Encode the scores (C++ threads) and stream every piece that fits to the writer; what
        encode shortened or dropped goes to recovered.tsv."""
        from .. import codec

        config = self.config
        styles = [self.corpora.labels[g[0][4]] for g in good]
        reports: list = []
        token_lists = codec.encode_many(
            [g[1] for g in good], config, threads=self.threads, backend=self.backend,
            styles=styles if config.version == 2 else None, reports=reports)
        for ((label, _f, rel, sha1, name), score), tokens, report, style in zip(
                good, token_lists, reports, styles):
            if tokens.shape[0] <= 2 or not _has_notes(tokens, config):
                self.skip(label, "no_notes", f"none of the {score.n_notes} notes is in the "
                          f"codec's pitch range {tuple(config.pitch_range)}")
                continue
            if self.max_tokens is not None and tokens.shape[0] > self.max_tokens:
                self.skip(label, "too_long", f"{tokens.shape[0]} tokens > max_tokens "
                          f"{self.max_tokens}")
                continue
            if report:
                self.writer.recovered(label, "encode: " + codec.describe_report(report, config))
                self.n_shortened += 1
            split_name = folder_split(rel, self.corpora.root_names[name])
            meta = {"source": name, "path": rel, "sha1": sha1, "split": split_name,
                    "split_by": "folder" if split_name else "seed", "style": style,
                    **piece_attributes(tokens, config, check=False)}
            # drums were removed in read() unless the codec keeps them
            paper = (codec.paper_features(score, keep_drums=config.keep_drums)
                     if self.paper_features else None)
            self.kept.append(self.writer.add(meta, np.asarray(tokens, dtype=np.int32),
                                             score.n_notes, paper))

    def split_the_rest(self, seed: int, ratios) -> int:
        """Seeded split of the pieces no folder placed (by piece: windows never straddle
        splits). Returns how many there were."""
        free = [p for p in self.kept if p["split"] is None]
        for piece, name in zip(free, seeded_split([p["sha1"] for p in free], seed, ratios)):
            piece["split"] = name
        return len(free)

    def splits(self) -> dict:
        out = {s: {"pieces": 0, "tokens": 0, "notes": 0} for s in SPLITS}
        for p in self.kept:
            out[p["split"]]["pieces"] += 1
            out[p["split"]]["tokens"] += p["length"]
            out[p["split"]]["notes"] += p["n_notes"]
        return out

    def files(self) -> dict:
        return {"found": len(self.corpora.entries), "kept": len(self.kept),
                "skipped": dict(sorted(self.reasons.items())), "recovered": self.n_recovered,
                "shortened": self.n_shortened}


def _has_notes(tokens: np.ndarray, config) -> bool:
    """Whether a stream holds a note (version 2 streams always hold a header)."""
    if config.version == 1:
        return True
    return bool(((tokens >= config.pitch_base) & (tokens < config.velocity_base)).any())


def piece_attributes(tokens: np.ndarray, config, *, check: bool = True) -> dict:
    """A version-2 piece's conditions as ``pieces.jsonl`` stores them: ``key`` (e.g. "Dm"),
    ``density`` (bin), ``programs`` (one per part, 128 = drums), ``tempo_bpm`` (the initial
    tempo's bin centre) and ``time_signature`` ("N/D"); version 1: none of them.
    ``check=False``: the tokens come straight from ``encode`` (no grammar check)."""
    if config.version != 2:
        return {}
    from ..codec import read_header
    from ..codec.names import KEY_NAMES

    h = read_header(tokens, config, check=check)
    return {"key": KEY_NAMES[h["key"]], "density": h["density"], "programs": h["programs"],
            "tempo_bpm": round(float(config.tempo_centres_bpm[h["tempo"]]), 2),
            "time_signature": h["time_signature"]}


def _check_options(config, split, threads, max_tokens, keep_drums, codec_version, labels):
    """Validated (config, split ratios): every argument is checked before any file is read.
    Version 2 configs get the corpora's style labels."""
    from .. import codec

    ratios = check_split(split)
    if max_tokens is not None and int(max_tokens) < 2:
        raise DatasetError(f"max_tokens={max_tokens!r}: expected at least 2 (BOS and EOS)")
    if threads is not None and int(threads) < 1:
        raise DatasetError(f"threads={threads!r}: expected a positive number or None")
    if codec_version is not None and codec_version not in codec.VERSIONS:
        raise DatasetError(f"codec_version={codec_version!r}: expected one of "
                           f"{', '.join(map(str, codec.VERSIONS))}")
    if config is None:
        config = codec.default_config(version=codec_version or 2)
    elif codec_version is not None and codec_version != config.version:
        raise DatasetError(f"codec_version={codec_version} but the config given is version "
                           f"{config.version}")
    if keep_drums is not None and bool(keep_drums) != config.keep_drums:
        config = dataclasses.replace(config, keep_drums=bool(keep_drums))
    if config.version == 2:
        new = sorted(set(labels) - set(config.styles) - {"unknown"})
        if new:
            config = dataclasses.replace(config, styles=tuple(config.styles) + tuple(new))
    return config, ratios


def prepare(
    corpora: str | os.PathLike | Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    config=None,
    seed: int = 0,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    threads: int | None = None,
    max_tokens: int | None = None,
    min_notes: int = 1,
    keep_drums: bool | None = None,
    quiet: bool = False,
    backend: str | None = None,
    paper_features: bool = False,
    codec_version: int | None = None,
    labels: str | Sequence[str] | None = None,
    fsync: bool = False,
) -> dict:
    """Read every MIDI file under ``corpora``, encode it and write a dataset folder at ``output``.

    Parameters
    ----------
    corpora : path or list of paths
        Folders (searched recursively for .mid .midi .rmi .kar, any case) or single files.
    output : path
        The dataset folder; written atomically (an earlier dataset there is replaced).
    config : CodecConfig, optional
        Tokenization; ``codec.default_config(version=codec_version or 2)`` when None. Saved in
        ``dataset.json``; a version-2 config gains the corpora's style labels.
    seed : int
        Keys the split of files that are not under a train/valid/test folder.
    split : (train, valid, test)
        Ratios of the seeded split (normalized to sum to 1).
    threads : int, optional
        Reader and encoder threads; None uses every core.
    max_tokens : int, optional
        Files encoding to more tokens are quarantined (``too_long``).
    min_notes : int
        Files with fewer notes (after drums are removed) are quarantined (``no_notes``).
    keep_drums : bool, optional
        Keep channel-10 percussion as DrumPitch tokens; None follows ``config.keep_drums``
        (version 2: kept; version 1: dropped before anything is counted or encoded).
    quiet : bool
        No progress bar.
    backend : str, optional
        "cpp" or "python" for reading and encoding (default: MUSGEN_BACKEND / auto).
    paper_features : bool
        Also store the ``paper`` preset's per-note features (``paper.npy``). Off by default:
        only that preset reads them, and a dataset without them computes them from its source
        files when asked (``Dataset.paper_features``); store them when the sources may move.
    codec_version : {1, 2}, optional
        The codec of a new config (default 2); must match ``config`` when both are given.
    labels : str or list of str, optional
        Style label of every corpus (one for all, or one per corpus); default: each corpus
        folder's name (its parent's for a folder named train/valid/test).
    fsync : bool
        Flush the dataset's files to the disk before it takes the output's place (survives a
        power cut; the exchange is atomic either way).

    Returns
    -------
    dict
        Summary: ``output``, ``files`` (found, kept, skipped per reason), ``splits`` (pieces,
        tokens, notes per split), ``seconds``.
    """
    from .. import __version__

    t0 = time.perf_counter()
    corpus = _Corpora(corpora, labels)
    config, ratios = _check_options(config, split, threads, max_tokens, keep_drums,
                                    codec_version, list(corpus.labels.values()))
    writer = DatasetWriter(output, paper_features=paper_features, fsync=fsync)
    try:
        run = _Preparation(corpus, writer, config, threads=threads, max_tokens=max_tokens,
                           min_notes=min_notes, backend=backend, paper_features=paper_features)
        run.run(quiet)
        run.check_kept()
        n_seeded = run.split_the_rest(seed, ratios)
        kept = run.kept
        info = {
            "codec": config.to_dict(),
            "seed": int(seed),
            "split": {"ratios": list(ratios), "folder_names": sorted(SPLIT_FOLDERS),
                      "by_folder": sum(p["split_by"] == "folder" for p in kept),
                      "by_seed": n_seeded},
            "splits": run.splits(),
            "sources": corpus.sources(),
            "files": run.files(),
            "totals": {"pieces": len(kept), "tokens": sum(p["length"] for p in kept),
                       "notes": sum(p["n_notes"] for p in kept)},
            "options": {"max_tokens": max_tokens, "min_notes": int(min_notes),
                        "keep_drums": bool(config.keep_drums),
                        "paper_features": bool(paper_features)},
            "musgen_version": __version__,
        }
        path = writer.finish(info)
    except BaseException:
        writer.abort()
        raise
    return {"output": str(path), "files": info["files"], "splits": info["splits"],
            "seconds": time.perf_counter() - t0}


def format_summary(summary: dict) -> str:
    """The human-readable summary ``musgen prepare`` prints."""
    f = summary["files"]
    lines = [f"dataset: {summary['output']}",
             f"files: {f['found']} found, {f['kept']} kept, "
             f"{sum(f['skipped'].values())} skipped"]
    for reason, n in f["skipped"].items():
        lines.append(f"  skipped {reason}: {n}")
    if f["skipped"]:
        lines.append(f"  every skipped file and why: "
                     f"{os.path.join(summary['output'], QUARANTINE_NAME)}")
    if f.get("recovered"):
        lines.append(f"  kept after recovering from damage: {f['recovered']} (recovered.tsv)")
    if f.get("shortened"):
        lines.append(f"  kept with silences, notes or parts shortened: {f['shortened']} "
                     "(recovered.tsv)")
    for name, s in summary["splits"].items():
        lines.append(f"{name:>6}: {s['pieces']} pieces, {s['tokens']} tokens, {s['notes']} notes")
    lines.append(f"time: {summary['seconds']:.2f} s")
    return "\n".join(lines)
