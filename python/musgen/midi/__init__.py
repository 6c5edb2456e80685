"""Read and write Standard MIDI Files: ``read``, ``read_bytes``, ``read_many``, ``write``,
``write_many``, ``encode`` (the bytes), ``without_overlaps`` (what a written file reads back as).

Two readers sit behind these functions, chosen by ``backend=`` / MUSGEN_BACKEND: the C++ core
(``cpp/src/midi``, GIL released, threads for ``read_many``) and the pure-Python reference
(``musgen.midi._python``). They give identical Scores, warnings and errors on every file. Two
writers likewise: C++ (files written on threads, GIL released) and the pure-Python reference
(``musgen.midi._writer``), giving the same bytes.
"""

from ..errors import MidiError, MidiWarning
from .io import (
    ReadManyResult,
    encode,
    read,
    read_bytes,
    read_many,
    without_overlaps,
    write,
    write_many,
)

__all__ = ["read", "read_bytes", "read_many", "write", "write_many", "encode", "without_overlaps",
           "ReadManyResult", "MidiError", "MidiWarning"]
