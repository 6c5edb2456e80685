"""Grammar tests: every sequence the automaton accepts decodes (identically on every backend),
complete ones are fixed points of encode(decode(.)), and violations are rejected by decode with
the same message on every backend."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musgen import CodecError, Score, codec
from musgen._backend import has_cpp

# Random and real scores hold long silences and notes that encode shortens (with a CodecWarning);
# the warnings themselves are tested in test_codec_limits.py.
pytestmark = pytest.mark.filterwarnings("ignore::musgen.CodecWarning")

CONFIGS = {
    "default": codec.default_config(),
    "small": codec.CodecConfig(steps_per_beat=4, max_time_shift=3, max_duration=2,
                               pitch_range=(55, 58), velocity_bins=2, keep_drums=True,
                               drum_pitch_range=(35, 36)),
    "seconds": codec.default_config(timing="seconds", max_time_shift=5, max_duration=4),
}
BACKENDS = ["cpp", "python"] if has_cpp() else ["python"]
HYP = settings(max_examples=80, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture])


@st.composite
def walks(draw, cfg, max_len=120):
    """A random walk through the grammar: each token drawn among those allowed. Returns
    (tokens, final state)."""
    g = codec.grammar(cfg)
    state = g.start_state
    tokens = []
    for _ in range(draw(st.integers(0, max_len))):
        allowed = np.flatnonzero(g.mask(state))
        if allowed.size == 0:
            break
        t = int(allowed[draw(st.integers(0, allowed.size - 1))])
        tokens.append(t)
        state = int(g.table[state, t])
    return np.array(tokens, dtype=np.int32), state


def decode_all(tokens, cfg):
    """Decoded scores of every backend, or the CodecError message of each."""
    out = []
    for b in BACKENDS:
        try:
            out.append(codec.decode(tokens, cfg, backend=b))
        except CodecError as exc:
            out.append(str(exc))
    return out


def test_grammar_shape_and_start():
    for cfg in CONFIGS.values():
        g = codec.grammar(cfg)
        assert g.table.dtype == np.int32 and g.table.shape[1] == cfg.vocab_size
        assert g.can_end.dtype == np.bool_ and g.can_end.shape == (g.n_states,)
        assert g.table.min() >= -1 and g.table.max() < g.n_states
        # BOS only at the start, and only BOS there
        assert np.flatnonzero(g.mask(g.start_state)).tolist() == [cfg.bos_id]
        others = np.delete(g.table, g.start_state, axis=0)
        assert (others[:, cfg.bos_id] == -1).all()
        # EOS allowed exactly where can_end says
        assert ((g.table[:, cfg.eos_id] >= 0) == g.can_end).all()
        assert g.grammar_mask(0).tolist() == codec.grammar_mask(g, 0).tolist()
        assert codec.grammar(cfg) is g  # cached


def test_grammar_accepts_what_encode_produces(backend):
    cfg = CONFIGS["small"]
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = 40
        start = rng.integers(0, 4000, n)
        rows = list(zip(np.zeros(n, int), rng.choice([0, 9], n), rng.integers(30, 70, n),
                        rng.integers(0, 128, n), start, start + rng.integers(0, 900, n)))
        from musgen.score import NOTE_DTYPE

        s = Score(notes=np.array(rows, dtype=NOTE_DTYPE))
        toks = codec.encode(s, cfg, backend=backend)
        g = codec.grammar(cfg)
        assert g.walk(toks[:-1]) >= 0 and g.can_end[g.walk(toks[:-1])]
        assert g.walk(toks) == codec.S_END


@pytest.mark.parametrize("name", sorted(CONFIGS))
@HYP
@given(data=st.data())
def test_grammar_random_walks_decode_identically(name, data):
    cfg = CONFIGS[name]
    tokens, state = data.draw(walks(cfg))
    results = decode_all(tokens, cfg)
    assert all(isinstance(r, Score) for r in results), results
    for r in results[1:]:
        assert r.equals(results[0])
    # the notes are the Score order and in range
    n = results[0].notes
    key = np.lexsort((n["end"], n["pitch"], n["channel"], n["start"]))
    assert (key == np.arange(n.size)).all()
    assert (n["end"] > n["start"]).all() and (n["velocity"] >= 1).all()


@pytest.mark.parametrize("name", sorted(CONFIGS))
@HYP
@given(data=st.data())
def test_grammar_complete_sequences_are_fixed_points(name, data):
    """decode(tokens) is hygienic (no note sounds through a re-strike of its pitch, none is
    longer than the cap), so encoding it gives tokens that decode to the same score and encode
    to themselves; tokens that needed no hygiene come back unchanged."""
    cfg = dataclasses.replace(CONFIGS[name], max_silence_beats=None)  # decode keeps silences
    g = codec.grammar(cfg)
    tokens, state = data.draw(walks(cfg))
    if state == codec.S_END:
        tokens = tokens[:int(np.flatnonzero(tokens == cfg.eos_id)[0]) + 1]
    elif g.can_end[state]:
        tokens = np.append(tokens, np.int32(cfg.eos_id))
    else:
        return  # a prefix; covered by the decode test above
    for b in BACKENDS:
        score = codec.decode(tokens, cfg, backend=b)
        again = codec.encode(score, cfg, backend=b)
        assert codec.decode(again, cfg, backend=b).equals(score)
        assert codec.encode(codec.decode(again, cfg, backend=b), cfg,
                            backend=b).tolist() == again.tolist()
        if not _needs_hygiene(tokens, cfg):
            assert again.tolist() == tokens.tolist()


def _needs_hygiene(tokens, cfg) -> bool:
    """Whether a version-1 stream holds a note sounding through a re-strike of its pitch, or
    one longer than the cap."""
    types = cfg.token_types[tokens]
    clock, ends, code, after_vel = 0, {}, None, False
    for t, ty in zip(tokens.tolist(), types.tolist()):
        if ty == codec.TYPE_TIME:
            clock += int(cfg.token_steps[t])
        elif ty in (codec.TYPE_PITCH, codec.TYPE_DRUM_PITCH):
            code = t
            if ends.get(code, -1) > clock:
                return True
        elif ty == codec.TYPE_VELOCITY:
            after_vel = True
            continue
        elif ty == codec.TYPE_DURATION:
            d = int(cfg.token_durations[t])
            ends[code] = clock + d if after_vel else ends[code] + d
            if cfg.note_cap_steps and ends[code] - clock > cfg.note_cap_steps:
                return True
        after_vel = False
    return False


def test_grammar_prefix_drops_an_unfinished_note(backend):
    cfg = CONFIGS["default"]
    ids = cfg.token_id
    full = [cfg.bos_id, ids("Pitch_60"), ids("Velocity_10"), ids("Duration_48"),
            ids("Duration_2"), ids("Pitch_62"), ids("Velocity_10"), ids("Duration_4"),
            ids("TimeShift_5"), ids("Pitch_64"), ids("Velocity_10"), ids("Duration_48"),
            cfg.eos_id]
    counts = []
    for cut in range(len(full) + 1):
        s = codec.decode(full[:cut], cfg, backend=backend)
        counts.append(s.n_notes)
    assert counts == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    # a prefix that stops after the longest Duration keeps what it read so far
    s = codec.decode(full[:4], cfg, backend=backend)
    assert (s.notes["end"] - s.notes["start"]).tolist() == [48 * 40]
    s = codec.decode(full[:5], cfg, backend=backend)
    assert (s.notes["end"] - s.notes["start"]).tolist() == [50 * 40]


def test_grammar_pad_after_eos_only(backend):
    cfg = CONFIGS["default"]
    toks = [cfg.bos_id, cfg.token_id("Pitch_60"), cfg.token_id("Velocity_1"),
            cfg.token_id("Duration_1"), cfg.eos_id]
    assert codec.decode(toks + [cfg.pad_id] * 3, cfg, backend=backend).n_notes == 1
    with pytest.raises(CodecError, match=r"token 1 \(BOS\) at position 6 is not allowed here; "
                                         r"allowed: PAD$"):
        codec.decode(toks + [cfg.pad_id, cfg.bos_id], cfg, backend=backend)


@pytest.mark.parametrize("tokens, message", [
    (["Pitch_60"], r"token 111 \(Pitch_60\) at position 0 is not allowed here; allowed: BOS$"),
    (["BOS", "Velocity_3"], r"token 182 \(Velocity_3\) at position 1 .*allowed: EOS, "
                            r"TimeShift_1..TimeShift_48, Pitch_0..Pitch_127$"),
    (["BOS", "Pitch_60", "Duration_3"], r"position 2 .*allowed: Velocity_0..Velocity_31$"),
    (["BOS", "Pitch_60", "Velocity_3", "Pitch_61"], r"position 3 .*allowed: "
                                                     r"Duration_1..Duration_48$"),
    (["BOS", "TimeShift_3", "TimeShift_3"], r"position 2 .*allowed: Pitch_0..Pitch_127$"),
    (["BOS", "TimeShift_3", "EOS"], r"token 2 \(EOS\) at position 2"),
    (["BOS", "TimeShift_48", "EOS"], r"position 2 .*allowed: TimeShift_1..TimeShift_48, "
                                     r"Pitch_0..Pitch_127$"),
    (["BOS", "Pitch_60", "Velocity_3", "Duration_3", "Duration_3"], "position 4"),
    (["BOS", "Pitch_60", "Velocity_3", "Duration_3", "Pitch_60"],
     r"token 111 \(Pitch_60\) at position 4 .*allowed: EOS, TimeShift_1..TimeShift_48, "
     r"Pitch_61..Pitch_127$"),
    (["BOS", "Pitch_127", "Velocity_3", "Duration_3", "Pitch_0"],
     r"allowed: EOS, TimeShift_1..TimeShift_48$"),
    (["BOS", "EOS", "Pitch_3"], r"position 2 .*allowed: PAD$"),
    ([1, 259], r"token 259 at position 1 is outside the vocabulary \(ids 0..258\)"),
    ([1, -4], r"token -4 at position 1 is outside the vocabulary"),
    ([1, 1 << 40], r"token 1099511627776 at position 1 is outside the vocabulary"),
])
def test_grammar_violations_rejected_by_decode(backend, tokens, message):
    cfg = CONFIGS["default"]
    ids = np.array([cfg.token_id(t) if isinstance(t, str) else t for t in tokens],
                   dtype=np.int64)
    with pytest.raises(CodecError, match=r"^decode: .*" + message):
        codec.decode(ids, cfg, backend=backend)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@HYP
@given(data=st.data())
def test_grammar_mutations_rejected_identically(name, data):
    """Change one token of a valid walk: decode succeeds exactly when the automaton accepts the
    result, and on a violation every backend gives the same message, naming the position."""
    cfg = CONFIGS[name]
    g = codec.grammar(cfg)
    tokens, _ = data.draw(walks(cfg, max_len=60))
    if tokens.size == 0:
        return
    pos = data.draw(st.integers(0, tokens.size - 1))
    tokens = tokens.copy()
    tokens[pos] = data.draw(st.integers(-2, cfg.vocab_size + 2))
    try:
        g.walk(tokens)
        accepted = True
    except CodecError as exc:
        accepted = False
        walk_message = str(exc)
    results = decode_all(tokens, cfg)
    if accepted:
        assert all(isinstance(r, Score) for r in results), results
    else:
        assert results == [walk_message] * len(BACKENDS)
        # the first violation is at the changed token or after it (a valid token in the wrong
        # place breaks a later one)
        found = re.search(r" at position (\d+) ", walk_message)
        assert found and int(found.group(1)) >= pos


def test_grammar_rejects_bad_token_arrays(backend):
    cfg = CONFIGS["default"]
    with pytest.raises(CodecError, match="1-D integer array"):
        codec.decode(np.zeros((2, 2), np.int32), cfg, backend=backend)
    with pytest.raises(CodecError, match="1-D integer array"):
        codec.decode(np.array([1.0, 2.0]), cfg, backend=backend)
    with pytest.raises(CodecError, match="ticks_per_beat must be"):
        codec.decode([1, 2], cfg, backend=backend, ticks_per_beat=0)
    with pytest.raises(CodecError, match="tempo must be"):
        codec.decode([1, 2], cfg, backend=backend, tempo=0)


def test_grammar_transpose_keeps_sequences_valid():
    cfg = CONFIGS["small"]
    g = codec.grammar(cfg)
    rng = np.random.default_rng(1)
    for _ in range(50):
        state, toks = g.start_state, []
        for _ in range(80):
            allowed = np.flatnonzero(g.mask(state))
            if allowed.size == 0:
                break
            toks.append(int(rng.choice(allowed)))
            state = int(g.table[state, toks[-1]])
        for k in (-3, -1, 1, 3):
            moved = cfg.transpose(np.array(toks, np.int32), k)
            if moved is not None:
                g.walk(moved)  # raises on a violation
