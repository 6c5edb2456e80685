"""Replay of fuzz inputs through the public Python API, on one backend: the same input formats
as the C++ harnesses (README.md), so an input that ever failed there is checked on every backend
by the ordinary tests (tests/test_fuzz.py). Each function returns what the input produced (a
value to compare across backends, or the error's type and message)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from configs import codec_config, codec_config_v2

HERE = Path(__file__).resolve().parent
REGRESSIONS = HERE / "regressions"


def _outcome(fn):
    """(kind, value): ("ok", result) or ("error", "ClassName: message")."""
    from musgen.errors import MusgenError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok", fn()
    except MusgenError as exc:
        return "error", f"{type(exc).__name__}: {exc}"


def _notes(score) -> list:
    return score.notes.tolist()


def midi_read(data: bytes, backend: str):
    from musgen import midi

    return _outcome(lambda: _notes(midi.read_bytes(data, backend=backend)))


def codec_encode(data: bytes, backend: str):
    from musgen import codec, midi

    if not data:
        return "ok", None
    config = codec_config(data[0])
    kind, score = _outcome(lambda: midi.read_bytes(data[1:], backend=backend))
    if kind != "ok":
        return kind, score
    return _outcome(lambda: codec.encode(score, config, backend=backend).tolist())


def codec_decode(data: bytes, backend: str):
    from musgen import codec

    if not data:
        return "ok", None
    config = codec_config(data[0])
    tokens = np.frombuffer(data[1:1 + (len(data) - 1) // 2 * 2], dtype="<i2").astype(np.int32)
    return _outcome(lambda: _notes(codec.decode(tokens, config, backend=backend,
                                                ticks_per_beat=480)))


def codec_decode_v2(data: bytes, backend: str):
    """The codec_decode_v2 harness's input: raw int16 tokens (bit 0x80 clear) or a walk."""
    from musgen import codec

    if not data:
        return "ok", None
    config = codec_config_v2(data[0] & 0x7F)
    if data[0] & 0x80:
        tokens = walk_tokens(data[1:], config)
    else:
        tokens = np.frombuffer(data[1:1 + (len(data) - 1) // 2 * 2], dtype="<i2").astype(np.int32)
    return _outcome(lambda: _notes(codec.decode(tokens, config, backend=backend,
                                                ticks_per_beat=480)))


def walk_tokens(data: bytes, config=None) -> np.ndarray:
    """The tokens the grammar_walk harness picks in walk mode (first byte < 0x80: a config of
    CONFIGS), or, given ``config``, the tokens ``data`` picks with its grammar."""
    from musgen import codec

    if config is None:
        config, data = codec_config(data[0]), data[1:]
    g = codec.grammar(config)
    state, tokens = g.start_state, []
    for b in data:
        if state == 1:  # S_END
            break
        allowed = [t for t in np.flatnonzero(g.table[state] >= 0).tolist() if t != config.pad_id]
        if not allowed:
            break
        t = allowed[b % len(allowed)]
        tokens.append(t)
        state = int(g.table[state, t])
    return np.array(tokens, dtype=np.int32)


def grammar_walk(data: bytes, backend: str):
    """Walk mode: decode (and, when complete, re-encode) the walked tokens; table mode: decode
    the tokens against the input's own (damaged) table."""
    from musgen import codec

    if not data:
        return "ok", None
    if data[0] < 0x80:
        config = codec_config(data[0])
        tokens = walk_tokens(data)
        # 8 ticks per grid step, as in the harness: exact, so decode/encode is a fixed point
        # after one round (the first applies note hygiene and shortens long silences)
        tpb = (8 * config.steps_per_beat if config.timing == "beats"
               else 8 * config.tempo // (1000 * config.step_ms))
        kind, score = _outcome(lambda: codec.decode(tokens, config, backend=backend,
                                                    ticks_per_beat=tpb))
        if kind != "ok" or not tokens.size or tokens[-1] != config.eos_id:
            return kind, None if kind == "ok" else score

        def round_trip():
            once = codec.encode(score, config, backend=backend)
            again = codec.decode(once, config, backend=backend, ticks_per_beat=tpb)
            return bool(np.array_equal(codec.encode(again, config, backend=backend), once))

        return _outcome(round_trip)
    return _outcome(lambda: _decode_with_table(data, backend))


def _decode_with_table(data: bytes, backend: str) -> list:
    """The table-mode input of fuzz_grammar_walk.cpp, decoded by ``backend``'s decoder."""
    from musgen import _backend, codec
    from musgen.codec import _python
    from musgen.codec.grammar import Grammar
    from musgen.codec.tokens import _c_params

    config = codec_config(data[0] & 0x7F)
    if len(data) < 4:
        return []
    n_states = 1 + data[1] % 8
    start = int(np.int8(np.uint8(data[2])))
    V = config.vocab_size
    table = np.full(n_states * V, -1, dtype=np.int32)
    body = np.frombuffer(data[3:3 + n_states * V], dtype=np.int8).astype(np.int32)
    table[:body.size] = np.fmod(body, n_states + 1)  # C's % keeps the sign
    table = table.reshape(n_states, V)
    rest = data[3 + min(len(data) - 3, n_states * V):]
    raw = np.frombuffer(rest[:len(rest) // 2 * 2], dtype="<i2").astype(np.int32)
    tokens = np.fmod(raw, V + 2).astype(np.int32)
    if not 0 <= start < n_states:
        raise codec.CodecError("decode_tokens: bad grammar table")
    if backend == "cpp":
        notes = _backend.core().codec_decode(tokens, table, start, _c_params(config), 480,
                                             config.steps_per_beat)
    else:
        g = Grammar(table=table, start_state=start, can_end=np.ones(n_states, bool),
                    config=config)
        notes = _python.decode_tokens(tokens, g, config, 480, config.steps_per_beat)
    return np.asarray(notes).tolist()


REPLAY = {"midi_read": midi_read, "codec_encode": codec_encode, "codec_decode": codec_decode,
          "codec_decode_v2": codec_decode_v2, "grammar_walk": grammar_walk}


def regression_inputs() -> list:
    """(target, path) of every checked-in input that once failed a C++ harness."""
    return [(t, p) for t in sorted(REPLAY) for p in sorted((REGRESSIONS / t).glob("*"))
            if p.is_file()]
