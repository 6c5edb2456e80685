"""Training input windows, targets, padding, shuffling and resume, on tiny hand-made datasets."""

from __future__ import annotations

import numpy as np
import pytest
from musgen.data import pipeline
from musgen.data import Dataset, DatasetError
from musgen.data.writer import DatasetWriter


def write_tiny(path, pieces, splits=None, codec=None):
    """A dataset with the given token lists (each already BOS ... EOS) and no real codec."""
    w = DatasetWriter(path)
    for i, toks in enumerate(pieces):
        w.add({"source": "tiny", "path": f"p{i}.mid", "sha1": f"{i:040x}",
               "split": (splits or ["train"] * len(pieces))[i], "split_by": "folder"},
              np.asarray(toks, dtype=np.int32), len(toks))
    return w.finish({"codec": codec or {}, "seed": 0})


def test_window_starts_cover_every_target_once_without_overlap():
    piece, start = pipeline.window_starts(np.array([5, 9, 2, 10]), window=4, stride=4)
    # L=5: targets 1..4 -> one window; L=9: 8 targets -> 2; L=2: 1; L=10: 9 targets -> 3
    assert piece.tolist() == [0, 1, 1, 2, 3, 3, 3]
    assert start.tolist() == [0, 0, 4, 0, 0, 4, 8]


def test_window_starts_with_overlapping_stride():
    piece, start = pipeline.window_starts(np.array([10]), window=4, stride=2)
    # windows cover targets up to s + 4; the last target is 9: starts 0, 2, 4, 6 (6 + 4 >= 9)
    assert start.tolist() == [0, 2, 4, 6]
    assert piece.tolist() == [0, 0, 0, 0]


def test_numpy_batches_windows_and_targets_by_hand(tmp_path):
    a = [1, 10, 11, 12, 13, 14, 15, 2]  # 8 tokens, 7 targets
    b = [1, 20, 2]  # shorter than a window
    ds = Dataset.open(write_tiny(tmp_path / "ds", [a, b]))
    batches = list(pipeline.numpy_batches(ds, "train", window=4, batch_size=8, shuffle=False))
    assert len(batches) == 1
    x, y = batches[0]
    assert x.dtype == np.int32 and y.dtype == np.int32 and x.shape == (3, 4)
    assert x.tolist() == [[1, 10, 11, 12], [13, 14, 15, 2], [1, 20, 2, 0]]
    assert y.tolist() == [[10, 11, 12, 13], [14, 15, 2, 0], [20, 2, 0, 0]]
    w = pipeline.target_weights(y)
    assert w.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]]
    # every real target appears exactly once when stride == window
    assert int(w.sum()) == (len(a) - 1) + (len(b) - 1)


def test_numpy_batches_only_the_requested_split(tmp_path):
    ds = Dataset.open(write_tiny(tmp_path / "ds", [[1, 5, 2], [1, 6, 2], [1, 7, 2]],
                                 splits=["train", "test", "valid"]))
    (x, y), = pipeline.numpy_batches(ds, "test", window=2, batch_size=4, shuffle=False)
    assert x.tolist() == [[1, 6]] and y.tolist() == [[6, 2]]
    (x, _), = pipeline.numpy_batches(ds, "validation", window=2, batch_size=4, shuffle=False)
    assert x.tolist() == [[1, 7]]


def test_numpy_batches_shuffle_is_seeded_per_epoch(tmp_path):
    pieces = [[1] + list(range(10 + 7 * i, 17 + 7 * i)) + [2] for i in range(12)]
    ds = Dataset.open(write_tiny(tmp_path / "ds", pieces))

    def order(seed, epoch):
        return np.concatenate([x[:, 0] for x, _ in pipeline.numpy_batches(
            ds, window=3, batch_size=5, seed=seed, epoch=epoch)])

    ref = np.concatenate([x[:, 0] for x, _ in pipeline.numpy_batches(
        ds, window=3, batch_size=5, shuffle=False)])
    first = order(7, 0)
    assert np.array_equal(first, order(7, 0))
    assert not np.array_equal(first, order(7, 1))
    assert not np.array_equal(first, order(8, 0))
    assert not np.array_equal(first, ref)
    assert sorted(first.tolist()) == sorted(ref.tolist())  # same windows, another order


def test_numpy_batches_resume_from_start_batch(tmp_path):
    pieces = [[1] + list(range(10 + 5 * i, 15 + 5 * i)) + [2] for i in range(9)]
    ds = Dataset.open(write_tiny(tmp_path / "ds", pieces))
    full = list(pipeline.numpy_batches(ds, window=3, batch_size=4, seed=3, epoch=0, epochs=2))
    per_epoch = pipeline.batches_per_epoch(ds, "train", window=3, batch_size=4)
    assert len(full) == 2 * per_epoch
    resumed = list(pipeline.numpy_batches(ds, window=3, batch_size=4, seed=3, epoch=0, epochs=2,
                                          start_batch=2))
    assert len(resumed) == len(full) - 2
    for (x0, y0), (x1, y1) in zip(full[2:], resumed):
        assert np.array_equal(x0, x1) and np.array_equal(y0, y1)


def test_numpy_batches_drop_remainder_and_counts(tmp_path):
    ds = Dataset.open(write_tiny(tmp_path / "ds", [[1, 3, 4, 5, 6, 7, 2]] * 1 + [[1, 9, 2]] * 4))
    assert pipeline.count_windows(ds, "train", window=3) == 2 + 4
    sizes = [x.shape[0] for x, _ in pipeline.numpy_batches(ds, window=3, batch_size=4)]
    assert sizes == [4, 2]
    sizes = [x.shape[0] for x, _ in pipeline.numpy_batches(ds, window=3, batch_size=4,
                                                            drop_remainder=True)]
    assert sizes == [4]


def test_numpy_batches_empty_split_raises(tmp_path):
    ds = Dataset.open(write_tiny(tmp_path / "ds", [[1, 5, 2]]))
    with pytest.raises(DatasetError, match="split 'test' has no windows"):
        next(pipeline.numpy_batches(ds, "test", window=2))


def test_numpy_batches_bad_arguments(tmp_path):
    ds = Dataset.open(write_tiny(tmp_path / "ds", [[1, 5, 2]]))
    with pytest.raises(ValueError, match="window=0"):
        next(pipeline.numpy_batches(ds, window=0))
    with pytest.raises(ValueError, match="stride=0"):
        next(pipeline.numpy_batches(ds, window=2, stride=0))
    with pytest.raises(DatasetError, match="split 'dev'"):
        next(pipeline.numpy_batches(ds, "dev", window=2))


@pytest.mark.tf
def test_tf_dataset_matches_numpy_batches(tmp_path):
    pytest.importorskip("tensorflow")
    pieces = [[1] + list(range(10 + 3 * i, 10 + 3 * i + (i % 7) * 3)) + [2] for i in range(30)]
    ds = Dataset.open(write_tiny(tmp_path / "ds", pieces))
    kw = dict(window=5, stride=3, batch_size=4, seed=11, epoch=2, epochs=2, start_batch=1)
    ref = list(pipeline.numpy_batches(ds, **kw))
    got = [(x.numpy(), y.numpy()) for x, y in pipeline.tf_dataset(ds, **kw, parallel=3)]
    assert len(got) == len(ref) > 4
    for (x0, y0), (x1, y1) in zip(ref, got):
        assert x1.dtype == np.int32 and np.array_equal(x0, x1) and np.array_equal(y0, y1)


# ----------------------------------------------------------------------------- transposition
def codec_dataset(tmp_path, backend):
    """Real codec tokens of random little scores in a narrow pitch range (so that some
    transpositions leave it)."""
    from musgen import codec
    from musgen.score import NOTE_DTYPE, Score

    config = codec.default_config(pitch_range=(55, 79))
    rng = np.random.default_rng(0)
    pieces = []
    for _ in range(12):
        n = int(rng.integers(3, 40))
        notes = np.zeros(n, dtype=NOTE_DTYPE)
        notes["pitch"] = rng.integers(55, 80, n)
        notes["velocity"] = rng.integers(1, 128, n)
        notes["start"] = np.sort(rng.integers(0, 480 * 16, n))
        notes["end"] = notes["start"] + rng.integers(1, 960, n)
        order = np.lexsort((notes["end"], notes["pitch"], notes["start"]))
        pieces.append(codec.encode(Score(notes=notes[order]), config, backend=backend))
    return Dataset.open(write_tiny(tmp_path / "ds", pieces, codec=config.to_dict())), config


def test_pipeline_pad_is_the_codec_pad(tmp_path, backend):
    ds, config = codec_dataset(tmp_path, backend)
    assert ds.codec == config
    assert config.pad_id == pipeline.PAD_ID


def test_numpy_batches_transposition_stays_in_range(tmp_path, backend):
    ds, config = codec_dataset(tmp_path, backend)
    kw = dict(window=16, stride=16, batch_size=64, shuffle=False, seed=5, transpose=6)
    plain = np.concatenate([x for x, _ in pipeline.numpy_batches(ds, **{**kw, "transpose": 0})])
    plain_y = np.concatenate([y for _, y in pipeline.numpy_batches(ds, **{**kw, "transpose": 0})])
    got = list(pipeline.numpy_batches(ds, **kw))
    x = np.concatenate([b[0] for b in got])
    y = np.concatenate([b[1] for b in got])
    plan = pipeline.plan_epoch(ds, "train", **{k: v for k, v in kw.items()})
    shifts = plan.shift_rows - 6
    pitch = config.token_types == 2  # TYPE_PITCH
    kept = moved = 0
    for row in range(x.shape[0]):
        span = np.concatenate([plain[row], plain_y[row, -1:]])
        want = config.transpose(span, int(shifts[row]))
        if want is None:  # would leave the range: kept as it was
            want = span
            kept += 1
        elif shifts[row] != 0:
            moved += 1
        assert np.array_equal(x[row], want[:-1]) and np.array_equal(y[row], want[1:])
        # still in range: every pitch token is a pitch token of the vocabulary
        assert np.array_equal(pitch[x[row]], pitch[plain[row]])
    assert kept > 0 and moved > 0
    # the PAD positions are untouched
    assert np.array_equal(x == 0, plain == 0)


@pytest.mark.tf
def test_tf_dataset_matches_numpy_batches_with_transposition(tmp_path, backend):
    pytest.importorskip("tensorflow")
    ds, _ = codec_dataset(tmp_path, backend)
    kw = dict(window=8, stride=5, batch_size=16, seed=2, epoch=0, epochs=2, transpose=5,
              weights=True)
    ref = list(pipeline.numpy_batches(ds, **kw))
    got = [tuple(t.numpy() for t in batch) for batch in pipeline.tf_dataset(ds, **kw)]
    assert len(got) == len(ref) > 2
    for (x0, y0, w0), (x1, y1, w1) in zip(ref, got):
        assert np.array_equal(x0, x1) and np.array_equal(y0, y1)
        assert w1.dtype == np.float32 and np.array_equal(w0, w1)
        assert np.array_equal(w0, (y0 != 0).astype(np.float32))
    assert min(w.min() for _, _, w in got) == 0  # the padded piece ends are masked


def test_numpy_batches_order_does_not_depend_on_batch_size(tmp_path):
    pieces = [[1] + list(range(10 + 6 * i, 16 + 6 * i)) + [2] for i in range(10)]
    ds = Dataset.open(write_tiny(tmp_path / "ds", pieces))

    def windows(batch_size):
        got = list(pipeline.numpy_batches(ds, window=4, stride=2, batch_size=batch_size, seed=4))
        return np.concatenate([x for x, _ in got]), np.concatenate([y for _, y in got])

    x3, y3 = windows(3)
    x64, y64 = windows(64)
    assert np.array_equal(x3, x64) and np.array_equal(y3, y64)
    assert x3.shape[0] == pipeline.count_windows(ds, "train", window=4, stride=2) == 30


def v2_dataset(tmp_path, backend, tempos=False):
    """Version-2 token streams of small multi-part pieces with tempo changes."""
    from musgen import Score, codec
    from musgen.score import NOTE_DTYPE, TEMPO_DTYPE

    config = codec.default_config(version=2, styles=("tiny",))
    rng = np.random.default_rng(3)
    pieces = []
    for i in range(12):
        n = 30
        start = np.sort(rng.integers(0, 480 * 20, n))
        rows = [(int(t), int(t), int(p), 90, int(s), int(s) + 240)
                for t, p, s in zip(rng.integers(0, 2, n), rng.integers(50, 90, n), start)]
        notes = np.array(rows, NOTE_DTYPE)
        notes.sort(order=["start", "track", "channel", "pitch", "end"])
        tempo = np.array([(0, 500_000), (480 * 8, 400_000)] if tempos else [], TEMPO_DTYPE)
        score = Score(notes=notes, tempos=tempo)
        pieces.append(codec.encode(score, config, style="tiny", backend=backend))
    return Dataset.open(write_tiny(tmp_path / "v2", pieces, codec=config.to_dict())), config


def test_numpy_batches_transposition_moves_the_key_condition(tmp_path, backend):
    from musgen.codec import TYPE_KEY, TYPE_PITCH

    ds, config = v2_dataset(tmp_path, backend)
    kw = dict(window=400, stride=400, batch_size=64, shuffle=False, seed=1)
    plain = np.concatenate([x for x, _ in pipeline.numpy_batches(ds, **kw)])
    x = np.concatenate([x for x, _ in pipeline.numpy_batches(ds, **kw, transpose=5)])
    plan = pipeline.plan_epoch(ds, "train", **kw, transpose=5)
    types = config.token_types
    checked = 0
    for row in range(x.shape[0]):
        shift = int(plan.shift_rows[row]) - 5
        key_at = np.flatnonzero(types[plain[row]] == TYPE_KEY)
        pitch_at = np.flatnonzero(types[plain[row]] == TYPE_PITCH)
        if shift == 0 or not key_at.size or np.array_equal(x[row], plain[row]):
            continue
        k0 = int(plain[row][key_at[0]]) - config.key_base
        k1 = int(x[row][key_at[0]]) - config.key_base
        assert k1 // 12 == k0 // 12 and (k1 - k0) % 12 == shift % 12
        assert (x[row][pitch_at] - plain[row][pitch_at] == shift).all()
        checked += 1
    assert checked > 3


def test_numpy_batches_tempo_shift(tmp_path, backend):
    from musgen.codec import TYPE_TEMPO

    ds, config = v2_dataset(tmp_path, backend, tempos=True)
    kw = dict(window=400, stride=400, batch_size=64, shuffle=True, seed=1, transpose=2)
    plain = np.concatenate([x for x, _ in pipeline.numpy_batches(ds, **kw)])
    x = np.concatenate([x for x, _ in pipeline.numpy_batches(ds, **kw, tempo_shift=3)])
    plan = pipeline.plan_epoch(ds, "train", **kw, tempo_shift=3)
    # the order and transpositions are the plan without tempo shifts'
    ref = pipeline.plan_epoch(ds, "train", **kw)
    assert np.array_equal(plan.starts, ref.starts) and np.array_equal(plan.shift_rows,
                                                                      ref.shift_rows)
    assert ref.tempo_rows is None
    is_tempo = config.token_types[plain] == TYPE_TEMPO
    assert is_tempo.sum(axis=1).min() == 2  # the header's and the change's
    moved = 0
    for row in range(x.shape[0]):
        shift = int(plan.tempo_rows[row]) - 3
        assert (x[row][is_tempo[row]] - plain[row][is_tempo[row]] == shift).all()
        assert np.array_equal(x[row][~is_tempo[row]], plain[row][~is_tempo[row]])
        moved += shift != 0
    assert moved > 3
    v1, _ = codec_dataset(tmp_path, backend)
    with pytest.raises(DatasetError, match="tempo_shift needs codec version 2"):
        next(pipeline.numpy_batches(v1, window=8, tempo_shift=1))
    with pytest.raises(ValueError, match="tempo_shift=-1"):
        pipeline.plan_epoch(ds, "train", window=8, tempo_shift=-1)


# --------------------------------------------------------------------------- header prefix
def _v2_pieces(codec):
    """Two hand-made version-2 streams: a header (BOS, Program, Key, Style, Density, Tempo,
    TimeSig) and a body of time shifts and notes."""
    c = codec
    head = [c.bos_id, c.program_base + 0, c.key_base + 2, c.style_base, c.density_base + 1,
            c.tempo_base + 10, c.timesig_base + c.meter_index(4, 4)]
    body = []
    for k in range(12):
        body += [c.bar_id if k % 4 == 0 else c.time_base, c.pitch_base + k,
                 c.velocity_base + 3, c.duration_base + 1]
    return [head + body + [c.eos_id], head[:1] + [c.program_base + 40, c.program_base + 42]
            + head[2:] + body[:10] + [c.eos_id]]


def test_window_starts_with_headers_cover_every_target():
    lengths = np.array([3, 20, 21, 50, 51, 200])
    headers = np.array([2, 5, 5, 7, 0, 9])
    for window, stride in ((16, 8), (16, 16), (16, 5), (10, 10)):
        piece, start = pipeline.window_starts(lengths, window, stride, headers)
        assert np.all(np.diff(piece) >= 0)
        for i, n in enumerate(lengths):
            covered = np.zeros(n, dtype=bool)
            for s in start[piece == i]:
                span = window if s == 0 or headers[i] == 0 else window - headers[i]
                covered[s + 1:s + 1 + span] = True
            assert covered[1:].all(), (window, stride, i)
    with pytest.raises(ValueError, match="header of 9"):
        pipeline.window_starts(lengths, 9, 4, headers)


def test_header_prefix_windows_start_with_the_piece_header_and_score_no_header(tmp_path):
    from musgen import codec as mcodec

    c = mcodec.default_config(version=2)
    a, b = _v2_pieces(c)
    ds = Dataset.open(write_tiny(tmp_path / "ds", [a, b], codec=c.to_dict()))
    assert ds.header_lengths.tolist() == [7, 8]
    window, stride = 16, 8
    kw = dict(window=window, stride=stride, batch_size=64, shuffle=False)
    (x0, y0), = pipeline.numpy_batches(ds, "train", **kw)
    (x, y), = pipeline.numpy_batches(ds, "train", header_prefix=True, **kw)
    assert len(x) == pipeline.count_windows(ds, "train", window=window, stride=stride,
                                            header_prefix=True)
    piece, start = pipeline.window_starts(ds.lengths, window, stride, ds.header_lengths)
    scored = 0
    for row, (i, s) in enumerate(zip(piece, start)):
        toks, h = [a, b][i], int(ds.header_lengths[i])
        if s == 0:  # a piece's first window is the plain one, header and all
            span = (toks + [0] * (window + 1))[:window + 1]
            assert x[row].tolist() == span[:-1] and y[row].tolist() == span[1:]
            scored += int((y[row] != 0).sum())
            continue
        span = (toks[:h] + toks[s:] + [0] * (window + 1))[:window + 1]
        assert x[row].tolist() == span[:-1]
        assert y[row, :h].tolist() == [0] * h  # header and junction: context only
        assert y[row, h:].tolist() == span[h + 1:]
        scored += int((y[row] != 0).sum())
    # every target at least once, none of a later window's header targets
    assert scored >= (len(a) - 1) + (len(b) - 1)
    # the first windows are the same with or without the prefix
    assert x[0].tolist() == x0[0].tolist() and y[0].tolist() == y0[0].tolist()


def test_header_prefix_moves_the_key_with_the_transposition(tmp_path):
    from musgen import codec as mcodec

    c = mcodec.default_config(version=2)
    a, _ = _v2_pieces(c)
    ds = Dataset.open(write_tiny(tmp_path / "ds", [a], codec=c.to_dict()))
    kw = dict(window=16, stride=8, batch_size=64, shuffle=True, seed=3, header_prefix=True)
    x, _ = next(pipeline.numpy_batches(ds, "train", transpose=5, **kw))
    x0, _ = next(pipeline.numpy_batches(ds, "train", **kw))  # same order, not transposed
    keys = (x >= c.key_base) & (x < c.key_base + 24)
    pitches = (x >= c.pitch_base) & (x < c.pitch_base + c.n_pitches)
    assert keys.sum(axis=1).tolist() == [1] * len(x)  # every window knows its key
    moved = set()
    for row in range(len(x)):
        shift = set((x[row][pitches[row]] - x0[row][pitches[row]]).tolist())
        assert len(shift) == 1 and shift <= set(range(-5, 6))
        moved |= shift
        key = int(x[row][keys[row]][0]) - c.key_base
        assert key == (2 + shift.pop()) % 12  # D major moved with the notes
    assert len(moved) > 1


def test_header_prefix_needs_codec_version_2(tmp_path):
    ds = Dataset.open(write_tiny(tmp_path / "ds", [[1, 5, 6, 2]]))
    with pytest.raises(DatasetError, match="needs codec version 2"):
        next(pipeline.numpy_batches(ds, "train", window=2, header_prefix=True))
