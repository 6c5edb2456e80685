"""Hyper-parameters of a training run and the named presets."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrainConfig", "PRESETS"]


@dataclass
class TrainConfig:
    """Hyper-parameters of a run; the defaults are the ``default`` preset.

    The default (2 x 256 LSTM, 128-token windows, 25-minute budget) reaches a good model on a
    chorale- or folk-sized corpus (10^5-10^6 tokens) on a 2-core CPU within 30 minutes.

    Batch size, learning rate, XLA and the validation batch were chosen by measurement
    (``bench/bench_train.py`` on JSB Chorales, 2-core AMD EPYC, shared): batch 64 trains 1.41x
    the tokens/s of batch 32 (128: 1.71x); with the learning rate doubled with the batch
    (2e-3 at 32 -> 4e-3 at 64), batch 64 learns about as much per epoch as batch 32 did
    (validation NLL/token 1.538 against 1.519 after 2 epochs), while batch 128 fell far behind
    (1.746 at 4e-3, 1.818 at 8e-3) and lost more than its speed. XLA made the CPU training step
    1.2-1.4x slower (0.70-0.83x the tokens/s), and Keras turns it off anyway under the op
    determinism that makes a resumed run bit-identical, so the step is compiled without it.
    Validation, a forward pass only, runs in batches of 512.
    """

    preset: str = "default"
    epochs: int = 60
    batch_size: int = 64
    window: int = 128
    stride: int = 64
    units: int = 256
    layers: int = 2
    embedding_dim: int = 64
    dropout: float = 0.2
    learning_rate: float = 4e-3
    weight_decay: float = 0.0  # decoupled (AdamW-style) decay of the weights per step, x lr
    seed: int = 0
    patience: int = 6          # epochs without validation improvement before stopping
    lr_patience: int = 2       # epochs without improvement before halving the learning rate
    lr_factor: float = 0.5
    min_learning_rate: float = 1e-5
    max_minutes: float | None = 25.0
    transpose: int = 0         # random transposition of each piece by up to +-N semitones
    key_normalize: bool = False  # codec v2: every piece moved to C major / A minor (keyplan)
    tempo_shift: int = 0       # codec v2: random tempo change by up to +-N Tempo bins
    # codec v2: windows inside a piece start with its header of conditions (context, no loss);
    # ``train`` turns it on for version-2 datasets unless told otherwise. False here, so a run
    # saved before the option existed resumes with the windows it had.
    header_prefix: bool = False
    dense_units: list = field(default_factory=list)   # paper preset only
    clipnorm: float = 1.0
    validation_batch_size: int | None = 512  # None: batch_size
    # How the default preset sized the model to the corpus (``sizing.size_model``) for the
    # settings left unset, or None when every size was given (or for the paper preset).
    sizing: dict | None = None


PRESETS: dict = {
    "default": {},
    # The seed paper: 2 stacked LSTMs returning sequences, dense layers, MSE on the per-note
    # float features (pitch, velocity, time delta), Adam, 30 epochs.
    "paper": {"epochs": 30, "units": 128, "layers": 2, "dense_units": [64], "window": 32,
              "stride": 16, "batch_size": 32, "dropout": 0.2, "learning_rate": 1e-3,
              "weight_decay": 0.0,
              "embedding_dim": 0, "transpose": 0, "tempo_shift": 0, "validation_batch_size": None,
              "header_prefix": False, "key_normalize": False},
}
