"""Glue to the C++ engine (musgen._core.LstmEngine): weights in, arrays out."""

from __future__ import annotations

import numpy as np

from .. import _backend
from ..errors import BackendUnavailableError


def has_cpp_engine() -> bool:
    """True when the compiled core includes the LSTM engine."""
    return _backend.has_cpp() and hasattr(_backend.core(), "LstmEngine")


def build_cpp_engine(config: dict, tensors: dict, precision: str = "float32"):
    """A ``_core.LstmEngine`` holding a private copy of the weights (repacked once in C++)."""
    core = _backend.core()
    if not hasattr(core, "LstmEngine"):
        raise BackendUnavailableError("the C++ core of this build has no LSTM engine; "
                                      "use backend='python'")
    model = config["model"]
    weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    return core.LstmEngine(model["kind"], [int(u) for u in model["lstm_units"]], weights,
                           str(model.get("dense_activation", "relu")), "auto", precision)
