"""The default preset sized to the corpus: the rule (small corpus or short budget -> smaller
model and more dropout, big -> the default), explicit settings win, the choice recorded."""

from __future__ import annotations

import json
import math

import pytest
from test_training import TINY, make_dataset

from musgen.modeldir import expected_tensors
from musgen.training.config import TrainConfig
from musgen.training.loop import _fit_to_corpus, _train_tokens
from musgen.training.sizing import (
    BATCHES,
    LADDER,
    MAX_PARAMS_PER_TOKEN,
    OVERFIT_EPOCHS,
    TARGET_STEPS,
    dropout_for,
    lstm_parameters,
    macs_per_token,
    size_model,
    step_seconds,
)


@pytest.mark.parametrize("layers,units,emb,vocab", [(2, 256, 64, 549), (1, 24, 8, 259),
                                                    (3, 96, 48, 700)])
def test_sizing_parameter_count_matches_the_model_format(layers, units, emb, vocab):
    model = {"kind": "lstm_lm", "vocab_size": vocab, "embedding_dim": emb,
             "lstm_units": [units] * layers, "dropout": 0.2}
    shapes = expected_tensors(model)
    assert lstm_parameters(layers, units, emb, vocab) == sum(math.prod(s) for s in
                                                            shapes.values())


def test_sizing_short_budget_gets_smaller_batches_and_big_corpus_keeps_the_default():
    kw = dict(window=128, stride=64)
    small = size_model(100_000, 549, 3.0, **kw)
    big = size_model(1_000_000, 549, 25.0, **kw)
    assert (big["layers"], big["units"], big["embedding_dim"]) == LADDER[0] == (2, 256, 64)
    assert (big["batch_size"], big["dropout"]) == (64, 0.2) and big["budget_steps"] >= \
        TARGET_STEPS
    # 10^5 tokens keep the 2 x 256 model; 3 minutes afford too few steps of 64, so the
    # batch shrinks to the first that reaches the target, or the smallest
    assert (small["units"], small["layers"]) == (256, 2)
    assert small["batch_size"] < 64
    macs = macs_per_token(2, 256, 64, 549)
    for larger in BATCHES[:BATCHES.index(small["batch_size"])]:
        assert 180 / step_seconds(larger, 128, macs) < TARGET_STEPS
    # a run of a few epochs is underfit: no extra dropout; many epochs on few tokens: more
    assert small["dropout"] == 0.2 and small["budget_epochs"] < OVERFIT_EPOCHS
    long = size_model(100_000, 549, 25.0, **kw)
    assert (long["units"], long["batch_size"], long["dropout"]) == (256, 64, 0.3)
    assert size_model(100_000, 549, None, **kw)["budget_steps"] is None
    assert "2x256 LSTM" in long["reason"] and "dropout 0.3" in long["reason"]


def test_sizing_small_corpus_gets_a_smaller_model():
    kw = dict(window=128, stride=64)
    for tokens in (20_000, 5_000, 1_000):
        s = size_model(tokens, 549, 25.0, **kw)
        assert s["parameters"] < lstm_parameters(*LADDER[0], 549)
        assert s["parameters"] <= MAX_PARAMS_PER_TOKEN * tokens or (
            (s["layers"], s["units"], s["embedding_dim"]) == LADDER[-1])
        assert s["dropout"] == 0.3
    # sizes given are kept, the rest follows from them
    s = size_model(20_000, 549, 3.0, units=512, **kw)
    assert s["units"] == 512 and s["parameters"] == lstm_parameters(2, 512, 64, 549)


def test_sizing_dropout_grows_with_parameters_per_token():
    assert dropout_for(1_000_000, 1_000_000) == 0.2
    assert dropout_for(2_000_000, 1_000_000) == 0.2
    assert 0.2 < dropout_for(3_000_000, 1_000_000) < 0.3
    assert dropout_for(4_000_000, 1_000_000) == dropout_for(40_000_000, 1_000_000) == 0.3
    assert dropout_for(40_000_000, 1_000_000, epochs=OVERFIT_EPOCHS - 1) == 0.2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "tunes", n_pieces=20, seed=2)


def test_sizing_fills_only_unset_settings(dataset):
    tokens = _train_tokens(dataset)
    assert tokens == sum(len(dataset.piece_tokens(i)) for i in dataset.split_indices("train"))
    vocab = dataset.codec.vocab_size
    cfg = TrainConfig(max_minutes=3.0)
    _fit_to_corpus(cfg, dataset, {})
    want = size_model(tokens, vocab, 3.0, window=128, stride=64)
    assert (cfg.layers, cfg.units, cfg.embedding_dim, cfg.batch_size, cfg.dropout) == (
        want["layers"], want["units"], want["embedding_dim"], want["batch_size"],
        want["dropout"])
    assert cfg.sizing["sized"] == ["layers", "units", "embedding_dim", "batch_size", "dropout"]
    assert cfg.sizing["chosen"]["units"] == cfg.units
    # explicit values win; dropout and batch follow the architecture actually trained
    cfg = TrainConfig(units=24, max_minutes=3.0)
    _fit_to_corpus(cfg, dataset, {"units": 24, "dropout": None})
    assert cfg.units == 24
    assert cfg.sizing["sized"] == ["layers", "embedding_dim", "batch_size", "dropout"]
    want = size_model(tokens, vocab, 3.0, window=128, stride=64, units=24)
    assert (cfg.dropout, cfg.batch_size) == (want["dropout"], want["batch_size"])
    assert cfg.sizing["parameters"] == lstm_parameters(cfg.layers, 24, cfg.embedding_dim, vocab)
    given = {"units": 24, "layers": 1, "embedding_dim": 8, "dropout": 0.05, "batch_size": 16}
    cfg = TrainConfig(**given)
    _fit_to_corpus(cfg, dataset, given)
    assert (cfg.units, cfg.layers, cfg.embedding_dim, cfg.dropout, cfg.batch_size,
            cfg.sizing) == (24, 1, 8, 0.05, 16, None)
    paper = TrainConfig(preset="paper", units=128, dropout=0.2, batch_size=32)
    _fit_to_corpus(paper, dataset, {})
    assert (paper.units, paper.dropout, paper.batch_size, paper.sizing) == (128, 0.2, 32, None)


@pytest.mark.tf
def test_train_records_the_sizing_in_the_log_and_the_exported_config(dataset, tmp_path,
                                                                      capsys):
    from musgen import training

    kw = {k: v for k, v in TINY.items() if k not in ("dropout", "quiet")}
    out = training.train(dataset, tmp_path / "m", epochs=1, seed=0, quiet=False, **kw)
    # TINY gives every size and the batch, and no budget: only dropout is sized
    log = capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    sizing = config["training"]["hyperparameters"]["sizing"]
    assert sizing["sized"] == ["dropout"]
    assert sizing["chosen"]["dropout"] == config["model"]["dropout"] == dropout_for(
        sizing["parameters"], _train_tokens(dataset), None)
    assert config["model"]["lstm_units"] == [24, 24]  # the explicit size won
    line = next(ln for ln in log.splitlines() if ln.startswith("model sized to the corpus"))
    assert f"dropout {config['model']['dropout']:g}" in line and "--dropout" in line
