"""Render Scores and MIDI files to audio: ``render``, ``render_file``, ``render_files``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..score import Score
from .audio import Audio, audio_format_for
from .fluid import synthesizer
from .schedule import schedule_events
from .soundfont import find_soundfont

__all__ = ["render", "render_file", "render_files", "DEFAULT_SAMPLE_RATE", "DEFAULT_TAIL",
           "RenderFilesResult"]

DEFAULT_SAMPLE_RATE = 44_100
#: Seconds of release and reverb kept after the last note ends (cut early once silent).
DEFAULT_TAIL = 2.0
# Peak level of normalized output: -1 dBFS leaves room for lossy encoders' overshoot.
_PEAK = 10 ** (-1 / 20)


def _normalized(samples: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return samples * np.float32(_PEAK / peak) if peak > 0 else samples


def render(score: Score, *, soundfont: str | os.PathLike | None = None,
           sample_rate: int = DEFAULT_SAMPLE_RATE, tail: float = DEFAULT_TAIL,
           normalize: bool = True) -> Audio:
    """Synthesize ``score`` with FluidSynth and a General MIDI SoundFont.

    Parameters
    ----------
    score : Score
        Notes, programs (General MIDI; channel 10 is drums) and tempo map are played as a MIDI
        player would play the file.
    soundfont : path or None
        A ``.sf2``/``.sf3`` file; None: ``MUSGEN_SOUNDFONT``, else a system General MIDI
        SoundFont (see :func:`find_soundfont`).
    sample_rate : int
        Output frames per second.
    tail : float
        Seconds of release and reverb kept after the last note ends, at most (cut once the
        sound has died away). The audio lasts ``score.duration_seconds`` plus up to ``tail``.
    normalize : bool
        Scale the peak to -1 dBFS (True), or keep FluidSynth's own levels (gain 0.2).

    Returns
    -------
    Audio
        float32 stereo samples.

    Raises
    ------
    SynthesizerUnavailableError
        FluidSynth or a SoundFont is missing (the message says what to install).
    """
    if not isinstance(score, Score):
        raise TypeError(f"score: expected a musgen.Score, got {type(score).__name__}")
    if not isinstance(sample_rate, (int, np.integer)) or not 8000 <= sample_rate <= 192_000:
        raise ValueError(f"sample_rate: {sample_rate!r}, expected an int in [8000, 192000]")
    if not np.isfinite(tail) or tail < 0:
        raise ValueError(f"tail: {tail!r}, expected seconds >= 0")
    path = find_soundfont(soundfont)
    events = schedule_events(score, int(sample_rate))
    with synthesizer(path, int(sample_rate)) as synth:
        samples = synth.play(events, tail_seconds=float(tail))
    return Audio(_normalized(samples) if normalize else samples, int(sample_rate))


def render_file(midi_path: str | os.PathLike, output: str | os.PathLike, **options) -> Audio:
    """Read ``midi_path``, render it (see :func:`render` for ``options``) and write ``output``
    in the format its suffix names (``.wav``, ``.flac``, ``.ogg``, ``.mp3``)."""
    from .. import midi

    fmt = audio_format_for(output)  # a bad suffix fails before the work
    audio = render(midi.read(midi_path), **options)
    audio.save(output, fmt)
    return audio


@dataclass
class RenderFilesResult:
    """What ``render_files`` did: the files written and the inputs skipped, with the reason."""

    written: list
    errors: list  # (input path, one-line reason)


def render_files(inputs, output_dir: str | os.PathLike, *, format: str = "wav",
                 progress=None, on_error: str = "raise", **options) -> RenderFilesResult:
    """Render MIDI files into ``output_dir``, one audio file each, named after its input.

    Parameters
    ----------
    inputs : sequence of (path, relative output stem)
        Each input file and its output name without suffix, relative to ``output_dir``
        (subfolders are created).
    format : {"wav", "flac", "ogg", "mp3"}
    progress : callable(int) or None
        Called with 1 after each file.
    on_error : {"raise", "skip"}
        What a MIDI file that cannot be read does: stop the run, or be reported and skipped.
    """
    from .. import midi
    from ..errors import MidiError

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error: {on_error!r}, expected 'raise' or 'skip'")
    audio_format_for(f"x.{format}")
    out_dir = Path(output_dir)
    result = RenderFilesResult([], [])
    for path, stem in inputs:
        target = out_dir / f"{stem}.{format}"
        try:
            audio = render(midi.read(path), **options)
        except (MidiError, ValueError) as exc:
            if on_error == "raise":
                raise
            result.errors.append((os.fspath(path), str(exc).splitlines()[0]))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            audio.save(target, format)
            result.written.append(target)
        if progress is not None:
            progress(1)
    return result
