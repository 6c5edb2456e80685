"""The Keras model of a ``config["model"]`` section, and how its variables map to the tensor
names of the model directory. Keras is imported only when a model is built."""

from __future__ import annotations

from .config import TrainConfig

__all__ = ["model_section", "build_keras_model", "tensor_name"]


def model_section(cfg: TrainConfig, vocab_size: int | None, norm=None) -> dict:
    """The ``config["model"]`` section of the model directory for this run."""
    units = [int(cfg.units)] * int(cfg.layers)
    if cfg.preset == "paper":
        mean, std = norm
        return {"kind": "paper", "n_features": 3, "lstm_units": units,
                "dense_units": [int(d) for d in cfg.dense_units], "dense_activation": "relu",
                "dropout": float(cfg.dropout),
                "features": ["pitch", "velocity", "time_delta_seconds"],
                "feature_mean": [float(v) for v in mean],
                "feature_std": [float(v) for v in std],
                "normalization": "inputs and outputs are (feature - feature_mean) / feature_std"}
    return {"kind": "lstm_lm", "vocab_size": int(vocab_size),
            "embedding_dim": int(cfg.embedding_dim), "lstm_units": units,
            "dropout": float(cfg.dropout)}


def build_keras_model(model: dict, *, seed: int = 0):
    """The Keras model of a ``config["model"]`` section (layer names match the tensor names)."""
    import keras

    units = model["lstm_units"]
    rate = float(model.get("dropout", 0.0))
    if model["kind"] == "lstm_lm":
        inp = keras.Input(shape=(None,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(model["vocab_size"], model["embedding_dim"],
                                   name="embedding")(inp)
    else:
        inp = keras.Input(shape=(None, model["n_features"]), dtype="float32", name="features")
        x = inp
    for k, u in enumerate(units):
        x = keras.layers.LSTM(u, return_sequences=True, name=f"lstm_{k}")(x)
        if rate > 0:
            # Dropout between layers (not inside the cell) keeps the fused LSTM kernel usable.
            x = keras.layers.Dropout(rate, seed=seed + 1 + k, name=f"dropout_{k}")(x)
    if model["kind"] == "lstm_lm":
        out = keras.layers.Dense(model["vocab_size"], name="head")(x)
    else:
        dense = list(model.get("dense_units", []))
        for j, d in enumerate(dense):
            x = keras.layers.Dense(d, activation=model.get("dense_activation", "relu"),
                                   name=f"dense_{j}")(x)
        out = keras.layers.Dense(model["n_features"], name=f"dense_{len(dense)}")(x)
    return keras.Model(inp, out, name=f"musgen_{model['kind']}")


def tensor_name(path: str) -> str | None:
    """Keras variable path -> model-directory tensor name (None for non-weights)."""
    parts = path.split("/")
    if "seed_generator_state" in parts[-1]:
        return None
    layer, leaf = parts[0], parts[-1]
    return f"{layer}/{leaf}"
