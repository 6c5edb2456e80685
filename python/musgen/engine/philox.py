"""Philox4x32-10 in NumPy: the counter-based generator behind sampling on every backend.

Exactly as in ``cpp/include/musgen/philox.hpp``:

* key     = (seed & 0xffffffff, seed >> 32)  -- the stream's 64-bit seed
* counter = (step, stream, 0, 0)             -- step: index of the generated token (0 = the first
  token after the primer); stream: the stream's index in the batch
* u       = (x0 >> 8) * 2**-24               -- x0: the first output word, so u is in [0, 1)

Vectorized over any number of counters, so a whole batch's uniforms come from one call.
"""

from __future__ import annotations

import numpy as np

__all__ = ["philox4x32_10", "philox_uniform"]

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
_LO = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


def philox4x32_10(counter, key) -> np.ndarray:
    """Philox4x32-10 blocks: counter uint32 [..., 4], key uint32 [..., 2] -> uint32 [..., 4]."""
    ctr = np.asarray(counter, dtype=np.uint64) & _LO
    k = np.asarray(key, dtype=np.uint64) & _LO
    c0, c1, c2, c3 = (ctr[..., i] for i in range(4))
    k0, k1 = k[..., 0].astype(np.uint32), k[..., 1].astype(np.uint32)
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (((p1 >> _S32) ^ c1 ^ k0.astype(np.uint64)) & _LO, p1 & _LO,
                          ((p0 >> _S32) ^ c3 ^ k1.astype(np.uint64)) & _LO, p0 & _LO)
        with np.errstate(over="ignore"):
            k0 = k0 + _W0
            k1 = k1 + _W1
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def philox_uniform(seed, step, stream) -> np.ndarray:
    """The sampling uniform(s) in [0, 1) for (seed, step, stream); arrays broadcast (float64)."""
    seed, step, stream = np.broadcast_arrays(np.asarray(seed, dtype=np.uint64),
                                             np.asarray(step, dtype=np.uint64),
                                             np.asarray(stream, dtype=np.uint64))
    zeros = np.zeros(seed.shape, np.uint64)
    ctr = np.stack([step & _LO, stream & _LO, zeros, zeros], axis=-1)
    key = np.stack([seed & _LO, seed >> _S32], axis=-1)
    x0 = philox4x32_10(ctr, key)[..., 0]
    return (x0 >> np.uint32(8)).astype(np.float64) * (1.0 / 16777216.0)
