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
