"""The LSTM inference engine: ``load(model_dir)`` -> an Engine running on C++, CUDA or NumPy.

The engine reads only a model directory (``musgen.modeldir``) and never needs TensorFlow. The
same model, the same seed and the same settings give the same tokens on every backend.
"""

from __future__ import annotations

from ._engine import Engine, load

__all__ = ["Engine", "load"]
