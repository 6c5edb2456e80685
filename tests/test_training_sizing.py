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
    LADDER,
    MACS_PER_SECOND,
    MIN_STEPS,
    dropout_for,
    lstm_parameters,
    macs_per_token,
    size_model,
)


@pytest.mark.parametrize("layers,units,emb,vocab", [(2, 256, 64, 549), (1, 24, 8, 259),
                                                    (3, 96, 48, 700)])
def test_sizing_parameter_count_matches_the_model_format(layers, units, emb, vocab):
    model = {"kind": "lstm_lm", "vocab_size": vocab, "embedding_dim": emb,
             "lstm_units": [units] * layers, "dropout": 0.2}
    shapes = expected_tensors(model)
    assert lstm_parameters(layers, units, emb, vocab) == sum(math.prod(s) for s in
                                                            shapes.values())


def test_sizing_small_corpus_short_budget_gets_a_smaller_model_and_more_dropout():
    small = size_model(100_000, 549, 3.0, batch_size=64, window=128)
    big = size_model(1_000_000, 549, 25.0, batch_size=64, window=128)
    assert (big["layers"], big["units"], big["embedding_dim"]) == LADDER[0] == (2, 256, 64)
    assert big["dropout"] == 0.2 and big["budget_steps"] >= MIN_STEPS
    assert small["units"] < big["units"] and small["parameters"] < big["parameters"]
    assert small["budget_steps"] >= MIN_STEPS  # the largest model the budget affords
    # ... and the largest one: the next larger model of the ladder affords too few steps
    above = LADDER[LADDER.index((small["layers"], small["units"], small["embedding_dim"])) - 1]
    assert 180 * MACS_PER_SECOND / (64 * 128 * macs_per_token(*above, 549)) < MIN_STEPS
    # the same small corpus with a long budget: the default size, with more dropout
    long = size_model(100_000, 549, 25.0, batch_size=64, window=128)
    assert long["units"] == 256 and long["dropout"] == 0.3
    assert size_model(100_000, 549, None, batch_size=64, window=128)["budget_steps"] is None
    assert "2x256 LSTM" in long["reason"] and "dropout 0.3" in long["reason"]


def test_sizing_dropout_grows_with_parameters_per_token():
    assert dropout_for(1_000_000, 1_000_000) == 0.2
    assert dropout_for(2_000_000, 1_000_000) == 0.2
    assert 0.2 < dropout_for(3_000_000, 1_000_000) < 0.3
    assert dropout_for(4_000_000, 1_000_000) == dropout_for(40_000_000, 1_000_000) == 0.3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "tunes", n_pieces=20, seed=2)


def test_sizing_fills_only_unset_settings(dataset):
    tokens = _train_tokens(dataset)
    assert tokens == sum(len(dataset.piece_tokens(i)) for i in dataset.split_indices("train"))
    cfg = TrainConfig(max_minutes=3.0)
    _fit_to_corpus(cfg, dataset, {})
    want = size_model(tokens, dataset.codec.vocab_size, 3.0, batch_size=64, window=128)
    assert (cfg.layers, cfg.units, cfg.embedding_dim, cfg.dropout) == (
        want["layers"], want["units"], want["embedding_dim"], want["dropout"])
    assert cfg.sizing["sized"] == ["layers", "units", "embedding_dim", "dropout"]
    # explicit values win; dropout follows the architecture actually trained
    cfg = TrainConfig(units=24, max_minutes=3.0)
    _fit_to_corpus(cfg, dataset, {"units": 24, "dropout": None})
    assert cfg.units == 24 and cfg.sizing["sized"] == ["layers", "embedding_dim", "dropout"]
    params = lstm_parameters(cfg.layers, 24, cfg.embedding_dim, dataset.codec.vocab_size)
    assert cfg.dropout == dropout_for(params, tokens) and cfg.sizing["parameters"] == params
    cfg = TrainConfig(units=24, layers=1, embedding_dim=8, dropout=0.05)
    _fit_to_corpus(cfg, dataset, {"units": 24, "layers": 1, "embedding_dim": 8,
                                  "dropout": 0.05})
    assert (cfg.units, cfg.layers, cfg.embedding_dim, cfg.dropout, cfg.sizing) == \
        (24, 1, 8, 0.05, None)
    paper = TrainConfig(preset="paper", units=128, dropout=0.2)
    _fit_to_corpus(paper, dataset, {})
    assert (paper.units, paper.dropout, paper.sizing) == (128, 0.2, None)


@pytest.mark.tf
def test_train_records_the_sizing_in_the_log_and_the_exported_config(dataset, tmp_path,
                                                                      capsys):
    from musgen import training

    kw = {k: v for k, v in TINY.items() if k not in ("dropout", "quiet")}
    out = training.train(dataset, tmp_path / "m", epochs=1, seed=0, quiet=False, **kw)
    log = capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    sizing = config["training"]["hyperparameters"]["sizing"]
    assert sizing["sized"] == ["dropout"]
    assert sizing["chosen"]["dropout"] == config["model"]["dropout"] == dropout_for(
        sizing["parameters"], _train_tokens(dataset))
    assert config["model"]["lstm_units"] == [24, 24]  # the explicit size won
    line = next(ln for ln in log.splitlines() if ln.startswith("model sized to the corpus"))
    assert f"dropout {config['model']['dropout']:g}" in line and "--dropout" in line
