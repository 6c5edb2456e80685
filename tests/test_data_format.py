"""The dataset folder format: writing, memory-mapped opening, damage detection, split rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from musgen import data as D
from musgen.data import Dataset, DatasetError
from musgen.data.writer import DatasetWriter


def write(path, pieces, splits):
    w = DatasetWriter(path, paper_features=True)
    for i, toks in enumerate(pieces):
        w.add({"source": "s", "path": f"f{i}.mid", "sha1": f"{i:040x}", "split": splits[i],
               "split_by": "seed"}, np.asarray(toks, np.int32), i + 1,
              np.arange(3 * (i + 1), dtype=np.float32).reshape(-1, 3))
        w.quarantine(f"s/bad{i}.mid", "unreadable: byte 4:\tbad\nheader")
    return w.finish({"codec": {"name": "test"}, "seed": 5})


def test_dataset_open_memory_maps_pieces(tmp_path):
    path = write(tmp_path / "ds", [[1, 4, 2], [1, 5, 6, 7, 2], [1, 2]], ["train", "test", "train"])
    ds = Dataset.open(path)
    assert isinstance(ds.tokens, np.memmap) and ds.tokens.dtype == np.int32
    assert isinstance(ds.paper_features, np.memmap) and ds.paper_features.shape == (6, 3)
    assert ds.tokens.tolist() == [1, 4, 2, 1, 5, 6, 7, 2, 1, 2]
    assert ds.piece_tokens(1).tolist() == [1, 5, 6, 7, 2]
    assert ds.offsets.tolist() == [0, 3, 8] and ds.lengths.tolist() == [3, 5, 2]
    assert ds.piece_note_offsets.tolist() == [0, 1, 3, 6]
    assert ds.piece_paper_features(1).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert ds.split_indices("train").tolist() == [0, 2]
    assert ds.split_indices("test").tolist() == [1]
    assert ds.split_indices("valid").tolist() == []
    assert ds.pieces[1].path == "f1.mid" and ds.pieces[1].split == "test"
    assert ds.info["format"] == "musgen.dataset" and ds.info["format_version"] == 2
    assert ds.info["seed"] == 5 and ds.path == path
    # np.load alone reads the token file (standard .npy, not musgen-specific)
    assert np.load(path / "tokens.npy").tolist() == ds.tokens.tolist()


def test_dataset_format_1_still_opens(tmp_path):
    """A dataset written before styles and conditions existed: format_version 1, pieces
    without those fields."""
    path = write(tmp_path / "ds", [[1, 4, 2], [1, 2]], ["train", "test"])
    info = json.loads((path / "dataset.json").read_text())
    (path / "dataset.json").write_text(json.dumps({**info, "format_version": 1}))
    rows = [json.loads(line) for line in (path / "pieces.jsonl").read_text().splitlines()]
    assert "style" not in rows[0]  # the writer leaves out what a piece does not have
    ds = Dataset.open(path)
    assert ds.info["format_version"] == 1 and len(ds) == 2
    assert ds.pieces[0].style is None and ds.pieces[0].key is None


def test_dataset_piece_conditions_round_trip(tmp_path):
    w = DatasetWriter(tmp_path / "ds")
    w.add({"source": "s", "path": "a.mid", "sha1": "0" * 40, "split": "train",
           "split_by": "seed", "style": "pop", "key": "Dm", "density": 4, "programs": [0, 128],
           "tempo_bpm": 89.29, "time_signature": "3/4"},
          np.array([1, 2], np.int32), 1)
    ds = Dataset.open(w.finish({"codec": {}}))
    p = ds.pieces[0]
    assert (p.style, p.key, p.density, p.programs, p.tempo_bpm, p.time_signature) == (
        "pop", "Dm", 4, [0, 128], 89.29, "3/4")


def test_dataset_quarantine_rows_are_one_line_each(tmp_path):
    path = write(tmp_path / "ds", [[1, 2]], ["train"])
    lines = (path / "quarantine.tsv").read_text().splitlines()
    assert lines == ["path\treason", "s/bad0.mid\tunreadable: byte 4: bad header"]


def test_dataset_writer_replaces_an_earlier_dataset(tmp_path):
    write(tmp_path / "ds", [[1, 4, 2]], ["train"])
    write(tmp_path / "ds", [[1, 9, 9, 2]], ["valid"])
    ds = Dataset.open(tmp_path / "ds")
    assert ds.tokens.tolist() == [1, 9, 9, 2] and ds.pieces[0].split == "valid"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temp folders left


def test_dataset_writer_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not a musgen dataset; refusing"):
        DatasetWriter(tmp_path / "ds")
    assert (tmp_path / "ds" / "notes.txt").read_text() == "mine"


def test_dataset_writer_abort_leaves_nothing(tmp_path):
    for paper in (False, True):
        w = DatasetWriter(tmp_path / "ds", paper_features=paper)
        w.add({"source": "s", "path": "a.mid", "sha1": "0", "split": "train",
               "split_by": "seed"}, np.array([1, 2], np.int32), 1,
              np.zeros((1, 3), np.float32) if paper else None)
        w.abort()
        assert list(tmp_path.iterdir()) == []
    w = DatasetWriter(tmp_path / "ds")
    with pytest.raises(DatasetError, match="exactly when the dataset stores them"):
        w.add({"path": "a.mid"}, np.array([1, 2], np.int32), 1, np.zeros((1, 3), np.float32))
    w.abort()


def test_dataset_open_rejects_damage(tmp_path):
    path = write(tmp_path / "ds", [[1, 4, 2], [1, 2]], ["train", "test"])
    with pytest.raises(DatasetError, match="not a musgen dataset"):
        Dataset.open(tmp_path)
    info = json.loads((path / "dataset.json").read_text())
    (path / "dataset.json").write_text(json.dumps({**info, "format_version": 99}))
    with pytest.raises(DatasetError, match="format_version 99"):
        Dataset.open(path)
    (path / "dataset.json").write_text(json.dumps(info))
    np.save(path / "tokens.npy", np.array([1, 4, 2, 1], np.int32))
    with pytest.raises(DatasetError, match="describes 5 tokens and 3 notes, but tokens.npy has 4"):
        Dataset.open(path)
    np.save(path / "tokens.npy", np.array([1, 4, 2, 1, 2], np.int64))
    with pytest.raises(DatasetError, match="expected int32"):
        Dataset.open(path)
    np.save(path / "tokens.npy", np.array([1, 4, 2, 1, 2], np.int32))
    lines = (path / "pieces.jsonl").read_text().splitlines()
    (path / "pieces.jsonl").write_text(lines[1] + "\n" + lines[0] + "\n")
    with pytest.raises(DatasetError, match="pieces.jsonl:1: piece 1 does not follow"):
        Dataset.open(path)
    (path / "pieces.jsonl").write_text(lines[0] + "\n{oops\n")
    with pytest.raises(DatasetError, match="pieces.jsonl:2: bad piece record"):
        Dataset.open(path)


@pytest.mark.parametrize("rel, root, expected", [
    ("a/b.mid", "", None),
    ("train/b.mid", "", "train"),
    ("Validation/x/b.mid", "", "valid"),
    ("test/train/b.mid", "", "train"),  # the innermost folder wins
    ("b.mid", "TEST", "test"),  # the corpus root's own name counts
    ("train.mid", "", None),  # a file name is not a folder
    ("training/b.mid", "", None),
])
def test_folder_split_rules(rel, root, expected):
    assert D.folder_split(rel, root) == expected


def test_seeded_split_exact_counts_reproducible_and_seeded():
    keys = [f"{i:040x}" for i in range(100)]
    a = D.seeded_split(keys, 0)
    assert [a.count(s) for s in D.SPLITS] == [80, 10, 10]
    assert a == D.seeded_split(keys, 0)
    b = D.seeded_split(keys, 1)
    assert b != a and [b.count(s) for s in D.SPLITS] == [80, 10, 10]
    # the listing order does not matter, only the keys
    rev = D.seeded_split(keys[::-1], 0)[::-1]
    assert rev == a


def test_seeded_split_adding_files_moves_few_others():
    keys = [f"{i:040x}" for i in range(200)]
    before = D.seeded_split(keys, 3)
    after = D.seeded_split(keys + [f"{i:040x}" for i in range(1000, 1010)], 3)[:200]
    moved = sum(x != y for x, y in zip(before, after))
    assert moved <= 4  # at most a few files near the two cut points, never a reshuffle


def test_seeded_split_small_corpora_get_every_split():
    assert sorted(D.seeded_split(["a", "b", "c"], 0)) == ["test", "train", "valid"]
    assert D.seeded_split(["a"], 0) == ["train"]
    assert D.seeded_split([], 0) == []
    assert D.seeded_split([str(i) for i in range(10)], 0, (1, 0, 0)) == ["train"] * 10
    with pytest.raises(DatasetError, match="three non-negative numbers"):
        D.seeded_split(["a"], 0, (0.5, -0.1, 0.6))


def test_find_midi_files_sorted_suffixes_any_case(tmp_path):
    for name in ["b/z.MID", "b/a.midi", "a.kar", "c/d/e.Rmi", "notes.txt", "x.mid.bak",
                 ".hidden/h.mid", "b/.dot.mid"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in D.find_midi_files(tmp_path)]
    assert found == ["a.kar", "b/a.midi", "b/z.MID", "c/d/e.Rmi"]
    with pytest.raises(DatasetError, match="no such folder or file"):
        D.find_midi_files(tmp_path / "missing")
