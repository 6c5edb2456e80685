"""``prepare`` end to end on small real files: quarantine, splits, provenance, CLI."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from musgen import codec, midi
from musgen.cli import main
from musgen.data import Dataset, DatasetError, prepare

# A valid SMF with one track and no notes; and bytes that are no MIDI file at all.
NO_NOTES = (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0"
            b"MTrk\x00\x00\x00\x04\x00\xff\x2f\x00")
NOT_MIDI = b"this is a text file, not a standard MIDI file\n"
BAD_HEADER = b"MThd\x00\x00\x00\x02\x00"
# One note, then the file ends long before the 4096 bytes the track chunk announces.
TRUNCATED_CHUNK = (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0"
                   b"MTrk\x00\x00\x10\x00\x00\x90\x3c\x40\x60\x80\x3c\x40")


@pytest.fixture(scope="module")
def small(data_dir):
    return data_dir / "corpus_small"


def flat_corpus(tmp_path, small, n=12):
    """``n`` chorales in a flat folder (no split folders) under odd file-name cases."""
    root = tmp_path / "flat"
    (root / "sub").mkdir(parents=True)
    files = sorted(small.glob("*/*.mid"))[:n]
    for i, f in enumerate(files):
        dest = root / ("sub" if i % 2 else "") / (f.stem + (".MID" if i % 3 == 0 else ".mid"))
        shutil.copyfile(f, dest)
    return root


def read_quarantine(path):
    lines = (path / "quarantine.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "path\treason"
    return dict(line.split("\t") for line in lines[1:])


def test_prepare_quarantines_broken_files_and_keeps_the_rest(tmp_path, small, backend):
    root = flat_corpus(tmp_path, small, n=6)
    (root / "not_midi.mid").write_bytes(NOT_MIDI)
    (root / "bad_header.midi").write_bytes(BAD_HEADER)
    (root / "truncated.mid").write_bytes(TRUNCATED_CHUNK)
    (root / "empty.mid").write_bytes(b"")
    (root / "no_notes.mid").write_bytes(NO_NOTES)
    shutil.copyfile(root / "sub" / "test_001.mid", root / "zz_copy.mid")
    (root / "readme.txt").write_text("not a MIDI file name: never looked at")

    summary = prepare([root], tmp_path / "ds", backend=backend, quiet=True, threads=2)
    q = read_quarantine(tmp_path / "ds")
    bad = {"flat/not_midi.mid", "flat/bad_header.midi", "flat/empty.mid"}
    assert bad <= set(q)
    for label in bad:
        assert q[label].startswith("unreadable: ")
    # the reader's own message, with the byte offset, without the path the row already names
    with pytest.raises(midi.MidiError) as exc:
        midi.read(root / "not_midi.mid", backend=backend)
    assert exc.value.offset is not None
    assert q["flat/not_midi.mid"] == f"unreadable: byte {exc.value.offset}: {exc.value.reason}"
    assert q["flat/no_notes.mid"].startswith("no_notes: 0 notes")
    assert q["flat/zz_copy.mid"] == "duplicate: same bytes as flat/sub/test_001.mid"
    # the reader may reject or recover a truncated chunk; either way it is accounted for
    ds = Dataset.open(tmp_path / "ds")
    kept = {f"flat/{p.path}" for p in ds.pieces}
    recovered = (tmp_path / "ds" / "recovered.tsv").read_text().splitlines()
    assert recovered[0] == "path\twarning"
    if "flat/truncated.mid" in kept:
        assert recovered[1].startswith("flat/truncated.mid\t") and len(recovered) >= 2
        assert summary["files"]["recovered"] == 1
    else:
        assert q["flat/truncated.mid"].startswith("unreadable: ") and len(recovered) == 1
    good = {f"flat/{p.relative_to(root).as_posix()}" for p in root.rglob("*")
            if p.stem.startswith(("train_", "valid_", "test_"))}
    assert good <= kept and len(good) == 6
    f = summary["files"]
    assert f["found"] == 12 and f["kept"] == len(kept)
    assert sum(f["skipped"].values()) == len(q) == 12 - len(kept)
    assert f["skipped"]["duplicate"] == 1 and f["skipped"]["no_notes"] == 1
    assert ds.info["files"] == f


def test_prepare_tokens_features_and_provenance(tmp_path, small, backend):
    root = flat_corpus(tmp_path, small, n=5)
    prepare(root, tmp_path / "ds", backend=backend, quiet=True)
    ds = Dataset.open(tmp_path / "ds")
    assert isinstance(ds.tokens, np.memmap)
    # new datasets: codec version 2, the corpus folder's name as their style
    assert ds.codec == codec.default_config(version=2, styles=("flat",))
    assert ds.info["sources"][0]["style"] == "flat"
    assert [p.path for p in ds.pieces] == sorted((p.path for p in ds.pieces))
    for i, piece in enumerate(ds.pieces):
        f = root / piece.path
        assert piece.source == "flat" and piece.split_by == "seed"
        assert piece.sha1 == hashlib.sha1(f.read_bytes()).hexdigest()
        score = midi.read(f, backend=backend)
        tokens = codec.encode(score, ds.codec, style="flat", backend=backend)
        assert np.array_equal(ds.piece_tokens(i), tokens)
        # the conditions, stored per piece, are the header's
        head = codec.read_header(tokens, ds.codec)
        assert piece.style == head["style"] == "flat"
        assert piece.key == codec.names.KEY_NAMES[head["key"]]
        assert piece.density == head["density"] and piece.programs == head["programs"]
        assert piece.time_signature == head["time_signature"] == "4/4"
        assert piece.tempo_bpm == pytest.approx(ds.codec.tempo_centres_bpm[head["tempo"]],
                                                abs=0.01)
        feats = codec.paper_features(score)
        assert piece.n_notes == feats.shape[0] == score.n_notes
        np.testing.assert_array_equal(ds.piece_paper_features(i), feats)
    assert ds.info["totals"]["tokens"] == ds.tokens.shape[0]
    assert ds.info["sources"][0]["name"] == "flat" and ds.info["sources"][0]["files"] == 5


def test_prepare_seeded_split_reproducible_and_seed_dependent(tmp_path, small, backend):
    root = flat_corpus(tmp_path, small, n=20)

    def splits(seed, name):
        prepare(root, tmp_path / name, seed=seed, backend=backend, quiet=True)
        return {p.path: p.split for p in Dataset.open(tmp_path / name).pieces}

    a = splits(1, "a")
    assert a == splits(1, "b")
    assert sorted(a.values()).count("train") == 16
    assert sorted(a.values()).count("valid") == 2 and sorted(a.values()).count("test") == 2
    c = splits(2, "c")
    assert c != a and sorted(c.values()) == sorted(a.values())
    # the split follows the file's content, not its name or place
    shutil.move(str(root / "sub"), str(root / "moved"))
    moved = {p.replace("moved/", "sub/"): s for p, s in splits(1, "d").items()}
    assert moved == a


def test_prepare_honours_split_folders(tmp_path, small, backend):
    summary = prepare(small, tmp_path / "ds", backend=backend, quiet=True, seed=9)
    ds = Dataset.open(tmp_path / "ds")
    assert {s: v["pieces"] for s, v in summary["splits"].items()} == {
        "train": 20, "valid": 5, "test": 5}
    for piece in ds.pieces:
        assert piece.path.split("/")[0] == piece.split and piece.split_by == "folder"
    assert len(ds.split_indices("valid")) == 5
    assert summary["splits"]["train"]["tokens"] == int(ds.lengths[ds.split_indices("train")].sum())


def test_prepare_max_tokens_and_min_notes(tmp_path, small, backend):
    root = flat_corpus(tmp_path, small, n=6)
    cfg = codec.default_config(version=2, styles=("flat",))
    lengths = [codec.encode(midi.read(f), cfg, style="flat").shape[0]
               for f in sorted(root.rglob("*.[mM][iI][dD]"))]
    limit = int(np.median(lengths))
    summary = prepare(root, tmp_path / "ds", max_tokens=limit, backend=backend, quiet=True)
    q = read_quarantine(tmp_path / "ds")
    assert summary["files"]["skipped"]["too_long"] == sum(n > limit for n in lengths) == len(q)
    for reason in q.values():
        assert reason.startswith("too_long: ") and reason.endswith(f"> max_tokens {limit}")
    assert all(p.length <= limit for p in Dataset.open(tmp_path / "ds").pieces)
    before = (tmp_path / "ds" / "pieces.jsonl").read_bytes()
    # nothing kept: an error naming the counts and the first files, not an empty dataset; the
    # earlier dataset stays as it was
    with pytest.raises(DatasetError, match=r"none of the 6 MIDI files could be kept \(6 no_notes\)"
                       r"; first: flat/.*need at least 1000000"):
        prepare(root, tmp_path / "ds", min_notes=10**6, backend=backend, quiet=True)
    assert (tmp_path / "ds" / "pieces.jsonl").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ds.")] == []


def test_prepare_bad_arguments(tmp_path, small):
    with pytest.raises(DatasetError, match="no such folder or file"):
        prepare(tmp_path / "missing", tmp_path / "ds", quiet=True)
    with pytest.raises(DatasetError, match="split="):
        prepare(small, tmp_path / "ds", split=(1, 2), quiet=True)
    with pytest.raises(DatasetError, match="max_tokens=1"):
        prepare(small, tmp_path / "ds", max_tokens=1, quiet=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    with pytest.raises(DatasetError, match="refusing to replace"):
        prepare(small, tmp_path / "mine", quiet=True)
    assert not (tmp_path / "ds").exists()


def test_cli_prepare_writes_dataset_and_summary(tmp_path, small, capsys):
    rc = main(["prepare", str(small), "-o", str(tmp_path / "ds"), "--seed", "3",
               "--steps-per-beat", "4", "--threads", "1"])
    assert rc == 0
    out, err = capsys.readouterr()
    assert "files: 30 found, 30 kept, 0 skipped" in out
    # not a terminal: no bar redrawn with carriage returns, one line when the loop ends
    assert "prepare: 30/30 files in " in err and "\r" not in err and err.count("prepare:") == 1
    assert " train: 20 pieces" in out and " valid: 5 pieces" in out and "  test: 5 pieces" in out
    info = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert info["codec"]["steps_per_beat"] == 4 and info["seed"] == 3
    assert info["codec"]["version"] == 2 and info["codec"]["styles"] == ["corpus_small"]
    rc = main(["prepare", str(small), "-o", str(tmp_path / "ds1"), "--quiet", "--codec-version",
               "1", "--label", "bach"])
    assert rc == 0
    info = json.loads((tmp_path / "ds1" / "dataset.json").read_text())
    assert info["codec"]["format_version"] == 1 and info["sources"][0]["style"] == "bach"
    rc = main(["prepare", str(small), "-o", str(tmp_path / "ds1"), "--quiet", "--label",
               "bach", "--drop-drums"])
    info = json.loads((tmp_path / "ds1" / "dataset.json").read_text())
    assert rc == 0 and info["codec"]["styles"] == ["bach"] and not info["codec"]["keep_drums"]
    rc = main(["prepare", str(small), "-o", str(tmp_path / "ds2"), "--quiet"])
    assert rc == 0 and capsys.readouterr() == ("", "")
    rc = main(["prepare", str(tmp_path / "nowhere"), "-o", str(tmp_path / "ds3")])
    assert rc == 2 and "argument CORPUS: " in capsys.readouterr().err


def test_prepare_flushes_to_disk_only_when_asked(tmp_path, small, monkeypatch):
    import musgen.data.writer as writer

    flushed = []
    real = writer.os.fsync
    monkeypatch.setattr(writer.os, "fsync", lambda fd: (flushed.append(fd), real(fd)))
    prepare(small, tmp_path / "a", quiet=True, paper_features=True)
    assert flushed == []
    prepare(small, tmp_path / "b", quiet=True, paper_features=True, fsync=True)
    assert len(flushed) == 2  # the tokens and the paper features
    assert main(["prepare", str(small), "-o", str(tmp_path / "c"), "--quiet", "--fsync"]) == 0
    assert len(flushed) == 3
    a, b = Dataset.open(tmp_path / "a"), Dataset.open(tmp_path / "b")
    assert np.array_equal(a.tokens, b.tokens) and a.pieces == b.pieces


@pytest.mark.corpus
def test_prepare_jsb_chorales_keeps_the_standard_split(tmp_path, corpus_root):
    summary = prepare(corpus_root / "corpora" / "jsb_chorales" / "quarter", tmp_path / "ds",
                      quiet=True)
    assert summary["files"] == {"found": 382, "kept": 382, "skipped": {}, "recovered": 0,
                                "shortened": 0}
    assert [summary["splits"][s]["pieces"] for s in ("train", "valid", "test")] == [229, 76, 77]
    ds = Dataset.open(tmp_path / "ds")
    assert all(p.split_by == "folder" for p in ds.pieces)


def write_song(path, channels):
    """A little MIDI file with four notes on each of ``channels`` (9 = percussion)."""
    from musgen.score import NOTE_DTYPE, Score

    rows = [(0, ch, 36 + 2 * k + ch, 90, 480 * k, 480 * k + 240)
            for ch in channels for k in range(4)]
    notes = np.array(rows, dtype=NOTE_DTYPE)
    notes.sort(order=["start", "track", "channel", "pitch", "end"])
    midi.write(Score(notes=notes), path)


def test_prepare_drums_dropped_unless_kept(tmp_path, backend):
    root = tmp_path / "songs"
    root.mkdir()
    write_song(root / "band.mid", [0, 9])
    write_song(root / "drums_only.mid", [9])
    summary = prepare(root, tmp_path / "ds", backend=backend, quiet=True, codec_version=1)
    q = read_quarantine(tmp_path / "ds")
    assert q == {"songs/drums_only.mid": "no_notes: 0 notes without drums, need at least 1"}
    ds = Dataset.open(tmp_path / "ds")
    assert summary["files"]["kept"] == 1 and ds.pieces[0].n_notes == 4
    assert not ds.codec.keep_drums
    assert not (ds.codec.token_types[ds.tokens] == codec.TYPE_DRUM_PITCH).any()

    summary = prepare(root, tmp_path / "ds", backend=backend, quiet=True, keep_drums=True,
                      codec_version=1)
    ds = Dataset.open(tmp_path / "ds")
    assert summary["files"]["kept"] == 2 and ds.codec.keep_drums
    assert [p.n_notes for p in ds.pieces] == [8, 4]
    assert (ds.codec.token_types[ds.piece_tokens(1)] == codec.TYPE_DRUM_PITCH).sum() == 4
    assert ds.piece_paper_features(1)[:, 0].tolist() == [45, 47, 49, 51]
    # version 2 keeps drums by default: a drum part with its Program_Drums
    summary = prepare(root, tmp_path / "ds", backend=backend, quiet=True)
    ds = Dataset.open(tmp_path / "ds")
    assert summary["files"]["kept"] == 2 and ds.codec.keep_drums and ds.codec.version == 2
    assert [p.programs for p in ds.pieces] == [[0, 128], [128]]


def test_prepare_version_1_on_request(tmp_path, small, backend):
    root = flat_corpus(tmp_path, small, n=3)
    prepare(root, tmp_path / "ds", backend=backend, quiet=True, codec_version=1)
    ds = Dataset.open(tmp_path / "ds")
    assert ds.codec == codec.default_config()
    assert ds.info["codec"]["format_version"] == 1
    for i, piece in enumerate(ds.pieces):
        score = midi.read(root / piece.path, backend=backend)
        assert np.array_equal(ds.piece_tokens(i), codec.encode(score, backend=backend))
        assert piece.style == "flat" and piece.key is None and piece.programs is None
    assert ds.key_counts() == {}
    with pytest.raises(DatasetError, match="codec_version=3"):
        prepare(root, tmp_path / "ds", codec_version=3, quiet=True)
    with pytest.raises(DatasetError, match="codec_version=1 but the config given is version 2"):
        prepare(root, tmp_path / "ds", codec_version=1, quiet=True,
                config=codec.default_config(version=2))


def test_prepare_style_labels(tmp_path, small, backend):
    a = flat_corpus(tmp_path, small, n=2)
    b = tmp_path / "more songs" / "train"
    b.mkdir(parents=True)
    shutil.copyfile(small / "train" / "train_005.mid", b / "x.mid")
    prepare([a, b], tmp_path / "ds", backend=backend, quiet=True)
    ds = Dataset.open(tmp_path / "ds")
    # folder names; a split folder gives its parent's, made a valid label
    assert ds.codec.styles == ("flat", "more-songs")
    assert sorted({p.style for p in ds.pieces}) == ["flat", "more-songs"]
    for i, p in enumerate(ds.pieces):
        assert codec.read_header(ds.piece_tokens(i), ds.codec)["style"] == p.style
    keys = [p.key for p in ds.pieces if p.split == "train"]
    assert keys and ds.key_counts() == {k: keys.count(k) for k in set(keys)}
    assert list(ds.key_counts().values()) == sorted(ds.key_counts().values(), reverse=True)
    prepare([a, b], tmp_path / "ds", backend=backend, quiet=True, labels="chorale")
    ds = Dataset.open(tmp_path / "ds")
    assert ds.codec.styles == ("chorale",) and {p.style for p in ds.pieces} == {"chorale"}
    prepare([a, b], tmp_path / "ds", backend=backend, quiet=True, labels=["x", "y"])
    assert {p.style for p in Dataset.open(tmp_path / "ds").pieces} == {"x", "y"}
    with pytest.raises(DatasetError, match="3 labels for 2 corpora"):
        prepare([a, b], tmp_path / "ds", quiet=True, labels=["x", "y", "z"])
    with pytest.raises(DatasetError, match="label 'my style'"):
        prepare([a, b], tmp_path / "ds", quiet=True, labels="my style")


def test_prepare_records_what_encode_shortened(tmp_path, backend):
    """A hostile file (notes 2^28 ticks apart) is kept, bounded, and recorded."""
    from test_codec_limits import hostile_midi

    root = tmp_path / "songs"
    root.mkdir()
    (root / "far.mid").write_bytes(hostile_midi())
    write_song(root / "fine.mid", [0])
    for version in (1, 2):
        summary = prepare(root, tmp_path / "ds", backend=backend, quiet=True,
                          codec_version=version)
        assert summary["files"]["kept"] == 2 and summary["files"]["shortened"] == 1
        rows = (tmp_path / "ds" / "recovered.tsv").read_text().splitlines()
        assert rows[1].startswith("songs/far.mid\tencode: 2 silences longer than 16 beats "
                                  "shortened") and len(rows) == 2
        ds = Dataset.open(tmp_path / "ds")
        assert max(p.length for p in ds.pieces) < 80


def test_prepare_several_corpora_named_apart(tmp_path, small, backend):
    a, b = tmp_path / "a" / "songs", tmp_path / "b" / "songs"
    for root, files in ((a, ["train/train_000.mid"]), (b, ["train/train_001.mid",
                                                           "test/test_000.mid"])):
        for f in files:
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(small / f, root / f)
    summary = prepare([a, b], tmp_path / "ds", backend=backend, quiet=True)
    ds = Dataset.open(tmp_path / "ds")
    assert [(p.source, p.path, p.split) for p in ds.pieces] == [
        ("songs", "train/train_000.mid", "train"),
        ("songs-2", "test/test_000.mid", "test"),
        ("songs-2", "train/train_001.mid", "train")]
    assert [s["name"] for s in ds.info["sources"]] == ["songs", "songs-2"]
    assert summary["files"]["found"] == 3


def test_prepare_stores_paper_features_only_when_asked(tmp_path, small, backend):
    root = flat_corpus(tmp_path, small, n=6)
    prepare(root, tmp_path / "plain", backend=backend, quiet=True)
    assert main(["prepare", str(root), "-o", str(tmp_path / "paper"), "--paper-features",
                 "-q", "--backend", backend]) == 0
    plain, stored = Dataset.open(tmp_path / "plain"), Dataset.open(tmp_path / "paper")
    assert not (tmp_path / "plain" / "paper.npy").exists() and not plain.stores_paper_features
    assert stored.stores_paper_features and isinstance(stored.paper_features, np.memmap)
    assert plain.info["options"]["paper_features"] is False
    assert stored.info["options"]["paper_features"] is True
    assert np.array_equal(plain.tokens, stored.tokens)
    assert [p.n_notes for p in plain.pieces] == [p.n_notes for p in stored.pieces]
    # computed on demand from the source files: the very features prepare would have stored
    np.testing.assert_array_equal(plain.paper_features, stored.paper_features)
    for i, piece in enumerate(plain.pieces):
        np.testing.assert_array_equal(
            plain.piece_paper_features(i), codec.paper_features(midi.read(root / piece.path)))

    def size(path):
        return sum(f.stat().st_size for f in path.iterdir())
    assert size(tmp_path / "plain") < 0.8 * size(tmp_path / "paper")


def test_paper_features_on_demand_need_the_unchanged_sources(tmp_path, small):
    root = flat_corpus(tmp_path, small, n=4)
    prepare(root, tmp_path / "ds", quiet=True)
    first = root / Dataset.open(tmp_path / "ds").pieces[0].path
    first.write_bytes(first.read_bytes() + b"\0")  # bytes after the last chunk: still reads
    with pytest.raises(DatasetError, match="changed since the dataset was prepared.*"
                                           "--paper-features"):
        Dataset.open(tmp_path / "ds").paper_features
    first.unlink()
    with pytest.raises(DatasetError, match="cannot be read"):
        Dataset.open(tmp_path / "ds").paper_features
    # a dataset that stores them does not need the sources
    prepare(root, tmp_path / "kept", quiet=True, paper_features=True)
    shutil.rmtree(root)
    assert Dataset.open(tmp_path / "kept").paper_features.shape[0] > 0
