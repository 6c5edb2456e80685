"""The exceptions and warnings musgen raises, shared by every backend (C++, CUDA, Python)."""

from __future__ import annotations

__all__ = [
    "MusgenError",
    "MidiError",
    "MidiWarning",
    "CodecError",
    "CodecWarning",
    "ModelFormatError",
    "BackendUnavailableError",
    "GenerationWarning",
    "MissingDependencyError",
    "SynthesizerUnavailableError",
    "EvaluationError",
]


class MusgenError(Exception):
    """Base class of every musgen error."""


class MidiError(MusgenError, ValueError):
    """A MIDI file could not be read: names the file, the byte offset and what was wrong.

    Attributes
    ----------
    path : str or None
        The file that was being read (None for bytes read from memory).
    offset : int or None
        Byte offset in the file where the problem was found.
    reason : str
        What was wrong and what was expected.
    """

    def __init__(self, message: str, path: str | None = None, offset: int | None = None):
        self.path = path
        self.offset = offset
        self.reason = message
        where = []
        if path is not None:
            where.append(str(path))
        if offset is not None:
            where.append(f"byte {offset}")
        super().__init__(": ".join(where + [message]) if where else message)

    def __reduce__(self):  # keep path/offset across pickling (read_many workers, multiprocessing)
        return (type(self), (self.reason, self.path, self.offset))


class MidiWarning(UserWarning):
    """A damaged MIDI file was recovered (truncated track, missing End-of-Track, ...)."""


class CodecError(MusgenError, ValueError):
    """Tokens or a codec configuration are invalid."""


class CodecWarning(UserWarning):
    """encode changed the music to bound it: silences shortened, notes cut at the length limit,
    parts merged or dropped.

    Attributes
    ----------
    index : int or None
        The score's position in an ``encode_many`` call (None for ``encode``).
    report : dict
        The counts (``silences_shortened``, ``beats_removed``, ``notes_capped``,
        ``parts_merged``, ``parts_dropped``, ``notes_dropped``).
    """

    def __init__(self, message: str, index: int | None = None, report: dict | None = None):
        super().__init__(message)
        self.index = index
        self.report = dict(report or {})


class ModelFormatError(MusgenError, ValueError):
    """A model directory (config.json / weights.safetensors) is missing, damaged or mismatched."""


class BackendUnavailableError(MusgenError, RuntimeError):
    """The requested backend (cpp, cuda) is not available in this build or on this machine."""


class MissingDependencyError(MusgenError, ImportError):
    """An optional package needed for this feature is not installed; says how to install it."""


class SynthesizerUnavailableError(MusgenError, RuntimeError):
    """Audio rendering needs a synthesizer (FluidSynth) or a SoundFont that is not installed;
    the message says what to install."""


class EvaluationError(MusgenError, ValueError):
    """The input of an evaluation is missing or unusable (no MIDI files, an empty set, ...)."""


class GenerationWarning(UserWarning):
    """A generated piece differs from what was asked (cut by the token cap), or a request was
    adjusted (a primer longer than ``max_primer_tokens`` continued from its end)."""
