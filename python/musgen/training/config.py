"""Hyper-parameters of a training run and the named presets."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrainConfig", "PRESETS"]


@dataclass
class TrainConfig:
    """Hyper-parameters of a run; the defaults are the ``default`` preset.

    The default (2 x 256 LSTM, 128-token windows, 25-minute budget) reaches a good model on a
    chorale- or folk-sized corpus (10^5-10^6 tokens) on a 2-core CPU within 30 minutes.
    """

    preset: str = "default"
    epochs: int = 60
    batch_size: int = 32
    window: int = 128
    stride: int = 64
    units: int = 256
    layers: int = 2
    embedding_dim: int = 64
    dropout: float = 0.2
    learning_rate: float = 2e-3
    seed: int = 0
    patience: int = 6          # epochs without validation improvement before stopping
    lr_patience: int = 2       # epochs without improvement before halving the learning rate
    lr_factor: float = 0.5
    min_learning_rate: float = 1e-5
    max_minutes: float | None = 25.0
    transpose: int = 0         # random transposition of each piece by up to +-N semitones
    tempo_shift: int = 0       # codec v2: random tempo change by up to +-N Tempo bins
    dense_units: list = field(default_factory=list)   # paper preset only
    clipnorm: float = 1.0


PRESETS: dict = {
    "default": {},
    # The seed paper: 2 stacked LSTMs returning sequences, dense layers, MSE on the per-note
    # float features (pitch, velocity, time delta), Adam, 30 epochs.
    "paper": {"epochs": 30, "units": 128, "layers": 2, "dense_units": [64], "window": 32,
              "stride": 16, "batch_size": 32, "dropout": 0.2, "learning_rate": 1e-3,
              "embedding_dim": 0, "transpose": 0, "tempo_shift": 0},
}
