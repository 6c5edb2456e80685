"""Hear and see a Score: audio through a General MIDI synthesizer, and piano rolls.

``render(score) -> Audio`` plays a Score with FluidSynth and a SoundFont (``find_soundfont``);
``render_file`` / ``render_files`` go from MIDI files to WAV, FLAC, Ogg or MP3 files.
"""

from __future__ import annotations

from .audio import AUDIO_FORMATS, Audio, audio_format_for, available_audio_formats
from .fluid import fluidsynth_status
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
    "Audio",
    "AUDIO_FORMATS",
    "DEFAULT_SAMPLE_RATE",
    "DEFAULT_TAIL",
    "RenderFilesResult",
    "audio_format_for",
    "available_audio_formats",
    "audio_status",
    "find_soundfont",
    "fluidsynth_status",
    "render",
    "render_file",
    "render_files",
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
