"""``Audio``: rendered sound as float samples, with its levels and its file formats.

WAV is written by the standard library; FLAC, Ogg Vorbis and MP3 go through ``soundfile``
(libsndfile, in the ``audio`` extra) where its build supports them.
"""

from __future__ import annotations

import base64
import io
import os
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes

__all__ = ["Audio", "AUDIO_FORMATS", "audio_format_for", "available_audio_formats", "mime_type"]

#: file suffix -> (soundfile format, subtype); WAV needs no library.
AUDIO_FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
_MIME = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg"}


def _soundfile():
    try:
        import soundfile
    except (ImportError, OSError):  # OSError: the package is there but libsndfile is not
        return None
    return soundfile


def available_audio_formats() -> list:
    """The file formats this install can write: always ``wav``, the others with soundfile."""
    sf = _soundfile()
    if sf is None:
        return ["wav"]
    have = sf.available_formats()
    return ["wav"] + [name for name, (fmt, sub) in AUDIO_FORMATS.items()
                      if name != "wav" and fmt in have
                      and sub in sf.available_subtypes(fmt)]


def audio_format_for(path: str | os.PathLike) -> str:
    """The format named by a file's suffix (``.wav``, ``.flac``, ``.ogg``/``.oga``, ``.mp3``)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    suffix = {"oga": "ogg", "wave": "wav"}.get(suffix, suffix)
    if suffix not in AUDIO_FORMATS:
        raise ValueError(f"{os.fspath(path)}: unknown audio format {Path(path).suffix!r}, "
                         f"expected one of {', '.join('.' + f for f in AUDIO_FORMATS)}")
    return suffix


@dataclass(eq=False)
class Audio:
    """Rendered sound.

    Attributes
    ----------
    samples : ndarray float32 [frames, channels]
        Sample values in [-1, 1]; channels is 2 (stereo) for rendered MIDI.
    sample_rate : int
        Frames per second.
    """

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        s = np.asarray(self.samples, dtype=np.float32)
        if s.ndim == 1:
            s = s[:, None]
        if s.ndim != 2:
            raise ValueError(f"Audio.samples: shape {list(s.shape)}, expected [frames, channels]")
        if int(self.sample_rate) <= 0:
            raise ValueError(f"Audio.sample_rate: {self.sample_rate}, expected > 0")
        self.samples, self.sample_rate = s, int(self.sample_rate)

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate

    def rms_dbfs(self) -> float:
        """Root-mean-square level in dB relative to full scale (-inf for silence)."""
        if self.samples.size == 0:
            return float("-inf")
        rms = float(np.sqrt(np.mean(np.square(self.samples, dtype=np.float64))))
        return 20.0 * np.log10(rms) if rms > 0 else float("-inf")

    def peak_dbfs(self) -> float:
        """The largest absolute sample in dB relative to full scale (-inf for silence)."""
        peak = float(np.max(np.abs(self.samples))) if self.samples.size else 0.0
        return 20.0 * np.log10(peak) if peak > 0 else float("-inf")

    def to_bytes(self, format: str = "wav") -> bytes:
        """The sound encoded as a whole file (``wav``, ``flac``, ``ogg`` or ``mp3``)."""
        if format not in AUDIO_FORMATS:
            raise ValueError(f"format: {format!r}, expected one of {', '.join(AUDIO_FORMATS)}")
        if format == "wav":
            return self._wav_bytes()
        sf = _soundfile()
        if sf is None:
            from ..errors import SynthesizerUnavailableError

            raise SynthesizerUnavailableError(
                f"writing .{format} needs soundfile: pip install 'musgen[audio]' (or write .wav)")
        if format not in available_audio_formats():
            raise ValueError(f"format: this soundfile/libsndfile build cannot write {format}; "
                             f"it can write {', '.join(available_audio_formats())}")
        fmt, subtype = AUDIO_FORMATS[format]
        buf = io.BytesIO()
        sf.write(buf, self.samples, self.sample_rate, format=fmt, subtype=subtype)
        return buf.getvalue()

    def _wav_bytes(self) -> bytes:
        pcm = np.clip(np.rint(self.samples * 32767.0), -32768, 32767).astype("<i2")
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(self.samples.shape[1])
            w.setsampwidth(2)
            w.setframerate(self.sample_rate)
            w.writeframes(pcm.tobytes())
        return buf.getvalue()

    def save(self, path: str | os.PathLike, format: str | None = None) -> Path:
        """Write the sound to ``path`` (format from the suffix unless given), atomically."""
        path = Path(path)
        atomic_write_bytes(path, self.to_bytes(format or audio_format_for(path)))
        return path

    def _repr_html_(self) -> str:
        """A player in Jupyter notebooks (the WAV inlined)."""
        data = base64.b64encode(self._wav_bytes()).decode("ascii")
        return f'<audio controls src="data:{_MIME["wav"]};base64,{data}"></audio>'

    def __repr__(self) -> str:
        return (f"Audio({self.duration_seconds:.2f} s, {self.sample_rate} Hz, "
                f"{self.samples.shape[1]} channel(s), {self.rms_dbfs():.1f} dBFS RMS)")


def mime_type(format: str) -> str:
    """The media type a browser expects for ``format``."""
    return _MIME[format]
