"""The Engine facade: validation, backend choice, and the one Python signature of each call."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import _backend
from ..modeldir import load_model_dir
from ._numpy import NumpyModel

__all__ = ["Engine", "load"]


def load(model_dir: str | os.PathLike, *, backend: str | None = None) -> "Engine":
    """Load a model directory and return an engine.

    Parameters
    ----------
    model_dir : path
        Folder with ``config.json`` and ``weights.safetensors`` (see ``musgen.modeldir``).
    backend : {"cpp", "python", "cuda", "auto"} or None
        None reads ``MUSGEN_BACKEND`` (default auto: C++ when built, else NumPy).

    Raises
    ------
    ModelFormatError
        The folder, config or weights are missing, damaged or do not match each other.
    BackendUnavailableError
        The requested backend is not built or not usable on this machine.
    """
    name = _backend.resolve(backend, engine=True)
    if name == "cpp" and _backend.requested(backend) == "auto":
        from ._cpp import has_cpp_engine

        if not has_cpp_engine():  # a core built without the engine: auto means "best available"
            name = "python"
    config, tensors = load_model_dir(model_dir)
    return Engine(config, tensors, name, Path(model_dir))


class Engine:
    """A loaded model on one backend. Create it with :func:`load`.

    Attributes
    ----------
    config : dict
        The model directory's ``config.json``.
    backend : str
        "cpp", "python" or "cuda".
    kind : str
        "lstm_lm" (token language model) or "paper" (note-feature regression).
    """

    def __init__(self, config: dict, tensors: dict, backend: str, path: Path | None = None):
        self.config = config
        self.backend = backend
        self.path = path
        self.kind = config["model"]["kind"]
        self._np = NumpyModel(config, tensors)
        self._cpp = None
        if backend == "cpp":
            from ._cpp import build_cpp_engine

            self._cpp = build_cpp_engine(config, tensors)
        elif backend == "cuda":  # pragma: no cover - resolve() refuses cuda until it is built
            raise _backend.BackendUnavailableError("the CUDA engine is not part of this build")
        self._codec = None

    def __repr__(self) -> str:
        m = self.config["model"]
        return (f"Engine(kind={self.kind!r}, lstm_units={m['lstm_units']}, "
                f"backend={self.backend!r}, path={str(self.path) if self.path else None!r})")

    # ------------------------------------------------------------------------- properties
    @property
    def vocab_size(self) -> int:
        """Number of token ids (kind lstm_lm)."""
        self._need_kind("lstm_lm", "vocab_size")
        return self._np.vocab_size

    @property
    def codec(self):
        """The CodecConfig saved with the model (kind lstm_lm)."""
        if self._codec is None:
            from ..codec import CodecConfig

            if "codec" not in self.config:
                from ..errors import ModelFormatError

                raise ModelFormatError(f"{self.path}: config.json has no 'codec' section")
            self._codec = CodecConfig.from_dict(self.config["codec"])
        return self._codec

    def _need_kind(self, kind: str, what: str) -> None:
        if self.kind != kind:
            raise TypeError(f"Engine.{what} needs a model of kind {kind!r}; this one is "
                            f"{self.kind!r}")

    # ------------------------------------------------------------------------- teacher forcing
    def logits(self, tokens) -> np.ndarray:
        """Teacher-forced logits from a zero state.

        Parameters
        ----------
        tokens : int array [B, T] or [T]
            Token ids in ``[0, vocab_size)``; a 1-D array is one stream (B = 1).

        Returns
        -------
        float32 array [B, T, vocab_size]
            ``logits[b, t]`` scores the token that follows ``tokens[b, :t + 1]``.
        """
        self._need_kind("lstm_lm", "logits")
        tok = _as_tokens(tokens, self._np.vocab_size)
        if tok.shape[1] == 0:
            return np.zeros((tok.shape[0], 0, self._np.vocab_size), np.float32)
        if self._cpp is not None:
            return self._cpp.logits(tok)
        out, _ = self._np.sequence(tok)
        return out

    def predict(self, features) -> np.ndarray:
        """Teacher-forced outputs of a paper model: features [B, T, F] or [T, F] -> [B, T, F]."""
        self._need_kind("paper", "predict")
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != self._np.n_features:
            raise ValueError(f"features: shape {list(np.shape(features))}, expected [B, T, "
                             f"{self._np.n_features}] or [T, {self._np.n_features}]")
        if not np.all(np.isfinite(x)):
            raise ValueError("features: contains NaN or infinite values")
        if x.shape[1] == 0:
            return np.zeros(x.shape, np.float32)
        if self._cpp is not None:
            return self._cpp.predict(np.ascontiguousarray(x))
        out, _ = self._np.sequence(x)
        return out


def _as_tokens(tokens, vocab: int) -> np.ndarray:
    """Validate token ids -> contiguous int32 [B, T]."""
    arr = np.asarray(tokens)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise ValueError(f"tokens: shape {list(arr.shape)}, expected [B, T] or [T]")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"tokens: dtype {arr.dtype}, expected integers")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab):
        bad = arr[(arr < 0) | (arr >= vocab)].flat[0]
        raise ValueError(f"tokens: id {int(bad)} outside the vocabulary [0, {vocab})")
    return np.ascontiguousarray(arr, dtype=np.int32)
