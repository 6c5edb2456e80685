"""Random-weight model directories, for tests and benchmarks of the engine (no training needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..modeldir import expected_tensors, save_model_dir

__all__ = ["random_model_dir"]


def random_model_dir(path, *, vocab_size: int = 40, embedding_dim: int = 8,
                     lstm_units=(16, 16), seed: int = 0, scale: float = 0.5,
                     codec: dict | None = None, kind: str = "lstm_lm",
                     dense_units=(), n_features: int = 3) -> Path:
    """Write a model directory with weights drawn from N(0, scale^2 / fan_in).

    ``scale`` near 1 keeps the gates away from saturation, so tests see non-trivial logits.
    """
    if kind == "lstm_lm":
        model = {"kind": "lstm_lm", "vocab_size": int(vocab_size),
                 "embedding_dim": int(embedding_dim), "lstm_units": [int(u) for u in lstm_units],
                 "dropout": 0.0}
    else:
        model = {"kind": "paper", "n_features": int(n_features),
                 "lstm_units": [int(u) for u in lstm_units],
                 "dense_units": [int(d) for d in dense_units], "dense_activation": "relu"}
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in expected_tensors(model).items():
        fan_in = shape[0] if len(shape) == 2 and not name.startswith("embedding") else 1
        std = scale / np.sqrt(fan_in) if len(shape) == 2 else scale * 0.2
        tensors[name] = (rng.standard_normal(shape) * std).astype(np.float32)
    config = {"model": model, "training": {"source": "random weights", "seed": int(seed)}}
    if codec is not None:
        config["codec"] = codec
    return save_model_dir(path, config, tensors)
