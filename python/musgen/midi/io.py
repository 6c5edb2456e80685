"""The one face of both MIDI backends: each function resolves ``backend=`` (or MUSGEN_BACKEND)
and calls the C++ reader (``musgen._core``) or the pure-Python one (``._python``); the writer is
``._writer``. Re-exported by ``musgen.midi``."""

from __future__ import annotations

import os
import warnings
from typing import Iterable, NamedTuple, Sequence

from .. import _backend
from .._io import atomic_write_bytes
from ..errors import MidiError, MidiWarning
from ..score import Score
from . import _python, _writer

__all__ = ["read", "read_bytes", "read_many", "write", "ReadManyResult"]


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


def _text_bytes(text) -> bytes | None:
    if text is None:
        return None
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode("utf-8")
    raise TypeError(f"text: expected str, bytes or None, got {type(text).__name__}")


def write(score: Score, path: str | os.PathLike, *, text: str | bytes | None = None) -> None:
    """Write ``score`` as a type-1 Standard MIDI File, atomically (temp file + rename), with
    ``text`` (UTF-8) as a Text meta event at tick 0 of the first track.

    Reading the file back gives the same notes (with their track indices), tempo map, time and
    key signatures, programs and track names, provided the notes are ones FIFO pairing can
    produce (on each key, a note that starts later never ends earlier), which every Score from
    ``read`` satisfies. Raises ValueError for values MIDI cannot hold, and OSError naming
    ``path`` when it cannot be written (a missing folder, say).
    """
    atomic_write_bytes(path, _writer.encode(score, _text_bytes(text)))
