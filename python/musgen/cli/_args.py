"""Argument value types shared by every subcommand: each checks one kind of value when the
arguments are parsed, before any work, and refuses a bad one with a message that names the value
and what was expected (argparse adds the option: ``argument --top-p: ...``).

Use them as ``type=`` of ``add_argument``; argparse also passes string defaults through ``type``,
so give these options non-string defaults (None or a number).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import NoReturn

__all__ = [
    "positive_int",
    "non_negative_int",
    "int_range",
    "seed",
    "probability",
    "unit_interval",
    "finite_non_negative_float",
    "positive_float",
    "length",
    "existing_path",
    "existing_file",
    "existing_dir",
    "model_ref",
    "output_dir",
    "output_file",
]

#: Seeds key the Philox generator: unsigned 64-bit.
SEED_LIMIT = 2 ** 64


def _fail(text: str, expected: str) -> NoReturn:
    raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")


def _named(name: str):
    """Give a type function the name argparse shows in its own messages."""
    def wrap(fn):
        fn.__name__ = name
        return fn
    return wrap


def _int(text: str, expected: str) -> int:
    try:
        return int(str(text).strip(), 10)
    except ValueError:
        _fail(text, expected)


def _float(text: str, expected: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        _fail(text, expected)
    if not math.isfinite(value):
        _fail(text, expected)
    return value


@_named("positive integer")
def positive_int(text: str) -> int:
    """An integer >= 1 (a count: pieces, epochs, units, threads...)."""
    value = _int(text, "a positive integer (1, 2, ...)")
    if value < 1:
        _fail(text, "a positive integer (1, 2, ...)")
    return value


@_named("non-negative integer")
def non_negative_int(text: str) -> int:
    """An integer >= 0 (0 usually meaning off)."""
    value = _int(text, "an integer >= 0")
    if value < 0:
        _fail(text, "an integer >= 0")
    return value


def int_range(lo: int, hi: int):
    """An integer in ``[lo, hi]``."""
    expected = f"an integer from {lo} to {hi}"

    @_named(f"integer in [{lo}, {hi}]")
    def parse(text: str) -> int:
        value = _int(text, expected)
        if not lo <= value <= hi:
            _fail(text, expected)
        return value
    return parse


@_named("seed")
def seed(text: str) -> int:
    """A random seed: an integer in [0, 2**64)."""
    expected = f"an integer from 0 to {SEED_LIMIT - 1}"
    value = _int(text, expected)
    if not 0 <= value < SEED_LIMIT:
        _fail(text, expected)
    return value


@_named("probability")
def probability(text: str) -> float:
    """A probability mass in (0, 1] (top-p)."""
    expected = "a number in (0, 1], such as 0.9"
    value = _float(text, expected)
    if not 0.0 < value <= 1.0:
        _fail(text, expected)
    return value


@_named("fraction")
def unit_interval(text: str) -> float:
    """A fraction in [0, 1) (dropout)."""
    expected = "a number in [0, 1), such as 0.2"
    value = _float(text, expected)
    if not 0.0 <= value < 1.0:
        _fail(text, expected)
    return value


@_named("non-negative number")
def finite_non_negative_float(text: str) -> float:
    """A finite number >= 0 (temperature: 0 is greedy)."""
    expected = "a finite number >= 0"
    value = _float(text, expected)
    if value < 0.0:
        _fail(text, expected)
    return value


@_named("positive number")
def positive_float(text: str) -> float:
    """A finite number > 0 (learning rate)."""
    expected = "a finite number > 0"
    value = _float(text, expected)
    if value <= 0.0:
        _fail(text, expected)
    return value


def _auto_or_off(text: str):
    """``"auto"`` for auto, None for off (either case), else False: a value to parse."""
    word = str(text).strip().lower()
    return {"auto": "auto", "off": None}.get(word, False)


@_named("voices")
def voices(text: str):
    """``generate --max-voices/--min-voices``: 1..32, ``auto`` (the model's) or ``off``."""
    word = _auto_or_off(text)
    if word is not False:
        return word
    expected = "an integer from 1 to 32, 'auto' (the model's) or 'off'"
    value = _int(text, expected)
    if not 1 <= value <= 32:
        _fail(text, expected)
    return value


@_named("rest")
def rest(text: str):
    """``generate --max-rest``: beats >= 0, ``auto`` (the model's) or ``off``."""
    word = _auto_or_off(text)
    if word is not False:
        return word
    expected = "beats >= 0, 'auto' (the model's) or 'off'"
    value = _float(text, expected)
    if value < 0.0:
        _fail(text, expected)
    return value


@_named("length")
def length(text: str) -> str:
    """A generation length: ``N``, ``N tokens``, ``N notes`` or ``N beats`` with N >= 1.

    Returns the text unchanged (``generate`` parses it again); only its validity is checked.
    """
    from ..generation import parse_length

    expected = "a positive number followed by tokens, notes or beats, such as '64 notes'"
    try:
        amount, _unit = parse_length(str(text))
    except ValueError:
        _fail(text, expected)
    if amount < 1:
        _fail(text, expected)
    return str(text)


@_named("existing path")
def existing_path(text: str) -> str:
    """A file or folder that exists."""
    if not os.path.exists(text):
        _fail(text, "an existing file or folder (not found)")
    return text


@_named("existing file")
def existing_file(text: str) -> str:
    """A file that exists."""
    if os.path.isdir(text):
        _fail(text, "a file, found a folder")
    if not os.path.isfile(text):
        _fail(text, "an existing file (not found)")
    return text


@_named("existing folder")
def existing_dir(text: str) -> str:
    """A folder that exists."""
    if os.path.isfile(text):
        _fail(text, "a folder, found a file")
    if not os.path.isdir(text):
        _fail(text, "an existing folder (not found)")
    return text


@_named("model")
def model_ref(text: str) -> str:
    """A model directory that exists, or the name of a model shipped with musgen."""
    from ..errors import ModelFormatError
    from ..modelzoo import is_name, resolve_model, shipped_names

    if os.path.isfile(text):
        _fail(text, "a model directory, found a file")
    if not os.path.isdir(text) and not is_name(text):
        _fail(text, f"an existing model folder or a shipped model's name (shipped: "
                    f"{', '.join(shipped_names()) or 'none installed'})")
    try:
        resolve_model(text)
    except ModelFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _writable_parent(text: str, path: Path) -> None:
    """The nearest existing ancestor of ``path`` is a folder we may write in."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        _fail(text, f"a path under a folder ({str(parent)!r} is a file)")
    if not os.access(parent, os.W_OK | os.X_OK):
        _fail(text, f"a path where files can be written ({str(parent)!r} is not writable)")


@_named("output folder")
def output_dir(text: str) -> str:
    """A folder to write (created if missing): not an existing file."""
    if not text:
        _fail(text, "a folder name")
    path = Path(text)
    if path.exists() and not path.is_dir():
        _fail(text, "a folder to write, found a file")
    _writable_parent(text, path)
    return text


@_named("output file")
def output_file(text: str) -> str:
    """A file to write: its folder must exist (checked now, not after the work), and the path
    must not be a folder."""
    if not text:
        _fail(text, "a file name")
    path = Path(text)
    if path.is_dir():
        _fail(text, "a file to write, found a folder")
    if not path.parent.is_dir():
        _fail(text, f"a file in an existing folder ({str(path.parent)!r} does not exist)")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        _fail(text, f"a file in a writable folder ({str(path.parent)!r} is not writable)")
    return text
