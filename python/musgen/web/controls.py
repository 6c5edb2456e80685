"""The page's generation controls: exactly the options ``musgen.generate`` accepts.

Each control is named after a parameter of ``generate``; a control whose parameter ``generate``
does not have is not offered (a test checks the two agree). ``parse_form`` turns the submitted
form into ``generate`` arguments, with a 400 naming the field for anything out of range.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from ..generation import ENDINGS, generate, parse_length
from .errors import RequestError

__all__ = ["Limits", "CONTROLS", "offered_controls", "parse_form", "model_features",
           "LENGTH_UNITS", "MAX_SEED"]

LENGTH_UNITS = ("beats", "notes", "tokens")
#: Keys the page suggests (any key ``generate`` understands may be typed).
KEY_SUGGESTIONS = tuple(f"{t} {m}" for m in ("major", "minor")
                        for t in ("C", "G", "D", "A", "E", "F", "Bb", "Eb"))
#: The longest text a text control accepts (a key, a range, an instrument list).
MAX_TEXT = 200
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
    {"name": "key", "label": "Key", "type": "text", "default": None, "placeholder": "any",
     "suggestions": list(KEY_SUGGESTIONS),
     "help": "key or scale the notes keep to, e.g. D minor, Bb, F# dorian (empty: the model's "
             "choice)"},
    {"name": "scale_strictness", "label": "Scale strictness", "type": "float", "default": None,
     "min": 0.0, "max": 1.0, "step": 0.05, "placeholder": "1",
     "help": "with a key: 1 allows only its scale; lower makes other notes only rarer"},
    {"name": "pitch_range", "label": "Pitch range", "type": "text", "default": None,
     "placeholder": "any", "help": "lowest-highest pitch, e.g. 48-84 or C3-C6"},
    {"name": "max_voices", "label": "Most voices", "type": "int", "default": None, "min": 1,
     "max": 32, "placeholder": "model's", "help": "most notes sounding at once"},
    {"name": "min_voices", "label": "Fewest voices", "type": "int", "default": None, "min": 1,
     "max": 32, "placeholder": "model's",
     "help": "fewest notes sounding from the first note on: time waits for the notes"},
    {"name": "max_rest", "label": "Longest rest", "type": "text", "default": "auto",
     "placeholder": "auto",
     "help": "longest silence after the first note, in beats: auto keeps to the rests of the "
             "model's corpus, off allows any"},
    {"name": "density", "label": "Density", "type": "float", "default": None, "min": 0.0,
     "max": 32.0, "step": 0.25, "placeholder": "model's",
     "help": "target notes per beat"},
    {"name": "style", "label": "Style", "type": "choice", "default": None, "needs": "styles",
     "help": "a style label the model was trained with"},
    {"name": "bpm", "label": "Tempo (BPM)", "type": "float", "default": None, "min": 20.0,
     "max": 400.0, "step": 1, "placeholder": "model's", "needs": "tempo",
     "help": "beats per minute"},
    {"name": "instruments", "label": "Instruments", "type": "text", "default": None,
     "placeholder": "model's choice", "needs": "instruments",
     "help": "the parts, in order: General MIDI names or numbers and 'drums', comma-separated"},
    {"name": "ending", "label": "Ending", "type": "choice", "default": "auto",
     "choices": list(ENDINGS),
     "help": "after the length: close at the next bar or beat, let the model end within a few "
             "beats, or stop as soon as the tokens may end"},
    {"name": "allow_early_end", "label": "Allow early end", "type": "bool", "default": False,
     "help": "let the model end a piece before the asked length"},
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


def model_features(codec: dict) -> list:
    """What a model's codec (its config's ``codec`` mapping) can be asked for beyond notes:
    "styles", "tempo", "instruments" (codec version 2), matching the controls' ``needs``."""
    if int(codec.get("version", codec.get("format_version", 1)) or 1) != 2:
        return []
    return ["styles", "tempo", "instruments"]


def _text(fields: dict, name: str):
    """Field ``name`` as stripped text (None when missing or blank), at most MAX_TEXT long."""
    raw = fields.get(name)
    if raw is None or str(raw).strip() == "":
        return None
    text = str(raw).strip()
    if len(text) > MAX_TEXT:
        raise RequestError(400, f"{name}: {len(text)} characters, more than the {MAX_TEXT} "
                                "allowed")
    return text


def _flag(fields: dict, name: str) -> bool:
    raw = fields.get(name)
    text = "" if raw is None else str(raw).strip().lower()
    if text in ("", "0", "false", "off", "no"):
        return False
    if text in ("1", "true", "on", "yes"):
        return True
    raise RequestError(400, f"{name}: {text!r}, expected on or off")


def _instruments(fields: dict):
    text = _text(fields, "instruments")
    if text is None:
        return None
    items = [t.strip() for t in text.split(",")]
    if any(not t for t in items):
        raise RequestError(400, f"instruments: {text!r} has an empty entry; expected names or "
                                "numbers separated by commas")
    return [int(t) if t.isdigit() else t for t in items]


def _ending(fields: dict) -> str:
    text = _text(fields, "ending") or "auto"
    if text not in ENDINGS:
        raise RequestError(400, f"ending: {text!r}, expected one of {', '.join(ENDINGS)}")
    return text


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
        "key": lambda: _text(fields, "key"),
        "scale_strictness": lambda: _number(fields, "scale_strictness", float, lo=0.0, hi=1.0),
        "pitch_range": lambda: _text(fields, "pitch_range"),
        "max_voices": lambda: _number(fields, "max_voices", int, lo=1, hi=32, empty="auto"),
        "min_voices": lambda: _number(fields, "min_voices", int, lo=1, hi=32, empty="auto"),
        "max_rest": lambda: _rest(fields),
        "density": lambda: _positive(fields, "density", hi=32.0),
        "style": lambda: _text(fields, "style"),
        "bpm": lambda: _number(fields, "bpm", float, lo=20.0, hi=400.0),
        "instruments": lambda: _instruments(fields),
        "ending": lambda: _ending(fields),
        "allow_early_end": lambda: _flag(fields, "allow_early_end"),
    }
    return {name: parse() for name, parse in parsers.items() if name in offered}


def _rest(fields: dict):
    """``max_rest``: beats in [0, 64], "auto" (also when blank) or "off"."""
    text = (_text(fields, "max_rest") or "auto").lower()
    if text in ("auto", "off"):
        return "auto" if text == "auto" else None
    return _number(fields, "max_rest", float, lo=0.0, hi=64.0)


def _positive(fields: dict, name: str, *, hi: float):
    value = _number(fields, name, float, lo=0.0, hi=hi)
    if value is not None and value <= 0.0:
        raise RequestError(400, f"{name}: {value} is outside the allowed range (0, {hi}]")
    return value


def _pieces(fields: dict, limits: Limits) -> int:
    n = _number(fields, "n", int, lo=1, empty=1)
    if n > limits.max_pieces:
        raise RequestError(400, f"n: {n} pieces is more than the {limits.max_pieces} allowed per "
                                "request")
    return n
