"""The generation rules of the engine loop (min_length, endings, bar clock, parts, header
blocks, voices, static masks and biases, density) on every implementation of the loop: the C++
engine, the NumPy statement, and the CUDA kernels' code emulated on the host. Each rule is
checked on the tokens by an independent walk written here, and the implementations must sample
the same tokens. Version-1 rules run on the default codec; the version-2 rules (bars, parts,
header conditions) on a small hand-made vocabulary with its own grammar and tables."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from musgen import codec
from musgen.engine._random import random_model_dir
from musgen.engine.rules import (BUDGET, CLOSED, CUT, EOS_AFTER, EOS_EARLY, Rules, TokenTables)
from musgen.errors import CodecError
from musgen.generation import token_tables
from musgen.modeldir import load_model_dir, save_model_dir

from conftest import engine_on, loop_backends

BACKENDS = loop_backends()


@pytest.fixture(params=BACKENDS)
def impl(request) -> str:
    return request.param


# ---------------------------------------------------------------------------- version 1
@pytest.fixture(scope="module")
def v1():
    config = codec.default_config()
    return SimpleNamespace(config=config, tables=token_tables(config),
                           grammar=codec.grammar(config), eos=config.eos_id)


def _v1_model(path, config, eos_bias: float, seed: int = 7):
    d = random_model_dir(path, vocab_size=config.vocab_size, embedding_dim=12,
                         lstm_units=[24, 16], seed=seed, scale=1.2, codec=config.to_dict())
    cfg, t = load_model_dir(d)
    t["head/bias"][config.eos_id] = eos_bias
    return save_model_dir(d, cfg, t)


@pytest.fixture(scope="module")
def eager_model(tmp_path_factory, v1):
    """A random model that wants to end: EOS gets a large logit everywhere it is allowed."""
    return _v1_model(tmp_path_factory.mktemp("rules") / "eager", v1.config, 4.0)


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory, v1):
    """A random model that rarely ends by itself."""
    return _v1_model(tmp_path_factory.mktemp("rules") / "plain", v1.config, -40.0, seed=3)


def _gen(path, impl, v1, n=6, **kw):
    eng = engine_on(path, impl)
    kw.setdefault("primer", [v1.config.bos_id])
    kw.setdefault("seed", 11)
    kw.setdefault("max_tokens", 4000)
    return eng.generate_tokens(n, grammar=v1.grammar, eos_id=v1.eos, **kw)


class Walk:
    """An independent walk of version-1 tokens: clock, notes (start, end, pitch) with a
    re-strike ending the earlier note on its key, and the generated counts."""

    def __init__(self, config, tokens, primer_len=1):
        tables = token_tables(config)
        self.clock = 0
        self.notes = []  # [start, end, pitch]
        self.gen_notes = self.gen_steps = 0
        for i, v in enumerate(np.asarray(tokens).tolist()):
            gen = i >= primer_len
            if tables.clock_steps[v]:
                self.clock += int(tables.clock_steps[v])
                self.gen_steps += int(tables.clock_steps[v]) if gen else 0
            elif tables.is_note[v]:
                for note in self.notes:  # a re-strike ends the earlier note on that key
                    if note[2] == v and note[1] > self.clock:
                        note[1] = self.clock
                self.notes.append([self.clock, self.clock, v])
                self.gen_notes += 1 if gen else 0
            elif tables.duration[v]:
                self.notes[-1][1] += int(tables.duration[v])

    def longest_rest(self, until=None) -> int:
        """The longest span, in steps, with no note sounding between the first note and
        ``until`` (default: the final clock)."""
        return _longest_rest([(s, e) for s, e, _ in self.notes],
                             self.clock if until is None else until)

    def most_voices(self) -> int:
        events = sorted([(s, 1) for s, e, _ in self.notes if e > s]
                        + [(e, -1) for s, e, _ in self.notes if e > s])
        now = top = 0
        for _, d in events:
            now += d
            top = max(top, now)
        return top


def test_rules_min_length_masks_eos_until_the_budget(eager_model, impl, v1):
    free = _gen(eager_model, impl, v1, length=20, unit="notes",
                rules=Rules(v1.tables, allow_early_end=True, ending="none"))
    assert (free.reasons == EOS_EARLY).sum() >= 3  # this model ends early when it may
    held = _gen(eager_model, impl, v1, length=20, unit="notes",
                rules=Rules(v1.tables, ending="none"))
    for toks, reason in zip(held, held.reasons):
        walk = Walk(v1.config, np.concatenate([[1], toks]))
        assert walk.gen_notes >= 20 and reason in (BUDGET, EOS_AFTER)
    # a budget in steps: 8 beats at least, whatever the model wants
    beats = _gen(eager_model, impl, v1, length=8 * 12, unit="steps",
                 rules=Rules(v1.tables, ending="beat"))
    assert all(Walk(v1.config, np.concatenate([[1], t])).clock >= 96 for t in beats)


@pytest.mark.parametrize("unit,length", [("steps", 8 * 12 + 5), ("notes", 17), ("tokens", 50)])
def test_rules_beat_ending_closes_at_the_next_beat(plain_model, eager_model, impl, v1, unit,
                                                   length):
    for model in (plain_model, eager_model):
        out = _gen(model, impl, v1, length=length, unit=unit, rules=Rules(v1.tables))
        for toks, reason in zip(out, out.reasons):
            assert reason == CLOSED
            walk = Walk(v1.config, np.concatenate([[1], toks]))
            assert walk.clock % 12 == 0  # ends on a beat ...
            assert v1.tables.clock_steps[toks[-1]] > 0  # ... reached by a time step
            before = Walk(v1.config, np.concatenate([[1], toks[:-1]]))
            got = {"steps": walk.gen_steps, "notes": walk.gen_notes, "tokens": len(toks)}[unit]
            assert got >= length
            # the closing point is the first beat after the budget: nothing beyond it
            assert walk.clock - before.clock <= 12 or unit == "steps"
            if unit == "steps":
                assert walk.clock == -(-length // 12) * 12


def test_rules_model_ending_lets_the_model_end_in_the_grace_window(eager_model, impl, v1):
    out = _gen(eager_model, impl, v1, n=8, length=30, unit="notes",
               rules=Rules(v1.tables, ending="model", grace_steps=2 * 12))
    assert set(out.reasons.tolist()) <= {EOS_AFTER, CLOSED}
    assert (out.reasons == EOS_AFTER).any()
    for toks, reason in zip(out, out.reasons):
        walk = Walk(v1.config, np.concatenate([[1], toks]))
        assert walk.gen_notes >= 30
        if reason == CLOSED:
            assert walk.clock % 12 == 0


def _pitch_share(out, v1, pcs):
    tables = v1.tables
    pitches = np.concatenate([tables.pitch[t][tables.pitch[t] >= 0] for t in out])
    return np.isin(pitches % 12, list(pcs)).mean(), pitches.size


def test_rules_key_mask_and_bias(plain_model, impl, v1):
    from musgen.engine.constraints import StaticArrays, parse_key

    scale = parse_key("D minor")
    shares = []
    for strictness in (0.0, 0.5, 0.8, 0.95, 1.0):
        static = StaticArrays(v1.tables, v1.config.token_names)
        static.key(scale, strictness)
        allowed, bias = static.arrays()
        out = _gen(plain_model, impl, v1, n=8, length=60, unit="notes", seed=4,
                   rules=Rules(v1.tables, allowed=allowed, bias=bias))
        share, count = _pitch_share(out, v1, scale.pitch_classes)
        assert count >= 8 * 60
        shares.append(share)
    assert shares[-1] == 1.0  # the hard mask: every pitch in the scale
    assert all(a < b for a, b in zip(shares, shares[1:])), shares  # rises with strictness
    assert shares[0] < 0.8  # without a preference this model is not in D minor anyway


def test_rules_pitch_range_is_never_left(plain_model, impl, v1):
    from musgen.engine.constraints import StaticArrays

    static = StaticArrays(v1.tables, v1.config.token_names)
    static.pitch_range(55, 62)
    allowed, _ = static.arrays()
    out = _gen(plain_model, impl, v1, length=40, unit="notes",
               rules=Rules(v1.tables, allowed=allowed))
    pitches = np.concatenate([v1.tables.pitch[t][v1.tables.pitch[t] >= 0] for t in out])
    assert pitches.size >= 6 * 40 and pitches.min() >= 55 and pitches.max() <= 62
    assert len(set(pitches.tolist())) >= 5


@pytest.mark.parametrize("voices", [1, 2, 4])
def test_rules_max_voices_never_exceeded(plain_model, impl, v1, voices):
    out = _gen(plain_model, impl, v1, length=30, unit="notes",
               rules=Rules(v1.tables, max_voices=voices))
    free = _gen(plain_model, impl, v1, length=30, unit="notes", rules=Rules(v1.tables))
    tops = [Walk(v1.config, np.concatenate([[1], t])).most_voices() for t in out]
    assert max(tops) <= voices and max(tops) == voices
    assert max(Walk(v1.config, np.concatenate([[1], t])).most_voices() for t in free) > voices


def _longest_rest(spans, until) -> int:
    """Longest gap in steps within the union of (start, end) spans, after the first start and
    up to ``until``."""
    if not spans:
        return 0
    spans = sorted(spans)
    reach, gap = spans[0][1], 0
    for start, end in spans[1:]:
        gap = max(gap, start - reach)
        reach = max(reach, end)
    return max(gap, until - reach)


@pytest.mark.parametrize("rest", [0, 6, 24])
def test_rules_max_rest_never_exceeded(plain_model, impl, v1, rest):
    """No clock advance leaves a longer silence than max_rest_steps after the first note (the
    closing point included); without the rule this model rests much longer."""
    kw = dict(n=8, length=16 * 12, unit="steps", seed=4)
    out = _gen(plain_model, impl, v1, rules=Rules(v1.tables, max_rest_steps=rest), **kw)
    free = _gen(plain_model, impl, v1, rules=Rules(v1.tables), **kw)
    rests = [Walk(v1.config, np.concatenate([[1], t])).longest_rest() for t in out]
    assert max(rests) <= rest and (out.reasons == CLOSED).all()
    assert max(Walk(v1.config, np.concatenate([[1], t])).longest_rest() for t in free) > 24
    if rest == 24:
        assert max(rests) > 6  # the rule stops at its limit, not before


def _thin_share(walks, voices: int) -> float:
    """Share of the grid steps, from each piece's first note to its end, where fewer than
    ``voices`` notes sound."""
    thin = total = 0
    for w in walks:
        spans = [(s, e) for s, e, _ in w.notes]
        first = min(s for s, _ in spans)
        for k in range(first, w.clock):
            thin += sum(1 for s, e in spans if s <= k < e) < voices
            total += 1
    return thin / total


@pytest.mark.parametrize("voices", [1, 3])
def test_rules_min_voices_keeps_that_many_notes_sounding(plain_model, impl, v1, voices):
    """Time waits for the notes: fewer than ``min_voices`` notes sound only where no note could
    come (a chord at the top of the range: the grammar orders a chord low to high), so the
    streams never dead-end; with max_voices of the same value, never more."""
    kw = dict(n=12, length=8 * 12, unit="steps", seed=9)
    out = _gen(plain_model, impl, v1, rules=Rules(v1.tables, min_voices=voices,
                                                  max_voices=voices), **kw)
    free = _gen(plain_model, impl, v1, rules=Rules(v1.tables), **kw)
    walks = [Walk(v1.config, np.concatenate([[1], t])) for t in out]
    assert (out.reasons == CLOSED).all() and max(w.most_voices() for w in walks) == voices
    held = _thin_share(walks, voices)
    loose = _thin_share([Walk(v1.config, np.concatenate([[1], t])) for t in free], voices)
    assert loose > 0.15 and held < 0.2 * loose
    if voices == 1:  # one note can always come after a time step: the rule holds throughout
        assert held == 0.0


def test_rules_density_moves_notes_per_beat_toward_the_target(plain_model, impl, v1):
    def per_beat(out):
        walks = [Walk(v1.config, np.concatenate([[1], t])) for t in out]
        return sum(w.gen_notes for w in walks) / (sum(w.gen_steps for w in walks) / 12)

    kw = dict(n=8, length=24 * 12, unit="steps", seed=2)
    free = per_beat(_gen(plain_model, impl, v1, rules=Rules(v1.tables), **kw))
    low = per_beat(_gen(plain_model, impl, v1, rules=Rules(v1.tables, density=1.0), **kw))
    high = per_beat(_gen(plain_model, impl, v1, rules=Rules(v1.tables, density=6.0), **kw))
    assert low < free < high
    assert abs(low - 1.0) < abs(free - 1.0) and abs(high - 6.0) < abs(free - 6.0)


def test_rules_same_tokens_on_every_implementation(plain_model, eager_model, v1):
    from musgen.engine.constraints import StaticArrays, parse_key

    if len(BACKENDS) < 2:
        pytest.skip("one implementation of the loop in this build")
    static = StaticArrays(v1.tables, v1.config.token_names)
    static.key(parse_key("Eb major"), 0.7)
    static.pitch_range(50, 80)
    allowed, bias = static.arrays()
    rng = np.random.default_rng(3)
    n = 12
    settings = dict(temperature=rng.choice([0.0, 0.7, 1.0, 1.3], n).astype(np.float32),
                    top_k=rng.choice([0, 5, 20], n), top_p=rng.choice([1.0, 0.9], n),
                    seed=[int(s) for s in rng.integers(0, 2**63, n)])
    cases = [Rules(v1.tables, allowed=allowed, bias=bias, max_voices=3, density=2.5),
             Rules(v1.tables, ending="model", grace_steps=30, allow_early_end=True),
             Rules(v1.tables, ending="none", max_voices=2, max_rest_steps=3),
             Rules(v1.tables, max_rest_steps=0, density=1.5),
             Rules(v1.tables, max_voices=4, min_voices=4),
             Rules(v1.tables, min_voices=2, ending="model", grace_steps=12)]
    for model in (plain_model, eager_model):
        for rules in cases:
            runs = [_gen(model, b, v1, n=n, length=12 * 12, unit="steps", rules=rules,
                         **settings) for b in BACKENDS]
            for other in runs[1:]:
                assert [len(t) for t in other] == [len(t) for t in runs[0]]
                for a, b in zip(runs[0], other):
                    np.testing.assert_array_equal(a, b)
                np.testing.assert_array_equal(other.reasons, runs[0].reasons)


def test_rules_cap_cuts_and_is_reported(plain_model, impl, v1):
    out = _gen(plain_model, impl, v1, length=500, unit="notes", max_tokens=37,
               rules=Rules(v1.tables))
    assert [len(t) for t in out] == [37] * 6 and (out.reasons == CUT).all()


def _dead_end(tmp_path, v1):
    """A model and rules whose static mask forbids every note and time step: after BOS only EOS
    is left, and the min_length rule forbids it too, so every stream dies at step 0."""
    from musgen.engine.constraints import StaticArrays

    model = _v1_model(tmp_path / "m", v1.config, -40.0)
    static = StaticArrays(v1.tables, v1.config.token_names)
    allowed = np.asarray(static.allowed, np.uint8)
    allowed[v1.config.time_base:v1.config.velocity_base] = 0
    return model, Rules(v1.tables, allowed=allowed)


def test_rules_dead_end_names_the_stream_and_step(tmp_path, impl, v1):
    """Nothing is left after BOS (_dead_end): CodecError naming the stream and the step (a mask
    that leaves notes but no way on is refused the same way)."""
    model, rules = _dead_end(tmp_path, v1)
    with pytest.raises(CodecError, match=r"allows no token \(stream 0, step 0\)"):
        _gen(model, impl, v1, n=2, length=10, rules=rules)


@pytest.mark.parametrize("n,threads", [(6, 1), (6, 2), (6, 3), (6, 6), (2, 2), (3, 8)])
def test_rules_dead_end_report_does_not_depend_on_threads(tmp_path, impl, v1, n, threads):
    """Every stream dies at step 0: whichever chunk or team member gets there first, the error
    names stream 0, as one thread and the NumPy engine do (repeated, as a race would not show
    every time)."""
    model, rules = _dead_end(tmp_path, v1)
    for _ in range(25):
        with pytest.raises(CodecError, match=r"allows no token \(stream 0, step 0\)"):
            _gen(model, impl, v1, n=n, length=10, rules=rules, threads=threads)


# ---------------------------------------------------------------------------- version 2
# A small REMI-like vocabulary: header (Program, Key, Tempo, TimeSig), then bars of onsets
# with parts; 4 steps per beat, 4/4 bars of 16 steps by default, TimeShifts of 1..8 steps.
V2_NAMES = (["PAD", "BOS", "EOS", "Program_0", "Program_40", "Program_Drums", "Key_C", "Key_Am",
             "Tempo_90", "Tempo_120", "TimeSig_4_4", "TimeSig_3_4", "Bar"]
            + [f"TimeShift_{k}" for k in range(1, 9)] + [f"Part_{i}" for i in range(3)]
            + [f"Pitch_{p}" for p in range(60, 72)] + ["DrumPitch_36", "DrumPitch_38",
                                                       "DrumPitch_42"]
            + [f"Duration_{k}" for k in range(1, 5)])
ID = {name: i for i, name in enumerate(V2_NAMES)}


def _ids(prefix):
    return [i for n, i in ID.items() if n.startswith(prefix)]


def v2_tables():
    V = len(V2_NAMES)
    t = dict(clock_steps=np.zeros(V), is_note=np.zeros(V), pitch=np.full(V, -1),
             duration=np.zeros(V), is_bar=np.zeros(V), bar_steps=np.zeros(V),
             part=np.full(V, -1), program=np.full(V, -1), tempo_bpm=np.zeros(V))
    for name, i in ID.items():
        kind, _, arg = name.partition("_")
        if kind == "TimeShift":
            t["clock_steps"][i] = int(arg)
        elif kind in ("Pitch", "DrumPitch"):
            t["is_note"][i] = 1
            t["pitch"][i] = int(arg) if kind == "Pitch" else -1
        elif kind == "Duration":
            t["duration"][i] = int(arg)
        elif kind == "Bar":
            t["is_bar"][i] = 1
        elif kind == "TimeSig":
            t["bar_steps"][i] = int(arg.split("_")[0]) * 4
        elif kind == "Part":
            t["part"][i] = int(arg)
        elif kind == "Program":
            t["program"][i] = 128 if arg == "Drums" else int(arg)
        elif kind == "Tempo":
            t["tempo_bpm"][i] = float(arg)
    return TokenTables.of(dict(t, steps_per_beat=4, default_bar_steps=16, eos_id=2, bos_id=1))


def v2_grammar():
    """States: 0 start, 1 end, 2 after BOS, 3..5 after 1..3 Programs, 6 after Key, 7 after
    Tempo, 8 after the header TimeSig, 9 after Bar, 10 after a body TimeSig, 11 at an onset
    (after TimeShift), 12 after Part (a note must follow), 13 after a note, 14 note complete
    (after Duration), 15 after a body Tempo (a Part or a note must follow, as in codec
    version 2). Can end after Bar and after a complete note."""
    S = 16
    T = np.full((S, len(V2_NAMES)), -1, np.int32)
    T[0, ID["BOS"]] = 2
    T[1, ID["PAD"]] = 1
    programs, notes = _ids("Program_"), _ids("Pitch_") + _ids("DrumPitch_")
    T[2, programs] = 3
    T[3, programs] = 4
    T[4, programs] = 5
    T[[3, 4, 5], ID["Key_C"]] = 6
    T[[3, 4, 5], ID["Key_Am"]] = 6
    T[6, _ids("Tempo_")] = 7
    T[7, _ids("TimeSig_")] = 8
    T[8, ID["Bar"]] = 9
    for s in (9, 10, 11, 14):  # where an onset may go on
        T[s, _ids("TimeShift_")] = 11
        T[s, ID["Bar"]] = 9
        T[s, _ids("Part_")] = 12
        T[s, notes] = 13
    T[9, _ids("TimeSig_")] = 10
    T[[9, 10, 11], ID["Tempo_90"]] = 15
    T[[9, 10, 11], ID["Tempo_120"]] = 15
    T[15, _ids("Part_")] = 12
    T[15, notes] = 13
    T[12, notes] = 13
    T[13, _ids("Duration_")] = 14
    T[14, _ids("Duration_")] = 14
    T[[9, 14], ID["EOS"]] = 1
    can_end = np.zeros(S, bool)
    can_end[[9, 14]] = True
    return SimpleNamespace(table=T, start_state=0, can_end=can_end)


class BarWalk:
    """An independent walk of the hand-made version-2 tokens, asserting the bar and part rules
    token by token."""

    def __init__(self, tokens, tables):
        self.parts, self.clock, self.pos, self.bar_len = [], 0, 0, 16
        self.in_bar, self.part, self.onset_parts, self.bars = False, 0, [], 0
        self.notes = []  # (part, drum, clock)
        self.bar_clocks = []  # the clock at every bar line after the first
        for v in np.asarray(tokens).tolist():
            name = V2_NAMES[v]
            kind, _, arg = name.partition("_")
            if kind == "Program":
                self.parts.append(arg)
            elif kind == "TimeSig":
                self.bar_len = int(arg.split("_")[0]) * 4
            elif kind == "Bar":
                if self.in_bar:
                    self.clock += self.bar_len - self.pos
                    self.bars += 1
                    self.bar_clocks.append(self.clock)
                self.in_bar, self.pos, self.onset_parts = True, 0, []
            elif kind == "TimeShift":
                assert self.pos + int(arg) < self.bar_len, "a TimeShift reached the bar line"
                self.pos += int(arg)
                self.clock += int(arg)
                self.onset_parts = []
            elif kind == "Part":
                i = int(arg)
                assert i < len(self.parts), "a Part beyond the declared parts"
                assert i != self.part, "a redundant Part token"
                assert not self.onset_parts or i > self.part, "parts descend within an onset"
                self.part = i
            elif kind in ("Pitch", "DrumPitch"):
                drum = self.parts[self.part] == "Drums"
                assert drum == (kind == "DrumPitch"), "a note of the wrong kind for its part"
                self.notes.append((self.part, drum, self.clock))
                self.onset_parts.append(self.part)


@pytest.fixture(scope="module")
def v2_model(tmp_path_factory):
    return random_model_dir(tmp_path_factory.mktemp("v2") / "m", vocab_size=len(V2_NAMES),
                            embedding_dim=10, lstm_units=[20, 16], seed=5, scale=1.5)


def _gen_v2(path, impl, n=8, **kw):
    eng = engine_on(path, impl)
    kw.setdefault("seed", 21)
    kw.setdefault("max_tokens", 3000)
    kw.setdefault("primer", [ID["BOS"]])
    return eng.generate_tokens(n, grammar=v2_grammar(), eos_id=ID["EOS"], **kw)


@pytest.mark.parametrize("length,unit", [(9 * 4 + 2, "steps"), (25, "notes")])
def test_rules_v2_bar_clock_parts_and_bar_ending(v2_model, impl, length, unit):
    tables = v2_tables()
    out = _gen_v2(v2_model, impl, length=length, unit=unit, rules=Rules(tables, ending="bar"))
    seen_parts = set()
    for toks, reason in zip(out, out.reasons):
        assert reason == CLOSED
        assert V2_NAMES[toks[-1]] == "Bar"  # a piece closes at a bar line
        walk = BarWalk(np.concatenate([[ID["BOS"]], toks]), tables)
        if unit == "steps":  # the first bar line at or after the budget closes the piece
            assert walk.clock >= length and all(c < length for c in walk.bar_clocks[:-1])
        else:
            assert len(walk.notes) >= length
        seen_parts |= {p for p, _, _ in walk.notes}
    assert len(seen_parts) >= 2  # parts do change (the rules are exercised)


def test_rules_v2_header_conditions_and_forced_instruments(v2_model, impl):
    from musgen.engine.constraints import StaticArrays

    tables = v2_tables()
    static = StaticArrays(tables, V2_NAMES)
    static.only("Key_", ID["Key_Am"], "key")
    static.only("Tempo_", ID["Tempo_90"], "bpm")
    static.only("Program_", [], "instruments")  # the exact list is the primer
    allowed, _ = static.arrays()
    primer = [ID["BOS"], ID["Program_Drums"], ID["Program_40"]]
    out = _gen_v2(v2_model, impl, primer=primer, length=30, unit="notes",
                  rules=Rules(tables, ending="bar", allowed=allowed))
    for toks in out:
        names = [V2_NAMES[v] for v in toks]
        assert names[0] == "Key_Am" and names[1] == "Tempo_90"
        assert not any(n.startswith("Program_") for n in names)
        assert {n for n in names if n.startswith("Tempo_")} == {"Tempo_90"}
        walk = BarWalk(np.concatenate([primer, toks]), tables)
        assert walk.parts == ["Drums", "40"]
        assert {(p, d) for p, d, _ in walk.notes} <= {(0, True), (1, False)}
    allowed_set = StaticArrays(tables, V2_NAMES)
    allowed_set.only("Program_", [ID["Program_0"], ID["Program_Drums"]], "allowed_instruments")
    out = _gen_v2(v2_model, impl, length=10, unit="notes",
                  rules=Rules(tables, ending="bar", allowed=allowed_set.arrays()[0]))
    for toks in out:
        programs = {V2_NAMES[v] for v in toks if V2_NAMES[v].startswith("Program_")}
        assert programs and programs <= {"Program_0", "Program_Drums"}


def test_rules_v2_time_signature_changes_the_bar(v2_model, impl):
    """A 3/4 header: bars are 12 steps, no TimeShift reaches 12, and an 8-beat budget closes at
    a bar line that is a multiple of 12 steps (unless a body TimeSig changed the meter)."""
    tables = v2_tables()
    primer = [ID["BOS"], ID["Program_0"], ID["Key_C"], ID["Tempo_120"], ID["TimeSig_3_4"]]
    out = _gen_v2(v2_model, impl, primer=primer, length=8 * 4, unit="steps",
                  rules=Rules(tables, ending="bar"))
    for toks in out:
        walk = BarWalk(np.concatenate([primer, toks]), tables)  # asserts the bar rule
        if not any(V2_NAMES[v] == "TimeSig_4_4" for v in toks):
            assert walk.clock % 12 == 0 and walk.clock >= 32


def test_rules_v2_voices_and_beat_ending_with_bars(v2_model, impl):
    tables = v2_tables()
    out = _gen_v2(v2_model, impl, length=6 * 4, unit="steps",
                  rules=Rules(tables, ending="beat", max_voices=2))
    for toks, reason in zip(out, out.reasons):
        assert reason == CLOSED
        walk = BarWalk(np.concatenate([[ID["BOS"]], toks]), tables)
        assert walk.clock == 24  # the beat at the budget exactly (6 beats of 4 steps)


def _v2_spans(tokens, tables):
    """(start, end) of every note of version-2 tokens, and the final clock (an independent
    walk: the bar clock as BarWalk, durations added to the note they follow)."""
    walk = BarWalk(tokens, tables)
    spans, clock, pos, bar_len, in_bar = [], 0, 0, 16, False
    for v in np.asarray(tokens).tolist():
        kind, _, arg = V2_NAMES[v].partition("_")
        if kind == "TimeSig":
            bar_len = int(arg.split("_")[0]) * 4
        elif kind == "Bar":
            clock += bar_len - pos if in_bar else 0
            in_bar, pos = True, 0
        elif kind == "TimeShift":
            clock, pos = clock + int(arg), pos + int(arg)
        elif kind in ("Pitch", "DrumPitch"):
            spans.append([clock, clock])
        elif kind == "Duration":
            spans[-1][1] += int(arg)
    assert clock == walk.clock
    return [tuple(x) for x in spans], clock


@pytest.mark.parametrize("rest", [0, 4])
def test_rules_v2_max_rest_holds_across_bar_lines(v2_model, impl, rest):
    """A Bar token jumps to the bar line: the rest rule refuses it where it would leave a
    longer silence, as it refuses TimeShifts."""
    tables = v2_tables()
    kw = dict(n=12, length=8 * 16, unit="steps", seed=6)
    out = _gen_v2(v2_model, impl, rules=Rules(tables, ending="bar", max_rest_steps=rest), **kw)
    free = _gen_v2(v2_model, impl, rules=Rules(tables, ending="bar"), **kw)
    for toks, reason in zip(out, out.reasons):
        assert reason == CLOSED
        spans, clock = _v2_spans(np.concatenate([[ID["BOS"]], toks]), tables)
        assert _longest_rest(spans, clock) <= rest
    assert max(_longest_rest(*_v2_spans(np.concatenate([[ID["BOS"]], t]), tables))
               for t in free) > 8


def test_rules_v2_no_dead_end_behind_tokens_that_need_a_note(v2_model, impl):
    """A body Tempo token leads to a state where only a Part or a note may come: with every
    voice taken, the rules must refuse the Tempo token itself (the state behind it needs a
    note, through Part tokens too), not leave the stream with nothing allowed."""
    tables = v2_tables()
    out = _gen_v2(v2_model, impl, n=16, length=60, unit="notes", seed=3,
                  rules=Rules(tables, ending="bar", max_voices=1))
    tempos = sum(V2_NAMES[v].startswith("Tempo_") for t in out for v in t)
    assert tempos > 0 and all(len(t) > 60 for t in out)


def test_rules_v2_same_tokens_on_every_implementation(v2_model):
    if len(BACKENDS) < 2:
        pytest.skip("one implementation of the loop in this build")
    tables = v2_tables()
    rng = np.random.default_rng(8)
    n = 10
    kw = dict(temperature=rng.choice([0.0, 0.8, 1.2], n).astype(np.float32),
              seed=[int(s) for s in rng.integers(0, 2**63, n)], length=40, unit="notes")
    for rules in (Rules(tables, ending="bar", max_voices=3, density=2.0),
                  Rules(tables, ending="model", grace_steps=8, allow_early_end=True),
                  Rules(tables, ending="bar", max_rest_steps=0, max_voices=2),
                  Rules(tables, ending="bar", min_voices=2, max_voices=2)):
        runs = [_gen_v2(v2_model, b, n=n, rules=rules, **kw) for b in BACKENDS]
        for other in runs[1:]:
            for a, b in zip(runs[0], other):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(other.reasons, runs[0].reasons)


def test_rules_reject_bad_settings(v1):
    with pytest.raises(ValueError, match="ending: 'bar' needs a codec with bars"):
        Rules(v1.tables, ending="bar")
    with pytest.raises(ValueError, match="max_voices: 40"):
        Rules(v1.tables, max_voices=40)
    with pytest.raises(ValueError, match="density"):
        Rules(v1.tables, density=-1.0)
    with pytest.raises(ValueError, match="min_voices: 3 is more than max_voices=2"):
        Rules(v1.tables, max_voices=2, min_voices=3)
    with pytest.raises(ValueError, match="max_rest_steps: -2"):
        Rules(v1.tables, max_rest_steps=-2)
    with pytest.raises(ValueError, match=r"allowed: shape \[3\]"):
        Rules(v1.tables, allowed=np.ones(3))
