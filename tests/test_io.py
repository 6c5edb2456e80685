"""Atomic writes (musgen._io): files and folders replaced in one step, errors naming the user's
path, and the staging folders of killed writers removed by the next one (but never a running
writer's)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from musgen import _io, midi
from musgen._io import StagingDir, atomic_write_bytes, remove_stale_staging, replace_dir


def test_atomic_write_error_names_the_users_path(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        atomic_write_bytes(tmp_path / "missing" / "r.json", b"{}")
    assert info.value.filename == str(tmp_path / "missing" / "r.json")
    assert ".tmp" not in str(info.value)


def test_midi_write_into_a_missing_folder_names_the_file(tmp_path, data_dir):
    score = midi.read(data_dir / "corpus_small" / "train" / "train_000.mid")
    with pytest.raises(FileNotFoundError) as info:
        midi.write(score, tmp_path / "missing_dir" / "x.mid")
    assert info.value.filename == str(tmp_path / "missing_dir" / "x.mid")
    assert list(tmp_path.iterdir()) == []


def test_read_many_refuses_a_single_path(tmp_path, data_dir):
    folder = data_dir / "corpus_small" / "train"
    with pytest.raises(TypeError, match=r"read_many: expected a list of file paths, got the "
                                        r"folder .*find_midi_files"):
        midi.read_many(str(folder))
    with pytest.raises(TypeError, match="got the path"):
        midi.read_many(folder / "train_000.mid")


def test_replace_dir_exchanges_old_and_new(tmp_path):
    old, new = tmp_path / "target", tmp_path / "stage"
    old.mkdir()
    (old / "a").write_text("old")
    new.mkdir()
    (new / "a").write_text("new")
    replace_dir(new, old)
    assert (old / "a").read_text() == "new"
    assert (new / "a").read_text() == "old"  # the caller removes the old folder
    fresh = tmp_path / "fresh"
    replace_dir(new, fresh)
    assert (fresh / "a").read_text() == "old" and not new.exists()


def test_replace_dir_falls_back_to_two_renames(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "_RENAMEAT2", None)
    old, new = tmp_path / "target", tmp_path / "stage"
    old.mkdir()
    (old / "a").write_text("old")
    new.mkdir()
    (new / "a").write_text("new")
    replace_dir(new, old)
    assert (old / "a").read_text() == "new" and (new / "a").read_text() == "old"


@pytest.mark.skipif(_io._RENAMEAT2 is None, reason="needs renameat2 (Linux, glibc >= 2.28)")
def test_replace_dir_never_leaves_the_target_missing(tmp_path):
    """A reader polling the target while it is replaced many times always finds it."""
    target = tmp_path / "ds"
    target.mkdir()
    (target / "v").write_text("0")
    code = textwrap.dedent(f"""
        import os, sys
        missing = 0
        for _ in range(200000):
            if not os.path.exists({str(target / 'v')!r}):
                missing += 1
        print(missing)
    """)
    reader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    for i in range(300):
        with _io.staging_dir(target) as stage:
            (stage / "v").write_text(str(i))
            replace_dir(stage, target)
    missing = int(reader.communicate()[0])
    assert missing == 0
    assert (target / "v").read_text() == "299"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_stale_staging_of_a_killed_writer_is_removed(tmp_path):
    """A writer killed outright (SIGKILL) leaves its staging folder; the next writer removes it,
    and never the folder of a writer still running."""
    target = tmp_path / "ds"
    code = textwrap.dedent(f"""
        import sys, time
        from musgen._io import StagingDir
        s = StagingDir({str(target)!r})
        (s.path / "tokens.npy").write_bytes(b"x" * 1000)
        print(s.path, flush=True)
        time.sleep(60)
    """)
    killed = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    killed_stage = killed.stdout.readline().strip()
    running = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    running_stage = running.stdout.readline().strip()
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        killed.stdout.close()
        assert os.path.isdir(killed_stage)
        removed = remove_stale_staging(target)
        assert [str(p) for p in removed] == [killed_stage]
        assert not os.path.exists(killed_stage)
        assert not os.path.exists(killed_stage[:-len(".tmp")] + ".lock")
        assert os.path.isdir(running_stage)  # its writer holds the lock
    finally:
        running.kill()
        running.wait()
        running.stdout.close()
    StagingDir(target).close()  # a new writer of the same target cleans up the other one
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_stale_staging_without_a_lock_is_removed_only_when_old(tmp_path):
    target = tmp_path / "ds"
    legacy = tmp_path / ".ds.abcd1234.tmp"  # an older musgen's staging folder
    legacy.mkdir()
    (legacy / "tokens.npy").write_bytes(b"x")
    assert remove_stale_staging(target) == []  # it might still be written
    past = time.time() - _io.STALE_SECONDS - 10
    for p in (legacy / "tokens.npy", legacy):
        os.utime(p, (past, past))
    assert remove_stale_staging(target) == [legacy] and not legacy.exists()


def test_prepare_after_a_killed_prepare_leaves_one_dataset(tmp_path, data_dir):
    from musgen.data import Dataset, prepare

    out = tmp_path / "ds"
    stale = tmp_path / ".ds.zzzz0000.tmp"
    stale.mkdir()
    (stale / "tokens.npy").write_bytes(b"half-written")
    (tmp_path / ".ds.zzzz0000.lock").write_bytes(b"")  # its writer died: nobody holds it
    prepare(data_dir / "corpus_small", out, quiet=True)
    prepare(data_dir / "corpus_small", out, quiet=True, seed=5)  # replaces the first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert Dataset.open(out).info["seed"] == 5


def test_save_model_dir_replaces_in_place_and_keeps_other_entries(tmp_path):
    from musgen.engine._random import random_model_dir
    from musgen.modeldir import load_model_dir, save_model_dir

    d = random_model_dir(tmp_path / "m", vocab_size=12, lstm_units=[4], seed=1)
    (d / "checkpoints").mkdir()
    (d / "checkpoints" / "state.json").write_text("{}")
    config, tensors = load_model_dir(d)
    tensors = {k: v + 1 for k, v in tensors.items()}
    save_model_dir(d, config, tensors)
    _, back = load_model_dir(d)
    np.testing.assert_array_equal(back["head/bias"], tensors["head/bias"])
    assert (d / "checkpoints" / "state.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
