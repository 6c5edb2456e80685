"""Training: ``train`` fits a model on a prepared dataset and exports a model directory;
``export`` writes one from any checkpoint. TensorFlow is imported only when training.

``config`` (hyper-parameters, presets), ``windows`` (each epoch's data), ``model`` (the Keras
model and its tensor names), ``checkpoints`` (bit-identical resume), ``distributed``
(tf.distribute), ``loop`` (the epoch loop), ``export`` and ``progress`` (the per-epoch bar).
"""

from .checkpoints import read_state
from .config import PRESETS, TrainConfig
from .export import export
from .loop import train
from .model import build_keras_model, model_section
from .windows import epoch_windows, paper_normalization, paper_windows

__all__ = ["TrainConfig", "PRESETS", "train", "export", "epoch_windows", "paper_windows",
           "paper_normalization", "build_keras_model", "model_section", "read_state"]
