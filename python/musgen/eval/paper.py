"""The ``paper`` preset's baseline row: MSE of a regression model and a discretized-Gaussian NLL
per note, so it can be set beside the token models (see ``musgen.eval.nll`` for what is and is
not comparable)."""

from __future__ import annotations

import math

import numpy as np

from ..data.format import piece_field
from .nll import split_pieces

__all__ = ["paper_baseline"]


def _paper_predict(engine, features: np.ndarray) -> np.ndarray:
    """Raw features ``[T, 3]`` of one piece -> the model's raw predictions of each next note's
    features ``[T, 3]`` (the config's feature normalization applied both ways)."""
    m = engine.config["model"]
    mean = np.asarray(m["feature_mean"], np.float64)
    std = np.asarray(m["feature_std"], np.float64)
    x = ((np.asarray(features, np.float64) - mean) / std).astype(np.float32)
    return np.asarray(engine.predict(x), np.float64)[0] * std + mean


def _paper_pieces(dataset, idx):
    offs = np.asarray(dataset.piece_note_offsets)
    for i in idx:
        n = int(piece_field(dataset.pieces[i], "n_notes"))
        yield np.asarray(dataset.paper_features[int(offs[i]):int(offs[i]) + n], np.float64)


def _residuals(engine, dataset, idx):
    res = []
    for f in _paper_pieces(dataset, idx):
        if len(f) < 2:
            continue
        res.append(f[1:] - _paper_predict(engine, f[:-1]))
    return np.concatenate(res) if res else np.zeros((0, 3))


def _norm_cdf(x):
    from math import erf

    return 0.5 * (1.0 + np.vectorize(erf)(x / math.sqrt(2.0)))


def paper_baseline(paper_model, dataset, split: str = "test", *,
                   backend: str | None = None) -> dict:
    """MSE of a paper-preset model and its discretized-Gaussian NLL per note (see module doc)."""
    from .. import engine as _engine

    eng = _engine.load(paper_model, backend=backend)
    config = eng.config
    if config["model"]["kind"] != "paper":
        raise ValueError(f"{paper_model}: model.kind is {config['model']['kind']!r}, "
                         "expected 'paper'")
    codec = dataset.codec
    std = np.asarray(config["model"]["feature_std"], np.float64)
    vres = _residuals(eng, dataset, split_pieces(dataset, "valid"))
    mu, sigma = vres.mean(axis=0), np.maximum(vres.std(axis=0), 1e-6)
    idx = split_pieces(dataset, split)
    res = _residuals(eng, dataset, idx)
    targets = np.concatenate([f[1:] for f in _paper_pieces(dataset, idx) if len(f) >= 2])
    pred = targets - res
    n_vel = int(codec.velocity_bins)
    if codec.timing == "seconds":
        step_s = codec.step_ms / 1000.0
    else:
        step_s = 0.5 / float(codec.steps_per_beat)  # one grid step at 120 BPM
    # Quantization cells [lo, hi) of the observed values, in raw units.
    cells = [(np.round(targets[:, 0]) - 0.5, np.round(targets[:, 0]) + 0.5)]
    vb = np.floor(np.clip(targets[:, 1], 0, 127) * n_vel / 128.0)
    cells.append((vb * 128.0 / n_vel, (vb + 1) * 128.0 / n_vel))
    tq = np.round(np.maximum(targets[:, 2], 0) / step_s)
    cells.append((np.where(tq == 0, -np.inf, (tq - 0.5) * step_s), (tq + 0.5) * step_s))
    nll = np.zeros(len(targets))
    per_feature = {}
    for f, (lo, hi) in enumerate(cells):
        m = pred[:, f] + mu[f]
        mass = _norm_cdf((hi - m) / sigma[f]) - _norm_cdf((lo - m) / sigma[f])
        part = -np.log(np.maximum(mass, 1e-12))
        per_feature[("pitch", "velocity", "time_delta")[f]] = float(part.mean())
        nll += part
    mse_norm = float(np.mean((res / std) ** 2)) if len(res) else float("nan")
    return {"mse_normalized": mse_norm,
            "mse_raw_per_feature": {k: float(v) for k, v in
                                    zip(("pitch", "velocity", "time_delta_seconds"),
                                        np.mean(res ** 2, axis=0))},
            "nll_per_note": float(nll.mean()), "nll_per_note_by_feature": per_feature,
            "n_notes_scored": int(len(targets)),
            "gaussian_sigma": [float(s) for s in sigma],
            "discretization": {"pitch": "semitone", "velocity": f"{n_vel} uniform bins",
                               "time_delta": f"{step_s:.5f} s grid (codec step at 120 BPM)"}}
