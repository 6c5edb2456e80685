"""Glue to the CUDA engine (musgen._core.CudaLstmEngine): weights in, arrays out.

Only kind "lstm_lm" runs on the GPU. A "paper" model loaded with backend="cuda" runs on the C++
CPU engine (its feature regression is small and latency-bound; there is no CUDA version).
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from ..errors import BackendUnavailableError


class CudaEngine:
    """The CUDA engine with the call signatures the Engine facade uses for the C++ engine."""

    def __init__(self, core_engine):
        self._engine = core_engine

    @property
    def device_name(self) -> str:
        return self._engine.device_name

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        return self._engine.logits(tokens)

    def generate(self, *args, threads: int = 0, progress=None, rules=None):
        return self._engine.generate(*args, threads=threads, progress=progress, rules=rules)


def build_cuda_engine(config: dict, tensors: dict):
    """The engine object for backend "cuda": weights uploaded to device 0 once."""
    core = _backend.core()
    model = config["model"]
    if model["kind"] != "lstm_lm":
        from ._cpp import build_cpp_engine

        return build_cpp_engine(config, tensors)
    if not hasattr(core, "CudaLstmEngine"):
        raise BackendUnavailableError("the CUDA backend is not available: this build has no "
                                      "CUDA engine (build with MUSGEN_ENABLE_CUDA=ON and nvcc)")
    weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    return CudaEngine(core.CudaLstmEngine(model["kind"], [int(u) for u in model["lstm_units"]],
                                          weights))
