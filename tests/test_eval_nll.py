"""Held-out evaluation through the engine (no TensorFlow at evaluation time): metrics recomputed
by hand from the engine's logits, every target counted once, baselines, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_training import TINY, make_dataset

from musgen import cli, engine
from musgen.codec import TYPE_DURATION, TYPE_PITCH, TYPE_TIME
from musgen.eval import evaluate, format_report
from musgen.eval.ngram import KneserNey, best_order


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "tunes", n_pieces=30, seed=1)


@pytest.fixture(scope="module")
def model_dir(dataset, tmp_path_factory):
    from musgen import training

    return training.train(dataset, tmp_path_factory.mktemp("m") / "lm", epochs=3, seed=0,
                          **TINY)


def _by_hand(model_dir, dataset, split, backend):
    """Score each piece alone with the engine: (nll sum, targets, correct, nll by type)."""
    eng = engine.load(model_dir, backend=backend)
    types = dataset.codec.token_types
    total, count, correct, by_type = 0.0, 0, 0, {}
    for i in dataset.split_indices(split):
        toks = np.asarray(dataset.piece_tokens(i))
        logits = eng.logits(toks[:-1])[0].astype(np.float64)
        lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        nll = lse - logits[np.arange(len(toks) - 1), toks[1:]]
        total += nll.sum()
        count += len(nll)
        correct += int((logits.argmax(1) == toks[1:]).sum())
        for t, v in zip(types[toks[1:]], nll):
            by_type.setdefault(int(t), []).append(v)
    return total, count, correct, by_type


# The model is trained with Keras once per module; evaluating it never needs TF.
@pytest.mark.tf
def test_evaluate_matches_metrics_computed_by_hand(model_dir, dataset, backend):
    res = evaluate(model_dir, dataset, split="test", backend=backend)
    total, count, correct, by_type = _by_hand(model_dir, dataset, "test", backend)
    m = res["model"]
    idx = dataset.split_indices("test")
    assert res["n_pieces"] == len(idx)
    # every target (tokens[1:] of every piece, EOS included) counted exactly once
    assert m["n_targets"] == count == sum(int(dataset.pieces[i].length) - 1 for i in idx)
    assert m["nll_per_token"] == pytest.approx(total / count, rel=1e-6)
    assert m["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-6)
    n_notes = sum(int(dataset.pieces[i].n_notes) for i in idx)
    assert res["n_notes"] == n_notes
    assert m["nll_per_note"] == pytest.approx(total / n_notes, rel=1e-6)
    assert m["accuracy"] == pytest.approx(correct / count)
    for name, t in (("time", TYPE_TIME), ("pitch", TYPE_PITCH), ("duration", TYPE_DURATION)):
        assert m["nll_per_token_type"][name] == pytest.approx(np.mean(by_type[t]), rel=1e-6)
        assert m["targets_per_token_type"][name] == len(by_type[t])
    assert sum(m["targets_per_token_type"].values()) == count


# The model is trained with Keras once per module; evaluating it never needs TF.
@pytest.mark.tf
def test_evaluate_ngram_baseline_is_the_best_order_kneser_ney(model_dir, dataset):
    res = evaluate(model_dir, dataset, split="test", backend="python")
    seqs = {s: [np.asarray(dataset.piece_tokens(i)) for i in dataset.split_indices(s)]
            for s in ("train", "valid", "test")}
    lm = KneserNey(seqs["train"], dataset.codec.vocab_size, dataset.codec.bos_id)
    order, scores = best_order(lm, seqs["valid"])
    total, count = lm.nll(seqs["test"], order)
    ng = res["ngram"]
    assert ng["order"] == order
    assert ng["n_targets"] == count == res["model"]["n_targets"]
    assert ng["nll_per_token"] == pytest.approx(total / count, rel=1e-9)
    assert res["improvement_over_ngram"] == pytest.approx(
        1 - res["model"]["nll_per_token"] / ng["nll_per_token"])
    text = format_report(res)
    assert f"{order}-gram KN" in text and f"{res['model']['nll_per_token']:.4f}" in text


# The model is trained with Keras once per module; evaluating it never needs TF.
@pytest.mark.tf
def test_evaluate_cli_writes_json_and_skips_baselines(model_dir, dataset, tmp_path, capsys):
    out = tmp_path / "eval.json"
    rc = cli.main(["evaluate", str(model_dir), str(dataset.path), "--split", "valid",
                   "--json", str(out), "--no-baselines", "--backend", "python"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["split"] == "valid" and "ngram" not in res
    total, count, _, _ = _by_hand(model_dir, dataset, "valid", "python")
    assert res["model"]["nll_per_token"] == pytest.approx(total / count, rel=1e-6)
    assert "NLL/token" in capsys.readouterr().out


# The model is trained with Keras once per module; evaluating it never needs TF.
@pytest.mark.tf
def test_evaluate_rejects_a_model_of_another_vocabulary(model_dir, dataset, tmp_path):
    import shutil

    import musgen

    other = tmp_path / "other"
    shutil.copytree(model_dir, other, ignore=shutil.ignore_patterns("checkpoints"))
    cfg = json.loads((other / "config.json").read_text())
    cfg["codec"]["velocity_bins"] = 16
    from musgen.codec import CodecConfig

    d = CodecConfig.from_dict({k: v for k, v in cfg["codec"].items()
                               if k not in ("vocab_size", "vocabulary")}).to_dict()
    cfg["codec"] = d
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(musgen.ModelFormatError, match="codec"):
        evaluate(other, dataset, backend="python", baselines=False)


def test_evaluate_and_export_modules_never_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, musgen.eval, musgen.evaluation, musgen.training, musgen.eval.ngram, "
            "musgen.cli.evaluate, musgen.cli.export, musgen.cli.train; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- per token type
def _random_model(dataset, path, seed: int = 0):
    """A model directory of random weights for the dataset's codec (no TensorFlow)."""
    from musgen.modeldir import expected_tensors, save_model_dir

    model = {"kind": "lstm_lm", "vocab_size": int(dataset.codec.vocab_size),
             "embedding_dim": 8, "lstm_units": [16], "dropout": 0.0}
    rng = np.random.default_rng(seed)
    tensors = {name: rng.normal(0, 0.3, shape).astype(np.float32)
               for name, shape in expected_tensors(model).items()}
    return save_model_dir(path, {"model": model, "codec": dataset.codec.to_dict()}, tensors)


def _flat_dataset(path, n_pieces: int = 20, seed: int = 5):
    """Like make_dataset, but every note at velocity 90: a single velocity bin (as JSB)."""
    from musgen import codec as mcodec
    from musgen.data import Dataset
    from musgen.data.writer import DatasetWriter
    from test_training import synthetic_score

    rng = np.random.default_rng(seed)
    config = mcodec.default_config()
    w = DatasetWriter(path)
    for i in range(n_pieces):
        score = synthetic_score(rng, n_bars=int(rng.integers(3, 6)))
        score.notes["velocity"] = 90
        w.add({"source": "synthetic", "path": f"flat_{i:03d}.mid", "sha1": f"{i:040x}",
               "split": ("train", "train", "train", "valid", "test")[i % 5],
               "split_by": "seed"}, mcodec.encode(score, config, backend="python"),
              score.n_notes)
    w.finish({"codec": config.to_dict(), "seed": seed, "splits": {}})
    return Dataset.open(path)


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    root = tmp_path_factory.mktemp("flat")
    ds = _flat_dataset(root / "flat")
    return ds, _random_model(ds, root / "m")


def _check_type_sums(row: dict, present: set) -> None:
    """Per-type means x counts add up to the total; exactly the types present are listed."""
    assert set(row["nll_per_token_type"]) == set(row["targets_per_token_type"]) == present
    total = sum(row["nll_per_token_type"][t] * row["targets_per_token_type"][t]
                for t in present)
    assert total == pytest.approx(row["total_nll"], rel=1e-9)
    assert sum(row["targets_per_token_type"].values()) == row["n_targets"]


def test_evaluate_per_type_sums_add_up_and_absent_types_are_omitted(flat, backend):
    from musgen.codec import TYPE_NAMES

    ds, model = flat
    res = evaluate(model, ds, split="test", backend=backend)
    types = ds.codec.token_types
    present = {TYPE_NAMES[int(t)] for i in ds.split_indices("test")
               for t in types[np.asarray(ds.piece_tokens(i))[1:]]}
    assert "drum_pitch" not in present and "velocity" in present  # the codec has more types
    for row in (res["model"], res["ngram"]):
        _check_type_sums(row, present)
    total, _, _, _ = _by_hand(model, ds, "test", backend)
    assert res["model"]["total_nll"] == pytest.approx(total, rel=1e-6)


def test_evaluate_reports_a_single_velocity_corpus_and_nll_without_velocity(flat, dataset,
                                                                           tmp_path):
    from musgen.codec import TYPE_VELOCITY

    ds, model = flat
    res = evaluate(model, ds, split="test", backend="python")
    assert res["velocity"]["single"] is True and res["velocity"]["bins"] == 1
    _, _, _, by_type = _by_hand(model, ds, "test", "python")
    for row in (res["model"], res["ngram"]):
        vel_n = row["targets_per_token_type"]["velocity"]
        vel_sum = row["nll_per_token_type"]["velocity"] * vel_n
        assert row["nll_per_token_without_velocity"] == pytest.approx(
            (row["total_nll"] - vel_sum) / (row["n_targets"] - vel_n), rel=1e-9)
    assert res["model"]["targets_per_token_type"]["velocity"] == len(by_type[TYPE_VELOCITY])
    text = format_report(res)
    assert "w/o vel" in text and "single velocity bin" in text
    assert f"{res['model']['nll_per_token_without_velocity']:10.4f}" in text
    # two velocities (bass 70, melody 90): no such note, no such column
    two = evaluate(_random_model(dataset, tmp_path / "m2"), dataset, split="test",
                   backend="python")
    assert two["velocity"]["single"] is False and two["velocity"]["bins"] == 2
    assert "w/o vel" not in format_report(two) and "velocity bin" not in format_report(two)


def test_music_report_shows_nll_per_type_and_without_velocity(flat):
    from types import SimpleNamespace

    from musgen.eval.music import _nll_summary
    from musgen.eval.report import _fmt, _nll_rows, text_report

    ds, model = flat
    summary = _nll_summary(evaluate(model, ds, split="test", backend="python"))
    ev = SimpleNamespace(result={"nll": summary})
    header, rows = _nll_rows(ev)
    assert header[:3] == ["model", "NLL/token", "NLL/token w/o velocity"]
    assert "velocity (per token)" in header and "pitch (per token)" in header
    assert "drum_pitch (per token)" not in header
    col = header.index("pitch (per token)")
    assert rows[0][col] == _fmt(summary["model"]["nll_per_token_type"]["pitch"], 4)
    assert rows[1][2] == _fmt(summary["ngram"]["nll_per_token_without_velocity"], 4)
    assert summary["velocity"]["single"] is True
    assert "velocity: the train split has a single velocity bin" in text_report(SimpleNamespace(
        result={"nll": summary, "sets": {}, "features": {}}, sets={}))
