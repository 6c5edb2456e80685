"""The LSTM forward pass in plain NumPy: the readable statement of the engine's math.

It is the fallback when the C++ extension is absent and the reference the C++ engine is tested
against. Everything is float32, Keras layout and gate order (i, f, c, o):

    z = x @ W + h @ U + b                       (W [in, 4u], U [u, 4u], b [4u])
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_c), sigmoid(z_o)
    c' = f * c + i * g
    h' = o * tanh(c')
"""

from __future__ import annotations

import numpy as np

__all__ = ["NumpyModel", "sigmoid"]

_F32 = np.float32


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function in float32, without overflow warnings for large |x|."""
    # exp(-|x|) never overflows; the two branches are the same function written stably.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, _F32(1) / (_F32(1) + e), e / (_F32(1) + e)).astype(_F32, copy=False)


def _activation(name: str):
    if name == "relu":
        return lambda x: np.maximum(x, _F32(0))
    if name == "tanh":
        return np.tanh
    if name == "sigmoid":
        return sigmoid
    if name == "linear":
        return lambda x: x
    raise ValueError(f"unknown dense activation {name!r}")


class NumpyModel:
    """Weights of one model directory and its forward pass over a batch of streams.

    Parameters
    ----------
    config : dict
        The model directory's config (``config["model"]`` describes the architecture).
    tensors : dict
        Tensor name -> float32 array, already validated by ``musgen.modeldir.load_model_dir``.
    """

    def __init__(self, config: dict, tensors: dict):
        model = config["model"]
        self.kind = model["kind"]
        self.units = [int(u) for u in model["lstm_units"]]
        self.layers = []
        for k in range(len(self.units)):
            self.layers.append((
                np.ascontiguousarray(tensors[f"lstm_{k}/kernel"], dtype=_F32),
                np.ascontiguousarray(tensors[f"lstm_{k}/recurrent_kernel"], dtype=_F32),
                np.ascontiguousarray(tensors[f"lstm_{k}/bias"], dtype=_F32),
            ))
        if self.kind == "lstm_lm":
            self.embedding = np.ascontiguousarray(tensors["embedding/embeddings"], dtype=_F32)
            self.head = (np.ascontiguousarray(tensors["head/kernel"], dtype=_F32),
                         np.ascontiguousarray(tensors["head/bias"], dtype=_F32))
            self.vocab_size = int(self.embedding.shape[0])
            self.output_dim = self.vocab_size
        else:
            self.n_features = int(model["n_features"])
            n_dense = len(model.get("dense_units", [])) + 1
            self.dense = [(np.ascontiguousarray(tensors[f"dense_{j}/kernel"], dtype=_F32),
                           np.ascontiguousarray(tensors[f"dense_{j}/bias"], dtype=_F32))
                          for j in range(n_dense)]
            self.dense_activation = _activation(model.get("dense_activation", "relu"))
            self.output_dim = self.n_features

    # ------------------------------------------------------------------------- state
    def zero_state(self, batch: int) -> list:
        """Per layer (h, c), each float32 [batch, units]."""
        return [(np.zeros((batch, u), _F32), np.zeros((batch, u), _F32)) for u in self.units]

    @staticmethod
    def _cell(z: np.ndarray, c: np.ndarray) -> tuple:
        u = c.shape[-1]
        i = sigmoid(z[:, :u])
        f = sigmoid(z[:, u:2 * u])
        g = np.tanh(z[:, 2 * u:3 * u])
        o = sigmoid(z[:, 3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
        return h, c

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        """Token ids [...] -> embeddings [..., emb]; features pass through as float32."""
        if self.kind == "lstm_lm":
            return self.embedding[x]
        return np.asarray(x, dtype=_F32)

    def _outputs(self, h: np.ndarray) -> np.ndarray:
        if self.kind == "lstm_lm":
            return h @ self.head[0] + self.head[1]
        for j, (w, b) in enumerate(self.dense):
            h = h @ w + b
            if j + 1 < len(self.dense):
                h = self.dense_activation(h)
        return h

    # ------------------------------------------------------------------------- forward
    def step(self, x: np.ndarray, state: list) -> tuple:
        """Advance every stream by one input: tokens int [B] (or features [B, F]).

        Returns (outputs float32 [B, V or F], new state).
        """
        h_in = self._inputs(x)
        new_state = []
        for (w, u, b), (h, c) in zip(self.layers, state):
            z = h_in @ w + h @ u + b
            h, c = self._cell(z, c)
            new_state.append((h, c))
            h_in = h
        return self._outputs(h_in), new_state

    def sequence(self, x: np.ndarray, state: list | None = None) -> tuple:
        """Teacher-forced forward over [B, T] tokens (or [B, T, F] features) from ``state``.

        Returns (outputs float32 [B, T, V or F], final state).
        """
        seq = self._inputs(x)
        batch, steps = seq.shape[0], seq.shape[1]
        if state is None:
            state = self.zero_state(batch)
        new_state = []
        for (w, u, b), (h, c) in zip(self.layers, state):
            # The input projection of every step at once: one large matrix product.
            zx = (seq.reshape(batch * steps, -1) @ w + b).reshape(batch, steps, -1)
            out = np.empty((batch, steps, h.shape[1]), _F32)
            for t in range(steps):
                h, c = self._cell(zx[:, t] + h @ u, c)
                out[:, t] = h
            new_state.append((h, c))
            seq = out
        flat = self._outputs(seq.reshape(batch * steps, -1))
        return flat.reshape(batch, steps, -1).astype(_F32, copy=False), new_state

    def warm_up(self, x: np.ndarray, block: int = 256) -> tuple:
        """The state after inputs ``x`` [B, T] (T >= 1) from a zero state, and the outputs of the
        last step [B, V or F]. The same arithmetic as :meth:`sequence` (each layer's input
        projection over many steps at once), in blocks of ``block`` steps so memory stays
        bounded whatever T is; outputs are computed for the last step only."""
        batch, steps = x.shape[0], x.shape[1]
        state = self.zero_state(batch)
        h_top = None
        for t0 in range(0, steps, block):
            seq = self._inputs(x[:, t0:t0 + block])
            span = seq.shape[1]
            new_state = []
            for (w, u, b), (h, c) in zip(self.layers, state):
                zx = (seq.reshape(batch * span, -1) @ w + b).reshape(batch, span, -1)
                out = np.empty((batch, span, h.shape[1]), _F32)
                for t in range(span):
                    h, c = self._cell(zx[:, t] + h @ u, c)
                    out[:, t] = h
                new_state.append((h, c))
                seq = out
            state = new_state
            h_top = seq[:, -1]
        return self._outputs(h_top).astype(_F32, copy=False), state
