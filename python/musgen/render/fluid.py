"""The FluidSynth synthesizer (through pyfluidsynth): plays scheduled events into samples.

FluidSynth is the reference open-source General MIDI SoundFont synthesizer (reverb, chorus,
the full SoundFont 2 model). Each piece is played by its own instance, so renders run in
parallel threads and never share state.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
from pathlib import Path

import numpy as np

from ..errors import SynthesizerUnavailableError
from .schedule import NOTE_OFF, NOTE_ON, PROGRAM

__all__ = ["fluidsynth_status", "FluidSynth", "synthesizer", "FLUIDSYNTH_HINT"]

#: What to tell a user who has no FluidSynth.
FLUIDSYNTH_HINT = ("audio rendering needs FluidSynth: pip install 'musgen[audio]' and the "
                   "FluidSynth library (Debian/Ubuntu: apt-get install libfluidsynth3; "
                   "Fedora: dnf install fluidsynth-libs; macOS: brew install fluid-synth)")

# FluidSynth's own default gain: loud enough for one voice, headroom for a full ensemble.
# Levels are normalized afterwards (see render).
_GAIN = 0.2


def _import_fluidsynth():
    """pyfluidsynth's module, or a one-line SynthesizerUnavailableError saying what is missing."""
    try:
        # pyfluidsynth prints where it found the library when CI is set in the environment;
        # musgen's stdout carries data (info --json, tokens), so that line is kept off it.
        with contextlib.redirect_stdout(io.StringIO()):
            import fluidsynth
    except ModuleNotFoundError as exc:
        if exc.name != "fluidsynth":
            raise
        raise SynthesizerUnavailableError(f"pyfluidsynth is not installed; {FLUIDSYNTH_HINT}") \
            from None
    except (ImportError, OSError):  # pyfluidsynth raises ImportError when the C library is absent
        raise SynthesizerUnavailableError(f"the FluidSynth library was not found; "
                                          f"{FLUIDSYNTH_HINT}") from None
    if not hasattr(fluidsynth, "Synth"):  # another package named fluidsynth
        raise SynthesizerUnavailableError(f"the installed 'fluidsynth' module is not "
                                          f"pyfluidsynth; {FLUIDSYNTH_HINT}")
    return fluidsynth


def fluidsynth_status() -> tuple[bool, str]:
    """(usable, why): whether FluidSynth can be loaded here, and the reason if not."""
    try:
        _import_fluidsynth()
    except SynthesizerUnavailableError as exc:
        return False, str(exc)
    return True, "pyfluidsynth and the FluidSynth library are installed"


class FluidSynth:
    """One FluidSynth instance with a SoundFont loaded, rendering stereo at ``sample_rate``."""

    def __init__(self, soundfont: Path, sample_rate: int):
        fs = _import_fluidsynth()
        self.soundfont, self.sample_rate = Path(soundfont), int(sample_rate)
        # 16 MIDI channels as in a file; no audio driver is started (offline rendering).
        self._synth = fs.Synth(gain=_GAIN, samplerate=float(sample_rate), channels=16,
                               **{"synth.dynamic-sample-loading": 1})
        # Float output straight from the mixer: pyfluidsynth's get_samples is 16-bit with
        # dither noise, which would make silence not silent and renders not repeatable.
        self._write_float = fs._fl.fluid_synth_write_float
        self._write_float.restype = ctypes.c_int
        self._write_float.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                      ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                      ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self._sfid = self._synth.sfload(str(soundfont))
        if self._sfid < 0:
            self._synth.delete()
            raise SynthesizerUnavailableError(f"soundfont: FluidSynth could not load {soundfont} "
                                              "(not a valid .sf2/.sf3 file?)")

    def reset(self) -> None:
        """Back to the power-on state: every channel on program 0 (drums on channel 10), no
        sounding voices, effects cleared."""
        self._synth.system_reset()
        for channel in range(16):
            self._synth.program_select(channel, self._sfid, 128 if channel == 9 else 0, 0)

    def _samples(self, frames: int) -> np.ndarray:
        """The next ``frames`` frames, float32 [frames, 2] (left, right interleaved)."""
        out = np.zeros((max(0, int(frames)), 2), np.float32)
        if frames > 0:
            ptr = out.ctypes.data_as(ctypes.c_void_p)
            if self._write_float(self._synth.synth, int(frames), ptr, 0, 2, ptr, 1, 2) != 0:
                raise RuntimeError("FluidSynth failed to synthesize samples")
        return out

    def _apply(self, event) -> None:
        kind, channel, data = int(event["kind"]), int(event["channel"]), int(event["data"])
        if kind == PROGRAM:
            bank = 128 if channel == 9 else 0
            if self._synth.program_select(channel, self._sfid, bank, data) != 0:
                # the SoundFont lacks this preset: the bank's first (piano, or the standard kit)
                self._synth.program_select(channel, self._sfid, bank, 0)
        elif kind == NOTE_ON:
            self._synth.noteon(channel, data, int(event["velocity"]))
        elif kind == NOTE_OFF:
            self._synth.noteoff(channel, data)

    def play(self, events: np.ndarray, *, tail_seconds: float) -> np.ndarray:
        """Play ``events`` (schedule.EVENT_DTYPE, sorted) from a reset synthesizer, then up to
        ``tail_seconds`` of release and reverb, stopping early once the sound has died away.
        Returns float32 [frames, 2]."""
        self.reset()
        chunks, now = [], 0
        for event in events:
            at = int(event["sample"])
            if at > now:
                chunks.append(self._samples(at - now))
                now = at
            self._apply(event)
        chunks.extend(self._tail(tail_seconds))
        return np.concatenate(chunks) if chunks else np.zeros((0, 2), np.float32)

    def _tail(self, tail_seconds: float) -> list:
        """Blocks after the last event until two blocks in a row peak below -90 dBFS."""
        block = max(1, self.sample_rate // 20)
        remaining = int(round(max(0.0, tail_seconds) * self.sample_rate))
        out, quiet = [], 0
        while remaining > 0 and quiet < 2:
            chunk = self._samples(min(block, remaining))
            remaining -= chunk.shape[0]
            quiet = quiet + 1 if (chunk.size == 0 or np.abs(chunk).max() < 3.2e-5) else 0
            out.append(chunk)
        return out

    def close(self) -> None:
        self._synth.delete()


@contextlib.contextmanager
def synthesizer(soundfont: Path, sample_rate: int):
    """A freshly started FluidSynth for ``soundfont`` at ``sample_rate``, closed afterwards.

    Fresh for every piece: FluidSynth's reset leaves the reverb and chorus buffers ringing, so
    a reused instance would bleed one piece's tail into the next and the same Score would not
    always give the same samples. With samples loaded on first use, starting one costs tens of
    milliseconds rather than the seconds of reading a whole General MIDI SoundFont.
    """
    synth = FluidSynth(soundfont, sample_rate)
    try:
        yield synth
    finally:
        synth.close()
