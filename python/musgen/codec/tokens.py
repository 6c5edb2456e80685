"""encode / encode_many / decode / quantize: the one face of both codec backends (C++ in
``musgen._core``, NumPy in ``._python`` and ``._python_v2``), the integer time base they share,
and the warnings that say what encode shortened or dropped."""

from __future__ import annotations

import os
import warnings
from typing import Sequence

import numpy as np

from .. import _backend
from ..errors import CodecError, CodecWarning
from ..score import DEFAULT_TEMPO, NOTE_DTYPE, TEMPO_DTYPE, Score
from . import _python, _python_v2
from .assemble import assemble
from .config import DRUM_CHANNEL, CodecConfig, _is_int, default_config
from .grammar import grammar, violation_message
from .names import key_from_signature

__all__ = ["encode", "encode_many", "decode", "quantize", "read_header", "describe_report"]

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
def _c_params(c: CodecConfig):
    """The C++ core's vocabulary of a config (a ``CodecVocab``), built once per config object
    and kept on it: encode runs once per file, and hashing a config or parsing its parameters
    again cost as much as encoding a small file."""
    hit = c.__dict__.get("_c_vocab")
    if hit is None:
        hit = _backend.core().CodecVocab(_make_c_params(c))
        object.__setattr__(c, "_c_vocab", hit)
    return hit


def _make_c_params(c: CodecConfig) -> tuple:
    """The parameters the C++ core takes, in its order: the vocabulary's, the note and silence
    limits, and for version 2 the header blocks and integer tables."""
    base = (c.max_time_shift, c.max_duration, c.pitch_range[0], c.pitch_range[1], c.keep_drums,
            c.drum_pitch_range[0], c.drum_pitch_range[1], c.velocity_bins, c.note_cap_steps,
            c.silence_steps, c.silence_unit)
    if c.version == 1:
        return base
    return base + (c.steps_per_beat, c.max_parts, list(c.styles), c.tempo_bins,
                   c.tempo_bin(DEFAULT_TEMPO), c.meter_index(4, 4), list(c.meters),
                   [int(x) for x in c.meter_bar_steps],
                   [int(x) for x in c.density_bounds_milli])


def _style_index(config: CodecConfig, style) -> int:
    """Index of a style label in the Style block (0: unknown)."""
    if style is None or style == "unknown":
        return 0
    if config.version != 2:
        raise CodecError(f"style {style!r}: only codec version 2 has style tokens")
    if style not in config.styles:
        raise CodecError(f"style {style!r} is not one of the codec's styles "
                         f"{list(config.styles)} (or 'unknown')")
    return 1 + config.styles.index(style)


def _events(score: Score, config: CodecConfig, style) -> _python_v2.Events:
    """The non-note events of a score in the form both version-2 backends take."""
    tempos = score.tempos if score.smpte is None else score.tempos[:0]
    bounds = config.tempo_bounds_us
    tbins = (np.searchsorted(-bounds, -tempos["tempo"].astype(np.int64), side="right")
             if tempos.size else np.zeros(0, np.int64))
    ts = score.time_signatures
    meters = np.array([config.meter_index(int(n), int(d)) for n, d in
                       zip(ts["numerator"].tolist(), ts["denominator"].tolist())], np.int32)
    ks = score.key_signatures
    meta = -1
    if ks.size:
        i = int(np.argmin(ks["tick"]))  # the first one (the earliest in the array on a tie)
        k = key_from_signature(int(ks["key"][i]), int(ks["mode"][i]))
        meta = -1 if k is None else k
    progs = np.ascontiguousarray(score.programs)
    return _python_v2.Events(programs=progs,
                             tempo_ticks=np.ascontiguousarray(tempos["tick"], np.int64),
                             tempo_bins=np.ascontiguousarray(tbins, np.int32),
                             meter_ticks=np.ascontiguousarray(ts["tick"], np.int64),
                             meter_index=meters, meta_key=int(meta),
                             style=_style_index(config, style))


def _c_events(ev: _python_v2.Events) -> tuple:
    return (ev.programs, ev.tempo_ticks, ev.tempo_bins, ev.meter_ticks, ev.meter_index,
            ev.meta_key, ev.style)


def describe_report(report: dict, config: CodecConfig) -> str:
    """One line saying what encode shortened, cut, merged or dropped ("" when nothing)."""
    parts = []
    if report.get("silences_shortened"):
        n = report["silences_shortened"]
        parts.append(f"{n} silence{'s' * (n > 1)} longer than {config.max_silence_beats} beats "
                     f"shortened ({_beats(report['beats_removed'])} beats removed)")
    if report.get("notes_capped"):
        n = report["notes_capped"]
        parts.append(f"{n} note{'s' * (n > 1)} longer than {config.max_note_beats} beats cut "
                     f"to {config.max_note_beats}")
    if report.get("parts_merged"):
        parts.append(f"{report['parts_merged']} parts beyond max_parts {config.max_parts} "
                     "merged into a part of the same track or program")
    if report.get("parts_dropped"):
        parts.append(f"{report['parts_dropped']} parts beyond max_parts {config.max_parts} "
                     f"dropped ({report['notes_dropped']} notes)")
    return "; ".join(parts)


def _beats(x: float) -> str:
    """A count of beats as people write it: 14, 2.5, 268435455."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _v1_report(t: tuple, config: CodecConfig) -> dict:
    capped, shortened, removed = (int(x) for x in t)
    out: dict = {}
    if capped:
        out["notes_capped"] = capped
    if shortened:
        out["silences_shortened"] = shortened
        out["beats_removed"] = removed / config.beat_steps
    return out


def _warn(report: dict, config: CodecConfig, where: str, index: int | None) -> None:
    text = describe_report(report, config)
    if text:
        warnings.warn(CodecWarning(f"{where}: {text}", index=index, report=report),
                      stacklevel=3)


def _encode_one(score, config, style, cpp: bool, where: str):
    """(tokens, report) of one score on one backend."""
    notes, seg_ticks, seg_rates, divisor = _prepare(score, config, where, check=not cpp)
    if config.version == 2:
        ev = _events(score, config, style)
        if cpp:
            out = _backend.core().codec_encode_v2(
                [(notes, seg_ticks, seg_rates, divisor) + _c_events(ev)], _c_params(config), 1)
            return out[0]
        return _python_v2.encode(notes, ev, seg_ticks, seg_rates, divisor, config)
    if cpp:
        return _backend.core().codec_encode(notes, seg_ticks, seg_rates, divisor,
                                            _c_params(config))
    return _python.encode_notes(notes, seg_ticks, seg_rates, divisor, config)


def encode(score: Score, config: CodecConfig | None = None, *, style: str | None = None,
           backend: str | None = None) -> np.ndarray:
    """Tokens of one score: int32 [n], BOS first and EOS last.

    Parameters
    ----------
    score : Score
    config : CodecConfig, optional (default_config())
    style : str, optional
        Version 2: the piece's style label (one of ``config.styles``; None: "unknown").
    backend : "cpp", "python", "auto" or None (MUSGEN_BACKEND)

    Warns
    -----
    CodecWarning
        When silences were shortened, notes cut at the length limit, or parts merged or
        dropped (``warning.report`` holds the counts).
    """
    config = config or default_config()
    if style is not None:
        _style_index(config, style)  # a bad label fails before any work
    cpp = _backend.resolve(backend) == "cpp"
    if config.version == 1 and cpp:  # the common case, kept short: encode runs per file
        tokens, report = _backend.core().codec_encode(*_prepare(score, config, check=False),
                                                      _c_params(config))
    else:
        tokens, report = _encode_one(score, config, style, cpp, "encode")
    if report:  # None (C++) or {} (Python): nothing to say
        _warn(_as_report(report, config), config, "encode", None)
    return tokens


def _as_report(report, config) -> dict:
    """A backend's report as one dict: the Python backends make dicts (version 2) or a tuple
    (version 1), the C++ core tuples."""
    if isinstance(report, dict):
        return report
    if report is None:
        return {}
    if config.version == 1:
        return _v1_report(report, config)
    keys = ("notes_capped", "silences_shortened", "steps_removed", "parts_merged",
            "parts_dropped", "notes_dropped")
    d = {k: int(v) for k, v in zip(keys, report) if v}
    if "steps_removed" in d:
        d["beats_removed"] = d.pop("steps_removed") / config.steps_per_beat
    return d


def encode_many(scores: Sequence[Score], config: CodecConfig | None = None, *,
                styles: Sequence[str | None] | None = None, threads: int | None = None,
                backend: str | None = None, reports: list | None = None) -> list:
    """Tokens of many scores (a list of int32 arrays, in order).

    With the C++ backend the scores are encoded on ``threads`` threads (default: all cores)
    with the GIL released. ``styles``: one style label per score (version 2). ``reports``: a
    list that receives one report dict per score (what was shortened or dropped; empty when
    nothing), instead of a CodecWarning per score.
    """
    config = config or default_config()
    if threads is not None and (not _is_int(threads) or threads < 1):
        raise ValueError(f"encode_many: threads must be a positive int or None, got {threads!r}")
    scores = list(scores)
    if styles is not None and len(styles) != len(scores):
        raise ValueError(f"encode_many: {len(styles)} styles for {len(scores)} scores")
    cpp = _backend.resolve(backend) == "cpp"
    prepared = []
    for i, s in enumerate(scores):
        try:
            p = _prepare(s, config, check=not cpp)
            if config.version == 2:
                p = p + _c_events(_events(s, config, None if styles is None else styles[i]))
            prepared.append(p)
        except CodecError as exc:
            raise CodecError(f"encode_many: score {i}: {exc}") from None
    n = threads if threads is not None else (os.cpu_count() or 1)
    if cpp and config.version == 2:
        out = _backend.core().codec_encode_v2(prepared, _c_params(config), int(n))
    elif cpp:
        out = _backend.core().codec_encode_many(prepared, _c_params(config), int(n))
    else:
        out = []
        for i, p in enumerate(prepared):
            try:
                if config.version == 2:
                    out.append(_python_v2.encode(*p[:1], _python_v2.Events(*p[4:]), *p[1:4],
                                                 config))
                else:
                    out.append(_python.encode_notes(*p, config))
            except CodecError as exc:
                raise CodecError(f"encode_many: score {i}: {exc}") from None
    tokens = []
    for i, (tok, rep) in enumerate(out):
        if reports is not None:
            reports.append(_as_report(rep, config))
        elif rep:
            _warn(_as_report(rep, config), config, f"encode_many: score {i}", i)
        tokens.append(tok)
    return tokens


def _decode_scale(config: CodecConfig, ticks_per_beat: int, tempo: int):
    """(num, den): tick = (2 * step * num + den) // (2 * den)."""
    if config.timing == "beats":
        return ticks_per_beat, config.steps_per_beat
    return 1000 * config.step_ms * ticks_per_beat, tempo


def _checked_tokens(tokens, config: CodecConfig) -> np.ndarray:
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
    return tok.astype(np.int32)


def decode_piece(tokens, config: CodecConfig, *, backend: str | None = None):
    """Version 2: the ``Piece`` of a token sequence (what ``decode`` assembles into a Score)."""
    tok = _checked_tokens(tokens, config)
    g = grammar(config)
    if _backend.resolve(backend) == "cpp":
        raw = _backend.core().codec_decode_v2(tok, g.table, g.start_state, _c_params(config))
        return _piece_from_c(raw)
    return _python_v2.decode_tokens(tok, g, config)


def _piece_from_c(raw: tuple):
    (programs, head, on, dur, code, vel, part, tempo_ch, meter_ch) = raw
    key, style, density, tempo, meter, end = (int(x) for x in head)
    return _python_v2.Piece(
        programs=[int(p) for p in programs], key=key, style=style, density=density,
        tempo=tempo, meter=meter, on=on, dur=dur, code=code, vel=vel, part=part,
        tempo_changes=[(int(a), int(b)) for a, b in tempo_ch.reshape(-1, 2).tolist()],
        meter_changes=[(int(a), int(b)) for a, b in meter_ch.reshape(-1, 2).tolist()],
        end=end)


def decode(tokens, config: CodecConfig | None = None, *, backend: str | None = None,
           ticks_per_beat: int = 480, tempo: int | None = None) -> Score:
    """The score of a token sequence (complete, or a grammar-valid prefix).

    Version 1: notes on track 0, channel 0 (drums: channel 9), one tempo: ``tempo`` or
    ``config.tempo`` (microseconds per beat). Version 2: one track per part (see
    ``musgen.codec``), the tempo map, meters and key the tokens hold (``tempo`` must be None).
    Raises CodecError naming the position and the token at the first grammar violation; tokens
    after EOS may only be PAD. Exact on the grid when ``ticks_per_beat`` is a multiple of
    ``steps_per_beat``. Note hygiene applies: a note still sounding when its pitch is struck
    again in its part (version 1: channel) ends there, and no note is longer than
    ``config.max_note_beats``.
    """
    config = config or default_config()
    if not _is_int(ticks_per_beat) or not (1 <= ticks_per_beat <= 0x7FFF):
        raise CodecError(f"decode: ticks_per_beat must be an int in [1, 32767], "
                         f"got {ticks_per_beat!r}")
    if config.version == 2:
        if tempo is not None:
            raise CodecError("decode: version-2 tokens carry their own tempo; tempo= is for "
                             "version 1")
        return assemble(decode_piece(tokens, config, backend=backend), config,
                        int(ticks_per_beat))
    tempo = config.tempo if tempo is None else tempo
    if not _is_int(tempo) or not (1 <= tempo <= 0xFFFFFF):
        raise CodecError(f"decode: tempo must be microseconds per beat in [1, 16777215], "
                         f"got {tempo!r}")
    tok = _checked_tokens(tokens, config)
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


def read_header(tokens, config: CodecConfig, *, check: bool = True) -> dict:
    """Version 2: the header conditions of a token sequence, by name: ``programs`` (list of
    ints, 128 = drums), ``key`` (index 0..23), ``style`` (label), ``density`` (bin), ``tempo``
    (bin) and ``time_signature`` ("N/D"); a condition the tokens do not reach is None.

    ``check=False`` skips the grammar check of the header tokens: for streams ``encode`` has
    just made (``prepare`` reads one back per file)."""
    if config.version != 2:
        raise CodecError("read_header: version-1 tokens have no header")
    head = np.asarray(tokens)[:config.max_parts + 7]
    if check:
        head = _checked_tokens(head, config)
        grammar(config).walk(head)
    c = config
    program, key, style, density = c.program_base, c.key_base, c.style_base, c.density_base
    tempo, timesig, bar = c.tempo_base, c.timesig_base, c.bar_id
    out: dict = {"programs": [], "key": None, "style": None, "density": None, "tempo": None,
                 "time_signature": None}
    for t in head[1:].tolist():
        if t < program or t >= bar:
            break
        if t < key:
            out["programs"].append(t - program)
        elif t < style:
            out["key"] = t - key
        elif t < density:
            out["style"] = "unknown" if t == style else c.styles[t - style - 1]
        elif t < tempo:
            out["density"] = t - density
        elif t < timesig:
            out["tempo"] = t - tempo
        else:
            out["time_signature"] = c.time_signatures[t - timesig]
            break
    return out


# ---------------------------------------------------------------------------------- reference
def quantize(score: Score, config: CodecConfig | None = None, *, ticks_per_beat: int = 480
             ) -> Score:
    """What ``decode(encode(score))`` must give, computed from the notes without tokens.

    Version 1: drops drums (unless kept) and out-of-range pitches, puts times on the grid, bins
    velocities, merges same (onset, pitch) notes, ends re-struck notes, cuts notes at
    ``max_note_beats``, shortens silences beyond ``max_silence_beats`` by whole beats, and keeps
    the first tempo of the piece (the test oracle for round trips; call decode with ``tempo=``
    that tempo).

    Version 2: also one track per part (General MIDI names, programs, channels), tempo changes
    binned and moved to the next onset, meters mapped to the config's list and moved to the next
    bar line, silent bars beyond ``max_silence_beats`` removed, parts beyond ``max_parts``
    merged or dropped, and one key signature (the Key token's).
    """
    config = config or default_config()
    if config.version == 2:
        notes, seg_ticks, seg_rates, divisor = _prepare(score, config, "quantize")
        piece = _python_v2.analyse(notes, _events(score, config, None), seg_ticks, seg_rates,
                                   divisor, config)
        return assemble(piece, config, int(ticks_per_beat))
    notes, seg_ticks, seg_rates, divisor = _prepare(score, config, "quantize")
    on, dur, code, vel, _ = _python.hygienic_steps(notes, seg_ticks, seg_rates, divisor,
                                                   config)
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
