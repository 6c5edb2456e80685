"""Datasets: ``prepare`` turns MIDI corpora into a dataset folder, ``Dataset.open`` maps one into
memory, and ``pipeline`` cuts it into training windows (NumPy or ``tf.data``).

The folder format is defined once, in ``musgen.data.format``.
"""

from .dataset import Dataset
from .files import find_midi_files, folder_split, seeded_split
from .format import (
    FORMAT,
    FORMAT_VERSION,
    MIDI_SUFFIXES,
    SPLITS,
    DatasetError,
    Piece,
    piece_field,
)
from .prepare import format_summary, prepare

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SPLITS",
    "MIDI_SUFFIXES",
    "DatasetError",
    "Piece",
    "Dataset",
    "prepare",
    "find_midi_files",
    "folder_split",
    "seeded_split",
    "format_summary",
    "piece_field",
]
