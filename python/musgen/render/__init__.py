"""Hear and see a Score: audio through a General MIDI synthesizer, and piano rolls.

``render(score) -> Audio`` plays a Score with FluidSynth and a SoundFont (``find_soundfont``);
``render_file`` / ``render_files`` go from MIDI files to WAV, FLAC, Ogg or MP3 files. Piano
rolls (matplotlib, ``pip install musgen[plot]``) show the notes, instruments and grid.

pyfluidsynth, soundfile and matplotlib are imported only when sound is made or a picture is
drawn, so ``import musgen.render`` is cheap and works without them.
"""

from __future__ import annotations

from .audio import AUDIO_FORMATS, Audio, audio_format_for, available_audio_formats
from .fluid import fluidsynth_status
from .instruments import GM_PROGRAM_NAMES, Part, note_programs, parts, pitch_name
from .pianoroll import draw_piano_roll, piano_roll_figure, save_piano_roll
from .soundfont import find_soundfont
from .synthesize import (
    DEFAULT_SAMPLE_RATE,
    DEFAULT_TAIL,
    RenderFilesResult,
    render,
    render_file,
    render_files,
)

__all__ = [
    "AUDIO_FORMATS",
    "DEFAULT_SAMPLE_RATE",
    "DEFAULT_TAIL",
    "GM_PROGRAM_NAMES",
    "Audio",
    "Part",
    "RenderFilesResult",
    "audio_format_for",
    "audio_status",
    "available_audio_formats",
    "draw_piano_roll",
    "find_soundfont",
    "fluidsynth_status",
    "note_programs",
    "parts",
    "piano_roll_figure",
    "pitch_name",
    "render",
    "render_file",
    "render_files",
    "save_piano_roll",
]


def audio_status(soundfont=None) -> tuple[bool, str]:
    """(usable, why): whether ``render`` can work here (FluidSynth and a SoundFont)."""
    from ..errors import SynthesizerUnavailableError

    ok, why = fluidsynth_status()
    if not ok:
        return False, why
    try:
        path = find_soundfont(soundfont)
    except SynthesizerUnavailableError as exc:
        return False, str(exc)
    return True, f"FluidSynth with {path}"
