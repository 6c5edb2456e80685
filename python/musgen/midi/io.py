"""The one face of both MIDI backends: each function resolves ``backend=`` (or MUSGEN_BACKEND)
and calls the C++ reader and writer (``musgen._core``) or the pure-Python ones (``._python``,
``._writer``). Re-exported by ``musgen.midi``."""

from __future__ import annotations

import dataclasses
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, NamedTuple, Sequence

from .. import _backend
from .._io import atomic_write_bytes
from ..errors import MidiError, MidiWarning
from ..score import Score
from . import _python, _writer

__all__ = ["read", "read_bytes", "read_many", "write", "write_many", "encode",
           "without_overlaps", "ReadManyResult"]


class ReadManyResult(NamedTuple):
    """``read_many(..., on_error="skip")``: ``scores[i]`` was read from ``paths[i]`` (good files
    only, input order); ``errors`` lists (path, MidiError) of the files that failed."""

    scores: list
    paths: list
    errors: list


def _emit(where: str, messages: Sequence[str]) -> None:
    for msg in messages:
        warnings.warn(f"{where}: {msg}", MidiWarning, stacklevel=3)


def _python_parse(data: bytes, path: str | None) -> tuple[Score, list]:
    try:
        fields, warns = _python.parse(data)
    except MidiError as exc:
        raise MidiError(exc.reason, path, exc.offset) from None
    return Score(**fields), warns


def _read_file_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise MidiError(f"cannot read the file: {exc.strerror or exc}", path, None) from None


def _utf8_ok(name: str) -> bool:
    """The C++ reader takes UTF-8 paths; undecodable names (surrogate escapes) are read here."""
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _cpp_read(name: str):
    core = _backend.core()
    if _utf8_ok(name):
        return core.midi_read_file(name)
    try:
        return core.midi_read_bytes(_read_file_bytes(name), "")
    except MidiError as exc:
        raise MidiError(exc.reason, name, exc.offset) from None


def read_bytes(data: bytes, *, path: str | os.PathLike | None = None,
               backend: str | None = None) -> Score:
    """Parse a MIDI file held in memory.

    ``path`` only names the data in errors and warnings. See ``read``.
    """
    name = None if path is None else os.fsdecode(path)
    data = bytes(data)
    if _backend.resolve(backend) == "cpp":
        fields, warns = _backend.core().midi_read_bytes(data, name or "")
        score = Score(**fields)
    else:
        score, warns = _python_parse(data, name)
    _emit(name if name is not None else "<bytes>", warns)
    return score


def read(path: str | os.PathLike, *, backend: str | None = None) -> Score:
    """Read a Standard MIDI File (format 0, 1 or 2, or RIFF RMID) into a Score.

    Raises
    ------
    MidiError
        The file is unreadable or not valid MIDI (names the file, byte offset and problem).

    Warns
    -----
    MidiWarning
        Damage that was recovered (a truncated last track, a missing End-of-Track).
    """
    name = os.fsdecode(path)
    if _backend.resolve(backend) == "cpp":
        fields, warns = _cpp_read(name)
        score = Score(**fields)
    else:
        score, warns = _python_parse(_read_file_bytes(name), name)
    _emit(name, warns)
    return score


def read_many(paths: Iterable[str | os.PathLike], *, threads: int | None = None,
              backend: str | None = None, on_error: str = "raise"):
    """Read many files; the C++ backend reads them on ``threads`` threads (default: all CPUs).

    Returns ``list[Score]`` in input order with ``on_error="raise"`` (the first failing file in
    input order raises its MidiError), or a ``ReadManyResult`` with ``on_error="skip"``.
    Warnings are emitted in input order.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error={on_error!r}: expected 'raise' or 'skip'")
    if isinstance(paths, (str, bytes, os.PathLike)):  # would iterate a path's characters
        kind = "folder" if os.path.isdir(paths) else "path"
        raise TypeError(f"read_many: expected a list of file paths, got the {kind} "
                        f"{os.fsdecode(paths)!r}; for every MIDI file in a folder pass "
                        "musgen.data.find_midi_files(folder), for one file use read()")
    names = [os.fsdecode(p) for p in paths]
    if threads is None:
        threads = os.cpu_count() or 1
    if int(threads) < 1:
        raise ValueError(f"threads={threads}: expected >= 1")
    results: list = []  # per file: (Score, warnings) or MidiError
    if _backend.resolve(backend) == "cpp":
        ok = [n for n in names if _utf8_ok(n)]
        many = iter(_backend.core().midi_read_many(ok, int(threads)))
        for name in names:
            if not _utf8_ok(name):  # rare: read on its own
                try:
                    fields, warns = _cpp_read(name)
                    results.append((Score(**fields), warns))
                except MidiError as exc:
                    results.append(exc)
                continue
            fields, warns, err = next(many)
            if err is not None:
                reason, offset, path = err
                results.append(MidiError(reason, path, None if offset < 0 else offset))
            else:
                results.append((Score(**fields), warns))
    else:
        for name in names:
            try:
                results.append(_python_parse(_read_file_bytes(name), name))
            except MidiError as exc:
                results.append(exc)
    scores, good, errors = [], [], []
    for name, res in zip(names, results):
        if isinstance(res, MidiError):
            if on_error == "raise":
                raise res
            errors.append((name, res))
            continue
        _emit(name, res[1])
        scores.append(res[0])
        good.append(name)
    if on_error == "raise":
        return scores
    return ReadManyResult(scores, good, errors)


def without_overlaps(score: Score) -> Score:
    """The Score a written file reads back as: a note that starts while an earlier note of the
    same key (channel and pitch, in any track) still sounds ends the earlier one at the
    re-strike (several notes starting on one key at one tick: all but the last get zero length).
    No note is dropped; ``score`` itself is returned when nothing overlaps."""
    notes = _writer.without_overlaps(score.notes)
    if notes is score.notes:
        return score
    return dataclasses.replace(score, notes=notes)


def _text_bytes(text) -> bytes | None:
    if text is None:
        return None
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode("utf-8")
    raise TypeError(f"text: expected str, bytes or None, got {type(text).__name__}")


def _cpp_encode(score: Score, text: bytes | None) -> bytes:
    if score.smpte is not None:
        _writer._division(score)  # the SMPTE check and its message live in the Python writer
    return _backend.core().midi_encode(score, text)


def encode(score: Score, *, text: str | bytes | None = None, backend: str | None = None) -> bytes:
    """``score`` as the bytes of a type-1 Standard MIDI File (what ``write`` puts in a file);
    both backends give the same bytes."""
    if not isinstance(score, Score):
        raise TypeError(f"score: expected a musgen.Score, got {type(score).__name__}")
    data = _text_bytes(text)
    if _backend.resolve(backend) == "cpp":
        return _cpp_encode(score, data)
    return _writer.encode(score, data)


def write(score: Score, path: str | os.PathLike, *, text: str | bytes | None = None,
          fsync: bool = False, backend: str | None = None) -> None:
    """Write ``score`` as a type-1 Standard MIDI File, atomically (temporary file + rename).

    Reading the file back gives ``without_overlaps(score)``: the same notes (with their track
    indices), tempo map, time and key signatures, programs and track names, exactly, when no
    note starts while an earlier note of its key and channel sounds (true of every Score from
    ``read`` of a file without such overlaps, and of every Score read back from a written one).
    A file never holds two overlapping notes on one key and channel: an earlier note is ended
    at the re-strike.

    Parameters
    ----------
    text : str, bytes or None
        A Text meta event (type 0x01, UTF-8) at tick 0 of the first track, e.g. the seed and
        settings a piece was generated with; ``read`` ignores it, so the round trip is the same
        (a Score with no track at all gains one empty track to hold it).
    fsync : bool
        Flush the file to the disk before it replaces ``path`` (slower; off by default: the
        rename is still atomic for readers, but a power cut may lose the newest files).
    backend : "cpp", "python" or None
        The writer (both give the same bytes); None: MUSGEN_BACKEND, default auto.

    Raises ValueError for values MIDI cannot hold (nothing is written) and OSError naming
    ``path`` when it cannot be written (a missing folder, say).
    """
    atomic_write_bytes(path, encode(score, text=text, backend=backend), fsync=fsync)


def _texts_for(texts, n: int) -> list:
    if texts is None or isinstance(texts, (str, bytes)):
        return [_text_bytes(texts)] * n
    texts = list(texts)
    if len(texts) != n:
        raise ValueError(f"texts: {len(texts)} given for {n} scores")
    return [_text_bytes(t) for t in texts]


def write_many(scores: Sequence[Score], paths: Iterable[str | os.PathLike], *, texts=None,
               threads: int | None = None, fsync: bool = False,
               backend: str | None = None) -> None:
    """Write ``scores[i]`` to ``paths[i]`` on ``threads`` threads (default: all CPUs), each
    atomically, as ``write`` does.

    ``texts`` is None, one str for every file, or one str (or None) per score. Every score is
    encoded before any file is written, so a score MIDI cannot hold raises its ValueError
    (the first in input order) with nothing written; an OSError names the first file (in input
    order) that could not be written, the others are written.
    """
    scores = list(scores)
    names = [os.fsdecode(p) for p in paths]
    if len(names) != len(scores):
        raise ValueError(f"paths: {len(names)} given for {len(scores)} scores")
    for s in scores:
        if not isinstance(s, Score):
            raise TypeError(f"scores: expected musgen.Score items, got {type(s).__name__}")
    data = _texts_for(texts, len(scores))
    if threads is None:
        threads = os.cpu_count() or 1
    if int(threads) < 1:
        raise ValueError(f"threads={threads}: expected >= 1")
    if _backend.resolve(backend) == "cpp" and all(_utf8_ok(n) for n in names):
        for s in scores:
            if s.smpte is not None:
                _writer._division(s)
        results = _backend.core().midi_write_many(scores, names, data, int(threads), bool(fsync))
        for kind, message, errno in results:
            if kind == 1:
                raise ValueError(message)
        for (kind, message, errno), name in zip(results, names):
            if kind == 2:
                raise OSError(errno, os.strerror(errno), name)
        return
    encoded = [encode(s, text=t, backend=backend) for s, t in zip(scores, data)]
    with ThreadPoolExecutor(max_workers=int(threads)) as pool:
        # list(): the first failure in input order is raised, after every file was tried
        outcomes = list(pool.map(lambda job: _try_write(*job, fsync),
                                 zip(names, encoded)))
    for exc in outcomes:
        if exc is not None:
            raise exc


def _try_write(path: str, data: bytes, fsync: bool):
    try:
        atomic_write_bytes(path, data, fsync=fsync)
    except OSError as exc:
        return exc
    return None
