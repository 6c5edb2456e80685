"""The command line under bad input: every bad value ends as one line naming the option, the value
and what is expected (exit status 2 for usage errors, 1 for failures), checked before any work;
a traceback only with MUSGEN_DEBUG=1."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from musgen import codec
from musgen.cli import _args, main
from musgen.engine._random import random_model_dir


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    config = codec.default_config()
    return random_model_dir(tmp_path_factory.mktemp("cli") / "m", vocab_size=config.vocab_size,
                            embedding_dim=8, lstm_units=[16], seed=1, codec=config.to_dict())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, data_dir):
    from musgen.data import prepare

    out = tmp_path_factory.mktemp("cli") / "ds"
    prepare(data_dir / "corpus_small", out, quiet=True)
    return out


@pytest.fixture(scope="module")
def dataset_without_valid_or_test(tmp_path_factory, data_dir):
    from musgen.data import prepare

    root = tmp_path_factory.mktemp("cli")
    (root / "src" / "train").mkdir(parents=True)
    for f in sorted((data_dir / "corpus_small" / "train").glob("*.mid"))[:3]:
        shutil.copy(f, root / "src" / "train" / f.name)
    prepare(root / "src", root / "ds", quiet=True)
    return root / "ds"


def run(capsys, *argv):
    """(exit status, the lines on standard error) of ``musgen argv``."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.strip()]


def assert_one_line(lines, *parts):
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    for part in parts:
        assert part in lines[0], (part, lines[0])


GENERATE_BAD = [
    (["--temperature", "-1"], "argument --temperature: '-1': expected a finite number >= 0"),
    (["--temperature", "nan"], "argument --temperature: 'nan': expected a finite number >= 0"),
    (["--top-p", "2"], "argument --top-p: '2': expected a number in (0, 1], such as 0.9"),
    (["--top-p", "0"], "argument --top-p: '0': expected a number in (0, 1]"),
    (["--top-k", "-3"], "argument --top-k: '-3': expected an integer >= 0"),
    (["--length", "abc"], "argument --length: 'abc': expected a positive number followed by "
                          "tokens, notes or beats, such as '64 notes'"),
    (["--length", "10 bars"], "argument --length: '10 bars': expected a positive number"),
    (["--length", "0"], "argument --length: '0': expected a positive number"),
    (["--seed", "-1"], "argument --seed: '-1': expected an integer from 0 to "
                       "18446744073709551615"),
    (["--threads", "-4"], "argument --threads: '-4': expected a positive integer (1, 2, ...)"),
    (["--n", "0"], "argument --n: '0': expected a positive integer"),
    (["--primer", "missing.mid"], "argument --primer: 'missing.mid': expected an existing file"),
]


@pytest.mark.parametrize("extra, message", GENERATE_BAD)
def test_cli_generate_bad_values_are_one_line_usage_errors(model, tmp_path, capsys, monkeypatch,
                                                           extra, message):
    monkeypatch.chdir(tmp_path)
    rc, lines = run(capsys, "generate", model, "-o", tmp_path / "x.mid", *extra)
    assert rc == 2
    assert_one_line(lines, "musgen generate: error: " + message, "see musgen generate --help")
    assert list(tmp_path.iterdir()) == []  # refused before any work


def test_cli_bad_backend_variable_is_a_usage_error(model, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MUSGEN_BACKEND", "bogus")
    rc, lines = run(capsys, "generate", model, "-o", tmp_path / "x.mid")
    assert rc == 2
    assert_one_line(lines, "musgen generate: error: MUSGEN_BACKEND='bogus': expected one of "
                           "auto, cpp, cuda, python")


def test_cli_debug_variable_shows_the_traceback(model, tmp_path, monkeypatch):
    monkeypatch.setenv("MUSGEN_BACKEND", "bogus")
    monkeypatch.setenv("MUSGEN_DEBUG", "1")
    with pytest.raises(ValueError, match="MUSGEN_BACKEND='bogus'"):
        main(["generate", str(model), "-o", str(tmp_path / "x.mid")])


def test_cli_generate_quiet_and_failed_output_folder(model, tmp_path, capsys):
    rc, lines = run(capsys, "generate", model, "-o", tmp_path / "q.mid", "-q", "--length", "8",
                    "--seed", "1", "--threads", "1")
    assert rc == 0 and lines == [] and capsys.readouterr().out == ""
    assert (tmp_path / "q.mid").is_file()
    # a generation that fails leaves no folder behind (it is made only to write the pieces)
    damaged = tmp_path / "damaged"
    shutil.copytree(model, damaged)
    cfg = json.loads((damaged / "config.json").read_text())
    cfg["codec"]["max_time_shift"] = "x"
    (damaged / "config.json").write_text(json.dumps(cfg))
    rc, lines = run(capsys, "generate", damaged, "-o", tmp_path / "newdir" / "sub/")
    assert rc == 1
    assert_one_line(lines, f"musgen generate: error: {damaged / 'config.json'}: the codec "
                           "section is damaged")
    assert not (tmp_path / "newdir").exists()


def test_cli_generate_output_that_is_a_file(model, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    rc, lines = run(capsys, "generate", model, "-o", tmp_path / "afile")
    assert rc == 2
    assert_one_line(lines, "argument -o/--output: ", "expected a folder to write, found a file")


TRAIN_BAD = [
    (["--epochs", "0"], "argument --epochs: '0': expected a positive integer (1, 2, ...)"),
    (["--units", "0"], "argument --units: '0': expected a positive integer"),
    (["--batch-size", "0"], "argument --batch-size: '0': expected a positive integer"),
    (["--dropout", "1.5"], "argument --dropout: '1.5': expected a number in [0, 1), such as 0.2"),
    (["--learning-rate", "-1"], "argument --learning-rate: '-1': expected a finite number > 0"),
    (["--window", "1"], "argument --window: '1': expected at least 2 tokens"),
    (["--transpose", "-2"], "argument --transpose: '-2': expected an integer from 0 to 127"),
]


@pytest.mark.parametrize("extra, message", TRAIN_BAD)
def test_cli_train_bad_values_are_one_line_usage_errors(dataset, tmp_path, capsys, extra,
                                                        message):
    rc, lines = run(capsys, "train", dataset, "-o", tmp_path / "m", *extra)
    assert rc == 2
    assert_one_line(lines, "musgen train: error: " + message)
    assert not (tmp_path / "m").exists()


def test_cli_train_output_that_is_a_file(dataset, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    rc, lines = run(capsys, "train", dataset, "-o", tmp_path / "afile")
    assert rc == 2
    assert_one_line(lines, "argument -o/--output: ", "expected a folder to write, found a file")


def test_train_api_refuses_what_the_cli_refuses(dataset, tmp_path):
    from musgen.training import train

    for kwargs, match in [({"learning_rate": -1.0}, "learning_rate=-1.0: expected a finite "
                                                    "number >= 0"),
                          ({"window": 1}, "window=1: expected at least 2"),
                          ({"dropout": 1.5}, r"dropout=1.5: expected a number in \[0, 1\)"),
                          ({"epochs": 0}, "epochs=0: expected a positive integer")]:
        with pytest.raises(ValueError, match=match):
            train(dataset, tmp_path / "m", **kwargs)
    assert not (tmp_path / "m").exists()


def test_cli_train_resume_without_checkpoint_stops(dataset, tmp_path, capsys):
    rc, lines = run(capsys, "train", dataset, "-o", tmp_path / "fresh", "--resume")
    assert rc == 1
    assert_one_line(lines, "musgen train: error: resume: no checkpoint to resume in "
                           f"{tmp_path / 'fresh' / 'checkpoints'} (no state.json); train "
                           "without resume to start a fresh run")
    assert not (tmp_path / "fresh").exists()


def test_cli_train_without_valid_split_names_the_split(dataset_without_valid_or_test, tmp_path,
                                                       capsys):
    rc, lines = run(capsys, "train", dataset_without_valid_or_test, "-o", tmp_path / "m")
    assert rc == 1
    assert_one_line(lines, "the valid split has no pieces; training needs both train and valid")
    assert "4096" not in lines[0]


def test_epoch_windows_of_an_empty_split_name_no_internal_batch_size(dataset_without_valid_or_test):
    from musgen.data import Dataset, DatasetError
    from musgen.training.windows import epoch_windows

    ds = Dataset.open(dataset_without_valid_or_test)
    with pytest.raises(DatasetError) as info:
        epoch_windows(ds, "valid", window=16, stride=16, seed=0, epoch=0)
    assert str(info.value).endswith("split 'valid' has no windows (it has no pieces)")


def test_cli_evaluate_bad_values(model, dataset, dataset_without_valid_or_test, tmp_path, capsys):
    rc, lines = run(capsys, "evaluate", model, dataset, "--max-order", "0")
    assert rc == 2
    assert_one_line(lines, "argument --max-order: '0': expected an integer from 1 to 8")
    # an output folder that does not exist is refused before the evaluation runs
    rc, lines = run(capsys, "evaluate", model, dataset, "--json", tmp_path / "missing" / "r.json")
    assert rc == 2
    assert_one_line(lines, f"argument --json: '{tmp_path / 'missing' / 'r.json'}': expected a "
                           f"file in an existing folder ('{tmp_path / 'missing'}' does not exist)")
    rc, lines = run(capsys, "evaluate", model, dataset_without_valid_or_test)
    assert rc == 1
    assert_one_line(lines, "musgen evaluate: error: dataset ",
                    "split 'test' has no pieces")


def test_evaluate_report_says_worse_when_the_model_is_worse():
    from musgen.eval.nll import _comparison

    assert _comparison(-0.214) == "21.4% higher NLL per token (worse)"
    assert _comparison(0.214) == "21.4% lower NLL per token (better)"
    assert _comparison(0.0001) == "the same NLL per token (within 0.05%)"


def test_cli_export_of_a_truncated_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "run" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "state.json").write_text(json.dumps({"format": "musgen.checkpoint",
                                                 "last_checkpoint": "epoch-0001.npz"}))
    np.savez(ckpt / "best.npz", **{"model/000/embedding": np.zeros((4, 4), np.float32)})
    data = (ckpt / "best.npz").read_bytes()
    (ckpt / "best.npz").write_bytes(data[:len(data) // 2])
    rc, lines = run(capsys, "export", tmp_path / "run", "-o", tmp_path / "out")
    assert rc == 1
    assert_one_line(lines, f"musgen export: error: {ckpt / 'best.npz'}: cannot read the "
                           "checkpoint (truncated or damaged: ")
    assert not (tmp_path / "out").exists()


def test_cli_prepare_empty_or_unreadable_corpus(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, lines = run(capsys, "prepare", tmp_path / "empty", "-o", tmp_path / "ds")
    assert rc == 1
    assert_one_line(lines, "musgen prepare: error: no MIDI files (.mid, .midi, .rmi, .kar) found "
                           f"in '{tmp_path / 'empty'}'; nothing to prepare")
    (tmp_path / "bad").mkdir()
    for name in ("a.mid", "b.mid"):
        (tmp_path / "bad" / name).write_bytes(b"not midi: " + name.encode())
    rc, lines = run(capsys, "prepare", tmp_path / "bad", "-o", tmp_path / "ds", "-q")
    assert rc == 1
    assert_one_line(lines, "musgen prepare: error: none of the 2 MIDI files could be kept "
                           "(2 unreadable); first: bad/a.mid: unreadable: byte 0: ")
    assert not (tmp_path / "ds").exists()
    assert [p.name for p in tmp_path.iterdir()] != [] and not any(
        p.name.startswith(".ds.") for p in tmp_path.iterdir())
    rc, lines = run(capsys, "prepare", tmp_path / "bad", "-o", tmp_path / "ds", "--threads", "0")
    assert rc == 2
    assert_one_line(lines, "argument --threads: '0': expected a positive integer")


def test_cli_prepare_summary_points_to_the_quarantine(data_dir, tmp_path, capsys):
    src = tmp_path / "src"
    shutil.copytree(data_dir / "corpus_small" / "train", src)
    (src / "broken.mid").write_bytes(b"MThd")
    assert main(["prepare", str(src), "-o", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert f"every skipped file and why: {tmp_path / 'ds' / 'quarantine.tsv'}" in out


@pytest.mark.parametrize("fn, text, expected", [
    (_args.positive_int, "1", 1), (_args.non_negative_int, "0", 0),
    (_args.seed, str(2 ** 64 - 1), 2 ** 64 - 1), (_args.probability, "1", 1.0),
    (_args.unit_interval, "0", 0.0), (_args.finite_non_negative_float, "0", 0.0),
    (_args.positive_float, "1e-3", 1e-3), (_args.length, "32 beats", "32 beats"),
    (_args.int_range(1, 3), "3", 3),
])
def test_args_types_accept_their_range(fn, text, expected):
    assert fn(text) == expected


@pytest.mark.parametrize("fn, text", [
    (_args.positive_int, "0"), (_args.positive_int, "1.5"), (_args.non_negative_int, "-1"),
    (_args.seed, str(2 ** 64)), (_args.probability, "0"), (_args.probability, "inf"),
    (_args.unit_interval, "1"), (_args.finite_non_negative_float, "-0.1"),
    (_args.finite_non_negative_float, "inf"), (_args.positive_float, "0"),
    (_args.length, "0 notes"), (_args.length, "5 bars"), (_args.int_range(1, 3), "4"),
])
def test_args_types_refuse_outside_their_range(fn, text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match=f"^{text!r}: expected "):
        fn(text)
