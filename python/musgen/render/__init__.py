"""Pictures of scores: piano rolls (matplotlib, ``pip install musgen[plot]``) and the
instrument facts they show (General MIDI names, the parts of a score).

matplotlib is imported only when a picture is drawn, so ``import musgen.render`` is cheap and
works without it.
"""

from .instruments import GM_PROGRAM_NAMES, Part, note_programs, parts, pitch_name
from .pianoroll import draw_piano_roll, piano_roll_figure, save_piano_roll

__all__ = ["draw_piano_roll", "save_piano_roll", "piano_roll_figure", "GM_PROGRAM_NAMES",
           "Part", "parts", "note_programs", "pitch_name"]
