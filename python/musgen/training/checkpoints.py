"""Training checkpoints, written so that a run killed at any instant resumes bit for bit.

Checkpoint layout (``MODEL_DIR/checkpoints/``):

* ``epoch-NNNN.npz``: every Keras model variable (weights *and* dropout seed-generator state)
  and every optimizer variable (iteration, learning rate, Adam moments) after epoch NNNN,
  keyed ``model/NNN/<variable path>`` and ``optimizer/NNN/<variable path>``;
* ``best.npz``: a copy of the checkpoint with the lowest validation loss;
* ``state.json``: the run (hyper-parameters, model section, codec, dataset provenance), the
  last complete epoch, the history, and the learning-rate/early-stopping counters.

Every file is written to a temporary name and renamed, and ``state.json`` is written last, so
a run killed at any instant (SIGKILL included) leaves ``state.json`` pointing at a complete
checkpoint. The data order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run
replays exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes
from ..errors import ModelFormatError

__all__ = ["CHECKPOINT_DIR", "STATE_NAME", "BEST_NAME", "STATE_FORMAT", "save_npz", "snapshot",
           "restore", "read_npz", "read_state", "write_state", "find_checkpoint"]

CHECKPOINT_DIR = "checkpoints"
STATE_NAME = "state.json"
BEST_NAME = "best.npz"
STATE_FORMAT = "musgen.checkpoint"


def save_npz(path: Path, arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def snapshot(model, optimizer) -> dict:
    arrays = {}
    for i, v in enumerate(model.variables):
        arrays[f"model/{i:03d}/{v.path}"] = np.asarray(v.numpy())
    for i, v in enumerate(optimizer.variables):
        arrays[f"optimizer/{i:03d}/{v.path}"] = np.asarray(v.numpy())
    return arrays


def read_npz(path: Path) -> dict:
    """Every array of a checkpoint; a truncated or damaged file raises ModelFormatError."""
    try:
        # opened here: np.load leaves its own handle open when the zip is damaged
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelFormatError(f"{path}: cannot read the checkpoint (truncated or damaged: "
                               f"{' '.join(str(exc).split()) or type(exc).__name__})") from None


def restore(model, optimizer, path: Path) -> None:
    arrays = read_npz(path)
    for prefix, variables in (("model", model.variables), ("optimizer", optimizer.variables)):
        keys = sorted(k for k in arrays if k.startswith(prefix + "/"))
        if len(keys) != len(variables):
            raise ModelFormatError(f"{path}: {len(keys)} {prefix} variables, the model built "
                                   f"from state.json has {len(variables)}")
        for key, v in zip(keys, variables):
            value = arrays[key]
            if tuple(value.shape) != tuple(v.shape):
                raise ModelFormatError(f"{path}: {key} has shape {list(value.shape)}, the "
                                       f"variable {v.path} needs {list(v.shape)}")
            v.assign(value)


def read_state(ckpt_dir) -> dict:
    from ..modeldir import parse_json

    path = Path(ckpt_dir) / STATE_NAME
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read the checkpoint state ({exc})") from exc
    state = parse_json(data, path)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ModelFormatError(f"{path}: not a musgen checkpoint state (format "
                               f"{state.get('format') if isinstance(state, dict) else None!r}, "
                               f"expected {STATE_FORMAT!r})")
    return state


def write_state(ckpt_dir: Path, state: dict) -> None:
    atomic_write_bytes(ckpt_dir / STATE_NAME,
                       (json.dumps(state, indent=2, sort_keys=True) + "\n").encode())


def find_checkpoint(path: Path) -> tuple[Path, Path]:
    """-> (state directory, checkpoint .npz) for a model dir, a checkpoints dir or a .npz."""
    if path.is_file():
        return path.parent, path
    for d in (path / CHECKPOINT_DIR, path):
        if (d / STATE_NAME).exists():
            best = d / BEST_NAME
            if best.exists():
                return d, best
            last = read_state(d).get("last_checkpoint")
            if not isinstance(last, str) or not last or "/" in last or "\\" in last:
                raise ModelFormatError(f"{d / STATE_NAME}: last_checkpoint {last!r} is not a "
                                       "checkpoint file name")
            return d, d / last
    raise ModelFormatError(f"{path}: no checkpoint found (expected {STATE_NAME} in {path} or "
                           f"in {path / CHECKPOINT_DIR})")
