"""The page's generation controls: exactly the options ``musgen.generate`` accepts.

Each control is named after a parameter of ``generate``; a control whose parameter ``generate``
does not have is not offered (a test checks the two agree). ``parse_form`` turns the submitted
form into ``generate`` arguments, with a 400 naming the field for anything out of range.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from ..generation import generate, parse_length
from .errors import RequestError

__all__ = ["Limits", "CONTROLS", "offered_controls", "parse_form", "LENGTH_UNITS", "MAX_SEED"]

LENGTH_UNITS = ("beats", "notes", "tokens")
#: Seeds the page accepts: integers a browser's numbers hold exactly.
MAX_SEED = 2**53 - 1


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (the server's protection against runaway requests)."""

    max_upload_bytes: int = 1 << 20       # a primer MIDI file
    max_primer_notes: int = 4096
    max_pieces: int = 8                   # pieces per request
    max_beats: int = 256                  # length per piece, in each unit
    max_notes: int = 1024
    max_tokens: int = 4096
    max_stored_pieces: int = 64           # kept for the page to fetch, oldest dropped first
    concurrent_generations: int = 8       # requests generating at once, off the event loop

    def max_length(self, unit: str) -> int:
        return {"beats": self.max_beats, "notes": self.max_notes, "tokens": self.max_tokens}[unit]


#: Every control the page knows how to show; ``name`` is the ``generate`` parameter it sets.
CONTROLS = (
    {"name": "n", "label": "Pieces", "type": "int", "default": 2, "min": 1,
     "help": "how many pieces to generate at once"},
    {"name": "length", "label": "Length", "type": "length", "default": 32,
     "default_unit": "beats", "units": list(LENGTH_UNITS), "min": 1,
     "help": "length of each piece after the primer"},
    {"name": "temperature", "label": "Temperature", "type": "float", "default": 1.0,
     "min": 0.0, "max": 5.0, "step": 0.05,
     "help": "lower is safer and more repetitive, higher is wilder; 0 always takes the likeliest"},
    {"name": "top_k", "label": "Top-k", "type": "int", "default": None, "min": 0,
     "placeholder": "off",
     "help": "sample only among the k likeliest tokens (empty or 0: off)"},
    {"name": "top_p", "label": "Top-p", "type": "float", "default": None, "min": 0.0,
     "max": 1.0, "step": 0.01, "placeholder": "off",
     "help": "sample only among the likeliest tokens holding this much probability (empty: off)"},
    {"name": "seed", "label": "Seed", "type": "int", "default": None, "min": 0, "max": MAX_SEED,
     "placeholder": "random",
     "help": "the same seed and settings give the same pieces (empty: a new random seed)"},
    {"name": "primer", "label": "Primer MIDI", "type": "file", "default": None,
     "accept": ".mid,.midi,audio/midi",
     "help": "a MIDI file to continue (optional)"},
)


def offered_controls(limits: Limits, generate_fn=None) -> list:
    """The controls whose parameter ``generate_fn`` (default ``musgen.generate``) has, with
    this server's limits filled in."""
    params = inspect.signature(generate_fn or generate).parameters
    out = []
    for control in CONTROLS:
        if control["name"] not in params:
            continue
        c = dict(control)
        if c["name"] == "n":
            c["max"] = limits.max_pieces
        elif c["name"] == "length":
            c["max"] = {u: limits.max_length(u) for u in LENGTH_UNITS}
        elif c["name"] == "primer":
            c["max_bytes"] = limits.max_upload_bytes
        out.append(c)
    return out


def _number(fields: dict, name: str, kind, *, lo=None, hi=None, empty=None):
    """Field ``name`` as int/float within [lo, hi]; ``empty`` when missing or blank."""
    raw = fields.get(name)
    if raw is None or str(raw).strip() == "":
        return empty
    text = str(raw).strip()
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise RequestError(400, f"{name}: {text!r} is not {what}") from None
    if kind is float and value != value or value in (float("inf"), float("-inf")):
        raise RequestError(400, f"{name}: {text!r} is not a finite number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise RequestError(400, f"{name}: {value} is outside the allowed range {bounds}")
    return value


def _length(fields: dict, limits: Limits) -> str:
    unit = str(fields.get("length_unit") or "beats").strip().lower()
    if unit not in LENGTH_UNITS:
        raise RequestError(400, f"length_unit: {unit!r}, expected one of "
                                f"{', '.join(LENGTH_UNITS)}")
    amount = _number(fields, "length", int, lo=1, empty=32)
    if amount > limits.max_length(unit):
        raise RequestError(400, f"length: {amount} {unit} is more than the "
                                f"{limits.max_length(unit)} {unit} allowed per piece")
    length = f"{amount} {unit}"
    parse_length(length)  # the same rule generate applies
    return length


def _top_p(fields: dict):
    top_p = _number(fields, "top_p", float, lo=0.0, hi=1.0, empty=None)
    if top_p is not None and top_p <= 0.0:
        raise RequestError(400, f"top_p: {top_p} is outside the allowed range (0, 1]")
    return top_p


def parse_form(fields: dict, limits: Limits, generate_fn=None) -> dict:
    """The submitted form (field -> text) as keyword arguments of ``generate_fn`` (default
    ``musgen.generate``; the model and the primer file are the caller's). Only the options it
    has are passed, and unknown fields are refused, so a page never believes that an option it
    sent was applied."""
    offered = {c["name"] for c in offered_controls(limits, generate_fn)}
    known = offered | {"model"} | ({"length_unit"} if "length" in offered else set())
    unknown = sorted(set(fields) - known)
    if unknown:
        raise RequestError(400, f"{unknown[0]}: not an option of this server's generate(); "
                                f"the options are {', '.join(sorted(known))}")
    parsers = {
        "n": lambda: _pieces(fields, limits),
        "length": lambda: _length(fields, limits),
        "temperature": lambda: _number(fields, "temperature", float, lo=0.0, hi=5.0, empty=1.0),
        "top_k": lambda: _number(fields, "top_k", int, lo=0, empty=None) or None,
        "top_p": lambda: _top_p(fields),
        "seed": lambda: _number(fields, "seed", int, lo=0, hi=MAX_SEED, empty=None),
    }
    return {name: parse() for name, parse in parsers.items() if name in offered}


def _pieces(fields: dict, limits: Limits) -> int:
    n = _number(fields, "n", int, lo=1, empty=1)
    if n > limits.max_pieces:
        raise RequestError(400, f"n: {n} pieces is more than the {limits.max_pieces} allowed per "
                                "request")
    return n
