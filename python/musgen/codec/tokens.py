"""encode / encode_many / decode / quantize: the one face of both codec backends (C++ in
``musgen._core``, NumPy in ``._python``), and the integer time base they share."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from .. import _backend
from ..errors import CodecError
from ..score import DEFAULT_TEMPO, NOTE_DTYPE, TEMPO_DTYPE, Score
from . import _python
from .config import DRUM_CHANNEL, CodecConfig, _is_int, default_config
from .grammar import grammar, violation_message

__all__ = ["encode", "encode_many", "decode", "quantize"]

# Largest tick x rate product accepted, so that 2 * U + divisor stays inside int64 in both backends.
_MAX_UNITS = 1 << 61


# ---------------------------------------------------------------------------------- time base
def _time_base(score: Score, config: CodecConfig):
    """Integer map from ticks to grid steps shared by both backends.

    Returns (seg_ticks int64 [S], seg_rates int64 [S], divisor): with ``i`` the last segment
    whose tick <= t, ``U(t) = cum_i + (t - seg_ticks[i]) * seg_rates[i]`` and
    ``step = (2 U + divisor) // (2 divisor)`` (round half up). ``cum_0 = 0``.
    """
    if config.timing == "beats":
        if score.smpte is None:
            return (*_beat_segments(config.steps_per_beat), int(score.ticks_per_beat))
        # SMPTE files have no beat: count one beat per half second (120 BPM).
        fps100, tpf = _smpte(score)
        return (np.zeros(1, np.int64), np.array([config.steps_per_beat * 200], np.int64),
                fps100 * tpf)
    unit = 1000 * config.step_ms
    if score.smpte is not None:
        fps100, tpf = _smpte(score)
        return np.zeros(1, np.int64), np.array([100_000_000], np.int64), fps100 * tpf * unit
    tempos = np.asarray(score.tempos)
    keep = tempos["tick"] > 0
    ticks = np.concatenate([[0], tempos["tick"][keep].astype(np.int64)])
    rates = np.concatenate([[DEFAULT_TEMPO], tempos["tempo"][keep].astype(np.int64)])
    at_zero = tempos["tempo"][~keep]
    if at_zero.size:
        rates[0] = int(at_zero[-1])  # events at tick 0 (or before) replace the default
    last = np.ones(ticks.shape[0], dtype=bool)
    last[:-1] = ticks[1:] != ticks[:-1]  # several events on one tick: the last one wins
    return ticks[last], rates[last], int(score.ticks_per_beat) * unit


_BEAT_SEGMENTS: dict = {}


def _beat_segments(steps_per_beat: int):
    """(seg_ticks, seg_rates) of a beat grid: one segment, made once (read-only)."""
    seg = _BEAT_SEGMENTS.get(steps_per_beat)
    if seg is None:
        seg = (np.zeros(1, np.int64), np.array([steps_per_beat], np.int64))
        for a in seg:
            a.setflags(write=False)
        _BEAT_SEGMENTS[steps_per_beat] = seg
    return seg


def _smpte(score: Score):
    fps, tpf = score.smpte
    return int(round(float(fps) * 100)), int(tpf)


def _prepare(score: Score, config: CodecConfig, where: str = "encode", check: bool = True):
    """(notes in the C layout, seg_ticks, seg_rates, divisor) after the checks the encoder relies
    on: no negative tick, no int64 overflow; tempo segments after the last note are cut. The C++
    encoder makes the same checks with the same messages itself (``check=False``)."""
    if not isinstance(score, Score):
        raise CodecError(f"{where}: expected a musgen.Score, got {type(score).__name__}")
    seg_ticks, seg_rates, divisor = _time_base(score, config)
    notes = np.ascontiguousarray(score.notes, dtype=NOTE_DTYPE)
    if not check:
        return notes, seg_ticks, seg_rates, int(divisor)
    if divisor <= 0:
        raise CodecError(f"{where}: the score's time division gives {divisor} units per step "
                         "(ticks_per_beat must be positive)")
    hi = 0
    if notes.size:
        lo = min(int(notes["start"].min()), int(notes["end"].min()))
        if lo < 0:
            raise CodecError(f"{where}: the score has a note at negative tick {lo}")
        hi = max(int(notes["start"].max()), int(notes["end"].max()))
    n_seg = max(1, int(np.searchsorted(seg_ticks, hi, side="right")))
    seg_ticks = np.ascontiguousarray(seg_ticks[:n_seg], dtype=np.int64)
    seg_rates = np.ascontiguousarray(seg_rates[:n_seg], dtype=np.int64)
    if hi * int(seg_rates.max()) > _MAX_UNITS:
        raise CodecError(f"{where}: tick {hi} is too large to convert to grid steps without "
                         "overflow")
    return notes, seg_ticks, seg_rates, int(divisor)


# ---------------------------------------------------------------------------------- facade
def _c_params(c: CodecConfig) -> tuple:
    """The vocabulary parameters the C++ core takes, in its order."""
    return (c.max_time_shift, c.max_duration, c.pitch_range[0], c.pitch_range[1], c.keep_drums,
            c.drum_pitch_range[0], c.drum_pitch_range[1], c.velocity_bins)


def encode(score: Score, config: CodecConfig | None = None, *,
           backend: str | None = None) -> np.ndarray:
    """Tokens of one score: int32 [n], BOS first and EOS last.

    Parameters
    ----------
    score : Score
    config : CodecConfig, optional (default_config())
    backend : "cpp", "python", "auto" or None (MUSGEN_BACKEND)
    """
    config = config or default_config()
    if _backend.resolve(backend) == "cpp":
        notes, seg_ticks, seg_rates, divisor = _prepare(score, config, check=False)
        return _backend.core().codec_encode(notes, seg_ticks, seg_rates, divisor,
                                            _c_params(config))
    notes, seg_ticks, seg_rates, divisor = _prepare(score, config)
    return _python.encode_notes(notes, seg_ticks, seg_rates, divisor, config)


def encode_many(scores: Sequence[Score], config: CodecConfig | None = None, *,
                threads: int | None = None, backend: str | None = None) -> list:
    """Tokens of many scores (a list of int32 arrays, in order).

    With the C++ backend the scores are encoded on ``threads`` threads (default: all cores)
    with the GIL released.
    """
    config = config or default_config()
    if threads is not None and (not _is_int(threads) or threads < 1):
        raise ValueError(f"encode_many: threads must be a positive int or None, got {threads!r}")
    cpp = _backend.resolve(backend) == "cpp"
    prepared = []
    for i, s in enumerate(scores):
        try:
            prepared.append(_prepare(s, config, check=not cpp))
        except CodecError as exc:
            raise CodecError(f"encode_many: score {i}: {exc}") from None
    if cpp:
        n = threads if threads is not None else (os.cpu_count() or 1)
        return _backend.core().codec_encode_many(prepared, _c_params(config), int(n))
    return [_python.encode_notes(*p, config) for p in prepared]


def _decode_scale(config: CodecConfig, ticks_per_beat: int, tempo: int):
    """(num, den): tick = (2 * step * num + den) // (2 * den)."""
    if config.timing == "beats":
        return ticks_per_beat, config.steps_per_beat
    return 1000 * config.step_ms * ticks_per_beat, tempo


def decode(tokens, config: CodecConfig | None = None, *, backend: str | None = None,
           ticks_per_beat: int = 480, tempo: int | None = None) -> Score:
    """The score of a token sequence (complete, or a grammar-valid prefix).

    Notes are on track 0, channel 0 (drums: channel 9), at ``ticks_per_beat``; the score gets
    one tempo, ``tempo`` or ``config.tempo`` (microseconds per beat). Raises CodecError naming
    the position and the token at the first grammar violation; tokens after EOS may only be PAD.
    Exact on the grid when ``ticks_per_beat`` is a multiple of ``steps_per_beat``.
    """
    config = config or default_config()
    if not _is_int(ticks_per_beat) or not (1 <= ticks_per_beat <= 0x7FFF):
        raise CodecError(f"decode: ticks_per_beat must be an int in [1, 32767], "
                         f"got {ticks_per_beat!r}")
    tempo = config.tempo if tempo is None else tempo
    if not _is_int(tempo) or not (1 <= tempo <= 0xFFFFFF):
        raise CodecError(f"decode: tempo must be microseconds per beat in [1, 16777215], "
                         f"got {tempo!r}")
    tok = np.asarray(tokens)
    if tok.ndim != 1 or not (tok.size == 0 or np.issubdtype(tok.dtype, np.integer)):
        raise CodecError(f"decode: expected a 1-D integer array of token ids, got shape "
                         f"{tok.shape} dtype {tok.dtype}")
    tok = np.ascontiguousarray(tok, dtype=np.int64)
    if tok.size and (tok.min() < -(1 << 31) or tok.max() >= (1 << 31)):
        # not an int32: report it, unless an earlier token already breaks the grammar
        bad = int(np.flatnonzero((tok < -(1 << 31)) | (tok >= (1 << 31)))[0])
        grammar(config).walk(tok[:bad])
        raise CodecError(violation_message(config, grammar(config).table, 0, bad, int(tok[bad])))
    tok = tok.astype(np.int32)
    g = grammar(config)
    num, den = _decode_scale(config, int(ticks_per_beat), int(tempo))
    if _backend.resolve(backend) == "cpp":
        notes = _backend.core().codec_decode(tok, g.table, g.start_state, _c_params(config),
                                             num, den)
    else:
            notes = _python.decode_tokens(tok, g, config, num, den)
    return Score(notes=notes, ticks_per_beat=int(ticks_per_beat),
                 tempos=np.array([(0, int(tempo))], dtype=TEMPO_DTYPE), track_names=[""],
                 format=0)


# ---------------------------------------------------------------------------------- reference
def quantize(score: Score, config: CodecConfig | None = None, *, ticks_per_beat: int = 480
             ) -> Score:
    """What ``decode(encode(score))`` must give, computed note by note without tokens.

    Drops drums (unless kept) and out-of-range pitches, puts times on the grid, bins velocities,
    merges same (onset, pitch) notes, and keeps the first tempo of the piece (the test oracle
    for round trips; call decode with ``tempo=`` that tempo).
    """
    config = config or default_config()
    notes, seg_ticks, seg_rates, divisor = _prepare(score, config, "quantize")
    on, dur, code, vel = _python.note_steps(notes, seg_ticks, seg_rates, divisor, config)
    first = _python.first_tempo(score, config)
    num, den = _decode_scale(config, ticks_per_beat, first)
    out = np.zeros(on.shape[0], dtype=NOTE_DTYPE)
    is_drum = code >= config.n_pitches
    out["channel"] = np.where(is_drum, DRUM_CHANNEL, 0)
    out["pitch"] = np.where(is_drum, code - config.n_pitches + config.drum_pitch_range[0],
                            code + config.pitch_range[0])
    s = config.velocity_shift
    out["velocity"] = (vel.astype(np.int64) << s) + ((1 << s) >> 1)
    out["start"] = (2 * on * num + den) // (2 * den)
    out["end"] = (2 * (on + dur) * num + den) // (2 * den)
    order = np.lexsort((out["end"], out["pitch"], out["channel"], out["start"]))
    return Score(notes=out[order], ticks_per_beat=ticks_per_beat,
                 tempos=np.array([(0, first)], dtype=TEMPO_DTYPE), track_names=[""], format=0)
