"""Read and write Standard MIDI Files: ``read``, ``read_bytes``, ``read_many``, ``write``.

Two readers sit behind these functions, chosen by ``backend=`` / MUSGEN_BACKEND: the C++ core
(``cpp/src/midi``, GIL released, threads for ``read_many``) and the pure-Python reference
(``musgen.midi._python``). They give identical Scores, warnings and errors on every file.
"""

from ..errors import MidiError, MidiWarning
from .io import ReadManyResult, read, read_bytes, read_many, write

__all__ = ["read", "read_bytes", "read_many", "write", "ReadManyResult", "MidiError", "MidiWarning"]
