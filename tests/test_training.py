"""Keras training: validation loss goes down, export -> engine gives the Keras logits, a run
killed by SIGKILL resumes bit-exactly, damaged model directories raise ModelFormatError."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import musgen
from musgen import codec as mcodec
from musgen.data import Dataset
from musgen.data.writer import DatasetWriter
from musgen.score import NOTE_DTYPE, Score

TINY = dict(units=24, layers=2, embedding_dim=8, window=24, stride=12, batch_size=16,
            dropout=0.1, learning_rate=1e-2, max_minutes=None, quiet=True)

SCALE = [0, 2, 4, 5, 7, 9, 11, 12]


def synthetic_score(rng: np.random.Generator, n_bars: int = 4) -> Score:
    """A little tune: a scale walk in quarter notes over a held bass note per bar."""
    tpb = 480
    rows = []
    root = 48 + int(rng.integers(0, 12))
    step = int(rng.integers(0, 8))
    for bar in range(n_bars):
        t0 = bar * 4 * tpb
        rows.append((1, 0, root, 70, t0, t0 + 4 * tpb))
        for beat in range(4):
            pitch = root + 12 + SCALE[(step + bar * 4 + beat) % len(SCALE)]
            rows.append((0, 0, pitch, 90, t0 + beat * tpb, t0 + (beat + 1) * tpb))
    notes = np.array(rows, dtype=NOTE_DTYPE)
    notes = notes[np.lexsort((notes["end"], notes["pitch"], notes["channel"], notes["track"],
                              notes["start"]))]
    return Score(notes=notes, ticks_per_beat=tpb)


def make_dataset(path: Path, n_pieces: int = 40, seed: int = 0) -> Dataset:
    """A real dataset folder (tokens from the default codec) of synthetic tunes, split 60/20/20."""
    rng = np.random.default_rng(seed)
    config = mcodec.default_config()
    w = DatasetWriter(path, paper_features=True)  # synthetic pieces: no source files to read
    for i in range(n_pieces):
        score = synthetic_score(rng, n_bars=int(rng.integers(3, 7)))
        split = ("train", "train", "train", "valid", "test")[i % 5]
        w.add({"source": "synthetic", "path": f"tune_{i:03d}.mid", "sha1": f"{i:040x}",
               "split": split, "split_by": "seed"},
              mcodec.encode(score, config, backend="python"), score.n_notes,
              mcodec.paper_features(score))
    w.finish({"codec": config.to_dict(), "seed": seed,
              "splits": {"train": {"pieces": 3 * n_pieces // 5},
                         "valid": {"pieces": n_pieces // 5}, "test": {"pieces": n_pieces // 5}}})
    return Dataset.open(path)


def keras_logits(model_dir: Path, tokens: np.ndarray) -> np.ndarray:
    """Logits of the Keras model restored from the best checkpoint (not from the export)."""
    import keras

    from musgen import training

    state = training.read_state(model_dir / "checkpoints")
    model = training.build_keras_model(state["model"])
    opt = keras.optimizers.Adam()
    opt.build(model.trainable_variables)
    training.checkpoints.restore(model, opt, model_dir / "checkpoints" / "best.npz")
    return np.asarray(model(tokens, training=False))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Dataset:
    return make_dataset(tmp_path_factory.mktemp("data") / "tunes")


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    from musgen import training

    out = tmp_path_factory.mktemp("model") / "lm"
    return training.train(dataset, out, epochs=4, seed=3, **TINY)


@pytest.mark.tf
def test_train_lowers_validation_loss(trained, dataset):
    config = json.loads((trained / "config.json").read_text())
    hist = json.loads((trained / "checkpoints" / "state.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"] - 0.3
    # The first epoch already beats the uniform distribution over the vocabulary.
    assert hist[0]["val_loss"] < np.log(dataset.codec.vocab_size)
    model = config["model"]
    assert model == {"kind": "lstm_lm", "vocab_size": dataset.codec.vocab_size,
                     "embedding_dim": 8, "lstm_units": [24, 24], "dropout": 0.1}
    assert config["codec"] == dataset.codec.to_dict()
    tr = config["training"]
    assert tr["epochs_run"] == 4 and tr["seed"] == 3
    assert tr["best_epoch"] == 1 + int(np.argmin([h["val_loss"] for h in hist]))
    assert tr["valid_loss"] == pytest.approx(min(h["val_loss"] for h in hist))
    assert tr["dataset"]["seed"] == 0 and tr["dataset"]["splits"]["train"]["pieces"] == 24
    assert tr["musgen_version"] == musgen.__version__
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == [
        "best.npz", "epoch-0004.npz", "state.json"]


@pytest.mark.tf
def test_export_logits_match_keras(trained, dataset, backend):
    from musgen import engine

    toks = np.stack([dataset.piece_tokens(i)[:40] for i in dataset.split_indices("test")[:3]])
    ref = keras_logits(trained, toks.astype(np.int32))
    got = engine.load(trained, backend=backend).logits(toks)
    assert got.shape == ref.shape == (3, 40, dataset.codec.vocab_size)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.tf
def test_export_from_checkpoint_file_is_identical_to_the_final_export(trained, tmp_path):
    from musgen import cli
    from musgen.modeldir import load_model_dir

    rc = cli.main(["export", str(trained), "-o", str(tmp_path / "again"), "--quiet"])
    assert rc == 0
    c1, t1 = load_model_dir(trained)
    c2, t2 = load_model_dir(tmp_path / "again")
    assert sorted(t1) == sorted(t2) == sorted([
        "embedding/embeddings", "lstm_0/kernel", "lstm_0/recurrent_kernel", "lstm_0/bias",
        "lstm_1/kernel", "lstm_1/recurrent_kernel", "lstm_1/bias", "head/kernel", "head/bias"])
    for name in t1:
        assert np.array_equal(t1[name], t2[name])
    assert c1["model"] == c2["model"] and c1["codec"] == c2["codec"]


@pytest.mark.tf
def test_modeldir_corrupted_weights_raise_model_format_error(trained, tmp_path):
    import shutil

    from musgen import engine

    bad = tmp_path / "bad"
    shutil.copytree(trained, bad, ignore=shutil.ignore_patterns("checkpoints"))
    data = (bad / "weights.safetensors").read_bytes()
    (bad / "weights.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(musgen.ModelFormatError, match=r"weights\.safetensors.*(truncated|"
                                                      r"outside)"):
        engine.load(bad, backend="python")


@pytest.mark.tf
def test_modeldir_config_weights_mismatch_raises_model_format_error(trained, tmp_path):
    import shutil

    from musgen import engine

    bad = tmp_path / "mismatch"
    shutil.copytree(trained, bad, ignore=shutil.ignore_patterns("checkpoints"))
    config = json.loads((bad / "config.json").read_text())
    config["model"]["lstm_units"] = [32, 24]
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(musgen.ModelFormatError,
                       match=r"weights\.safetensors: tensor 'lstm_0/kernel' has shape \[8, 96\]"
                             r", the config needs \[8, 128\]"):
        engine.load(bad, backend="python")


def test_train_epoch_windows_depend_only_on_seed_and_epoch(dataset):
    from musgen.training import epoch_windows

    kw = dict(window=16, stride=8, transpose=2)
    a = epoch_windows(dataset, "train", seed=5, epoch=1, **kw)
    b = epoch_windows(dataset, "train", seed=5, epoch=1, **kw)
    c = epoch_windows(dataset, "train", seed=5, epoch=2, **kw)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].shape == c[0].shape and not np.array_equal(a[0], c[0])
    # targets are the inputs shifted by one, PAD where the piece ended
    assert np.array_equal(a[0][:, 1:], a[1][:, :-1])


RUN = textwrap.dedent("""
    import sys, json
    from musgen import training
    from musgen.data import Dataset
    ds = Dataset.open(sys.argv[1])
    kw = json.loads(sys.argv[3])
    training.train(ds, sys.argv[2], **kw)
""")


def _run(ds, out, kw, **popen):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0")
    return subprocess.Popen([sys.executable, "-c", RUN, str(ds.path), str(out), json.dumps(kw)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            **popen)


@pytest.mark.tf
def test_train_resume_after_sigkill_matches_uninterrupted_run(dataset, tmp_path):
    epochs = 5
    kw = dict(TINY, epochs=epochs, seed=11, dropout=0.3, transpose=2)
    full = _run(dataset, tmp_path / "full", kw)
    killed = _run(dataset, tmp_path / "killed", kw)
    state = tmp_path / "killed" / "checkpoints" / "state.json"
    deadline = time.monotonic() + 120
    while not state.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    killed.stderr.close()
    assert killed.returncode == -signal.SIGKILL
    epoch_at_kill = json.loads(state.read_text())["epoch"]
    assert epoch_at_kill < epochs - 1, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "config.json").exists()
    _, err = full.communicate(timeout=300)
    assert full.returncode == 0, err.decode()[-2000:]
    resumed = _run(dataset, tmp_path / "killed", dict(kw, resume=True))
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()[-2000:]

    def final(d):
        st = json.loads((d / "checkpoints" / "state.json").read_text())
        with np.load(d / "checkpoints" / st["last_checkpoint"]) as z:
            return st, [z[k] for k in sorted(z.files)]

    s_full, w_full = final(tmp_path / "full")
    s_res, w_res = final(tmp_path / "killed")
    assert s_full["epoch"] == s_res["epoch"] == epochs - 1
    # Same data order and same updates: per-epoch losses identical, weights, Adam moments,
    # learning rate and dropout seed state bit-identical (CPU, op determinism on).
    assert [h["loss"] for h in s_full["history"]] == [h["loss"] for h in s_res["history"]]
    assert [h["val_loss"] for h in s_full["history"]] == [h["val_loss"] for h in s_res["history"]]
    assert len(w_full) == len(w_res)
    for a, b in zip(w_full, w_res):
        assert np.array_equal(a, b)


@pytest.mark.tf
def test_train_paper_preset_exports_a_regression_model(dataset, tmp_path, backend):
    from musgen import engine, training
    from musgen.eval import paper_baseline

    out = training.train(dataset, tmp_path / "paper", preset="paper", epochs=3, units=16,
                         window=8, stride=4, batch_size=8, quiet=True, max_minutes=None,
                         dense_units=[8])
    config = json.loads((out / "config.json").read_text())
    m = config["model"]
    assert m["kind"] == "paper" and m["n_features"] == 3 and m["lstm_units"] == [16, 16]
    assert m["dense_units"] == [8] and m["dense_activation"] == "relu"
    train_feats = np.concatenate([training.windows._paper_piece(dataset, i)
                                  for i in dataset.split_indices("train")])
    np.testing.assert_allclose(m["feature_mean"], train_feats.mean(axis=0), rtol=1e-5)
    hist = json.loads((out / "checkpoints" / "state.json").read_text())["history"]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    eng = engine.load(out, backend=backend)
    pred = eng.predict(np.zeros((5, 3), np.float32))
    assert pred.shape == (1, 5, 3) and np.all(np.isfinite(pred))
    res = paper_baseline(out, dataset, "test", backend=backend)
    assert res["n_notes_scored"] == sum(
        int(dataset.pieces[i].n_notes) - 1 for i in dataset.split_indices("test"))
    assert 0 < res["mse_normalized"] < 2.0
    assert np.isfinite(res["nll_per_note"]) and res["nll_per_note"] > 0


@pytest.mark.tf
def test_train_mirrored_strategy_uses_the_distributed_loop(dataset, tmp_path):
    from musgen import training
    from musgen.modeldir import load_model_dir

    out = training.train(dataset, tmp_path / "mirrored", epochs=3, seed=2,
                         strategy="mirrored", **TINY)
    hist = json.loads((out / "checkpoints" / "state.json").read_text())["history"]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"] < np.log(dataset.codec.vocab_size)
    config, tensors = load_model_dir(out)
    assert config["training"]["epochs_run"] == 3 and "head/kernel" in tensors


def _free_ports(n: int) -> list:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
@pytest.mark.tf
def test_train_multiworker_two_processes_on_loopback(dataset, tmp_path):
    from musgen import engine

    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = tmp_path / "mw"
    kw = dict(TINY, epochs=2, seed=0, strategy="multiworker")
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-c", RUN, str(dataset.path), str(out), json.dumps(kw)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    errs = [p.communicate(timeout=400)[1].decode() for p in procs]
    for p, err in zip(procs, errs):
        assert p.returncode == 0, err[-3000:]
    # Only the chief (worker 0) wrote: one history of 2 epochs, one exported model.
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    assert state["history"][-1]["val_loss"] < np.log(dataset.codec.vocab_size)
    toks = np.asarray(dataset.piece_tokens(int(dataset.split_indices("test")[0])))
    logits = engine.load(out, backend="python").logits(toks)
    assert logits.shape == (1, len(toks), dataset.codec.vocab_size)
    assert np.all(np.isfinite(logits))


@pytest.mark.tf
def test_train_cli_trains_quietly_and_resumes_to_more_epochs(dataset, tmp_path, capsys):
    from musgen import cli

    out = tmp_path / "cli"
    common = ["train", str(dataset.path), "-o", str(out), "--units", "16", "--layers", "1",
              "--embedding-dim", "8", "--window", "16", "--batch-size", "16",
              "--max-minutes", "none", "--quiet"]
    assert cli.main(common + ["--epochs", "2"]) == 0
    assert capsys.readouterr().out == ""
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    assert cli.main(common + ["--epochs", "3", "--resume"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["epochs_run"] == 3
    assert config["model"]["lstm_units"] == [16]


@pytest.mark.tf
def test_train_progress_goes_to_stderr_as_epoch_k_of_n(dataset, tmp_path, capsys):
    """The per-epoch bar (one line per epoch in a log) names the run's real epoch count and
    never writes to standard output, which holds only the messages."""
    from musgen import cli

    rc = cli.main(["train", str(dataset.path), "-o", str(tmp_path / "m"), "--units", "16",
                   "--layers", "1", "--embedding-dim", "8", "--window", "16", "--batch-size",
                   "16", "--max-minutes", "none", "--epochs", "3"])
    assert rc == 0
    out, err = capsys.readouterr()
    assert "Epoch" not in out and "\r" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("Epoch ")]
    assert [ln.split(":")[0] for ln in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert all(" batch in " in ln and "val_loss" in ln for ln in lines)
    assert out.strip().endswith(f"model directory: {tmp_path / 'm'}")


@pytest.mark.tf
# TensorBoard's summary writer hands NumPy an __array__ without the `copy` keyword (NumPy 2)
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_train_tensorboard_logs_or_a_clear_error(dataset, tmp_path):
    from importlib.util import find_spec

    from musgen import training

    kw = dict(TINY, epochs=1, tensorboard=tmp_path / "tb")
    if find_spec("tensorboard") is None:
        with pytest.raises(musgen.MusgenError, match="pip install tensorboard"):
            training.train(dataset, tmp_path / "m", **kw)
        assert not (tmp_path / "m").exists()
    else:
        training.train(dataset, tmp_path / "m", **kw)
        assert any(p.name.startswith("events.out.tfevents")
                   for p in (tmp_path / "tb").rglob("*"))


@pytest.mark.tf
def test_train_stops_early_and_on_the_time_budget(dataset, tmp_path):
    from musgen import training

    # learning rate 0: the validation loss never improves after epoch 1 -> stop after
    # `patience` more epochs, and the exported model is epoch 1's.
    out = training.train(dataset, tmp_path / "early", **dict(TINY, epochs=10, patience=2,
                                                             learning_rate=0.0))
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
    assert state["stop_reason"] == "early stopping: no improvement for 2 epochs"
    assert json.loads((out / "config.json").read_text())["training"]["best_epoch"] == 1
    # a budget far below one epoch: the first epoch runs, no second one starts
    out = training.train(dataset, tmp_path / "budget", **dict(TINY, epochs=10,
                                                              max_minutes=1e-4))
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert len(state["history"]) == 1
    assert state["stop_reason"] == "time budget of 0.0001 minutes"


def test_train_cli_defaults_parse(tmp_path, monkeypatch):
    """`musgen train DATASET -o MODEL` alone (the README's command) parses to the defaults."""
    from musgen.cli import build_parser

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ds").mkdir()  # the dataset folder must exist when the arguments are parsed
    args = build_parser().parse_args(["train", "ds", "-o", "m"])
    assert args.max_minutes == "preset"
    assert build_parser().parse_args(["train", "ds", "-o", "m", "--max-minutes", "none"]
                                     ).max_minutes is None
    assert build_parser().parse_args(["train", "ds", "-o", "m", "--max-minutes", "2.5"]
                                     ).max_minutes == 2.5


@pytest.mark.tf
def test_train_defaults_and_the_validation_batch_setting(dataset, tmp_path, monkeypatch):
    """The measured defaults (bench/bench_train.py); validation_batch_size reaches Keras's
    validation pass; the step is compiled without XLA."""
    from musgen.cli import build_parser
    from musgen.training.config import PRESETS, TrainConfig
    from musgen.training.loop import _Run, _run_config

    cfg = TrainConfig()
    assert (cfg.batch_size, cfg.learning_rate, cfg.validation_batch_size) == (64, 4e-3, 512)
    assert PRESETS["paper"]["batch_size"] == 32 and PRESETS["paper"]["validation_batch_size"] \
        is None
    args = build_parser().parse_args(["train", str(dataset.path), "-o", str(tmp_path / "m"),
                                      "--validation-batch-size", "64"])
    assert args.validation_batch_size == 64
    with pytest.raises(ValueError, match="validation_batch_size=0"):
        _run_config(tmp_path, resume=False, preset="default",
                    overrides={"validation_batch_size": 0}, seed=0, max_minutes=None,
                    epochs=None)
    seen = []
    for vbs in (64, None):
        overrides = dict(TINY, validation_batch_size=vbs)
        overrides.pop("max_minutes"), overrides.pop("quiet")
        c, _ = _run_config(tmp_path / str(vbs), resume=False, preset="default",
                           overrides=overrides, seed=0, max_minutes=None, epochs=1)
        run = _Run(dataset, c, None, tmp_path / str(vbs), strategy=None, quiet=True,
                   tensorboard=None)
        assert run.model.jit_compile is False
        real_fit = run.model.fit
        monkeypatch.setattr(run.model, "fit", lambda *a, **k: seen.append(
            k["validation_batch_size"]) or real_fit(*a, **k))
        run.fit_epoch(*run.data("train", 0, True))
    assert seen == [64, 512]  # None leaves the default


@pytest.mark.tf
def test_train_codec_version_2_model_directory(tmp_path, backend):
    """A model trained on version-2 tokens records its codec version; it loads without
    TensorFlow and generates multi-part pieces that decode."""
    from musgen import engine, generate, training
    from musgen.data.prepare import piece_attributes

    rng = np.random.default_rng(4)
    config = mcodec.default_config(version=2, styles=("tunes",))
    w = DatasetWriter(tmp_path / "v2")
    for i in range(20):
        score = synthetic_score(rng, n_bars=int(rng.integers(3, 6)))
        score.programs = np.array([(0, 1, 0, 32)], score.programs.dtype)  # the bass part
        tokens = mcodec.encode(score, config, style="tunes", backend="python")
        w.add({"source": "synthetic", "path": f"t{i}.mid", "sha1": f"{i:040x}",
               "split": ("train", "train", "train", "valid", "test")[i % 5], "split_by": "seed",
               **piece_attributes(tokens, config)},
              tokens, score.n_notes)
    w.finish({"codec": config.to_dict(), "seed": 0})
    ds = Dataset.open(tmp_path / "v2")
    assert ds.pieces[0].programs == [0, 32]
    out = training.train(ds, tmp_path / "m", epochs=2, seed=1, transpose=2, tempo_shift=1,
                         **TINY)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["codec"]["format_version"] == 2 and cfg["codec"]["version"] == 2
    assert cfg["codec"]["styles"] == ["tunes"]
    # windows inside a piece start with its conditions unless told otherwise
    assert cfg["training"]["hyperparameters"]["header_prefix"] is True
    eng = engine.load(out, backend=backend)
    assert eng.codec == config
    pieces = generate(eng, n=2, length="60 tokens", seed=3)
    for p in pieces:
        assert p.format == 1 and len(p.track_names) >= 1
        assert p.track_names[0] in {mcodec.names.program_name(q) for q in range(129)}


@pytest.mark.tf
def test_train_warm_start_begins_from_the_given_model(trained, dataset, tmp_path):
    """init_from: a fresh run starts from another model's weights (learning rate 0 keeps them,
    so the export is those very weights), records where it started, and refuses a model of
    another architecture or codec before any training."""
    from musgen import training
    from musgen.errors import MusgenError
    from musgen.modeldir import load_model_dir

    out = training.train(dataset, tmp_path / "warm", init_from=trained,
                         **dict(TINY, epochs=1, learning_rate=0.0, seed=9))
    config, got = load_model_dir(out)
    source_config, want = load_model_dir(trained)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    start = config["training"]["init_from"]
    assert start["weights_sha256"] == source_config["weights_sha256"]
    assert start["epochs_run"] == source_config["training"]["epochs_run"]
    # a cold start with the same seed is another model
    cold = training.train(dataset, tmp_path / "cold", **dict(TINY, epochs=1, learning_rate=0.0,
                                                             seed=9))
    assert not np.array_equal(load_model_dir(cold)[1]["head/kernel"], want["head/kernel"])
    with pytest.raises(MusgenError, match="architecture .* is not this run's"):
        training.train(dataset, tmp_path / "wider", init_from=trained,
                       **dict(TINY, units=TINY["units"] * 2, epochs=1))
    assert not (tmp_path / "wider").exists()


@pytest.mark.tf
def test_train_header_prefix_needs_a_version_2_dataset(dataset, tmp_path):
    """Version-1 pieces have no header of conditions: asking for the prefix is an error before
    any training, and the default leaves it off (and records it)."""
    from musgen import training

    with pytest.raises(ValueError, match="header_prefix=True: the dataset is codec version 1"):
        training.train(dataset, tmp_path / "m", epochs=1, header_prefix=True, **TINY)
    assert not (tmp_path / "m").exists()
    out = training.train(dataset, tmp_path / "m2", epochs=1, **TINY)
    hp = json.loads((out / "config.json").read_text())["training"]["hyperparameters"]
    assert hp["header_prefix"] is False
