"""``export``: the model directory of a training checkpoint (no TensorFlow needed)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .._version import __version__
from ..errors import ModelFormatError
from ..modeldir import save_model_dir
from .checkpoints import STATE_NAME, find_checkpoint, read_npz, read_state
from .model import tensor_name

__all__ = ["export"]


def export(checkpoint, output) -> Path:
    """Write the model directory ``output`` from a training checkpoint (no TensorFlow needed).

    ``checkpoint`` is a model directory holding ``checkpoints/``, a checkpoints directory (the
    best epoch is exported) or one ``.npz`` checkpoint file beside its ``state.json``.
    """
    ckpt_dir, npz = find_checkpoint(Path(checkpoint))
    state = read_state(ckpt_dir)
    arrays = read_npz(npz)
    tensors = {}
    for key, value in arrays.items():
        if not key.startswith("model/"):
            continue
        parts = key.split("/", 2)
        name = tensor_name(parts[2]) if len(parts) == 3 else None
        if name is None:
            continue
        if name in tensors:
            raise ModelFormatError(f"{npz}: two variables map to tensor {name!r}")
        tensors[name] = value.astype(np.float32)
    try:
        config = {"model": state["model"], "codec": state["codec"],
                  "training": _provenance(state, npz)}
        rests = (config["training"]["dataset"] or {}).get("rests") or {}
        if config["model"]["kind"] == "lstm_lm" and "longest_p95_beats" in rests:
            # generate's max_rest="auto": the rest the corpus keeps to
            config["generation"] = {"max_rest": float(rests["longest_p95_beats"])}
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ModelFormatError(f"{ckpt_dir / STATE_NAME}: damaged checkpoint state "
                               f"({type(exc).__name__}: {exc})") from None
    return save_model_dir(output, config, tensors)


def _provenance(state: dict, npz: Path) -> dict:
    """The ``training`` section of the model config, from the checkpoint state."""
    hist = state["history"]
    best = state["best_epoch"]
    best_row = next((h for h in hist if h["epoch"] == best + 1), hist[-1] if hist else {})
    if npz.name.startswith("epoch-"):
        best_row = next((h for h in hist if f"epoch-{h['epoch']:04d}.npz" == npz.name),
                        best_row)
    training = {
        "dataset": state["run"]["dataset"], "preset": state["run"]["preset"],
        "seed": state["run"]["seed"], "hyperparameters": state["train_config"],
        **({"init_from": state["run"]["init_from"]} if state["run"].get("init_from") else {}),
        "epochs_run": len(hist), "best_epoch": best + 1,
        "exported_epoch": best_row.get("epoch"),
        "train_loss": best_row.get("loss"), "valid_loss": best_row.get("val_loss"),
        "final_train_loss": hist[-1]["loss"] if hist else None,
        "final_valid_loss": hist[-1]["val_loss"] if hist else None,
        "loss": "mse on normalized features" if state["model"]["kind"] == "paper"
        else "cross-entropy per token (nats)",
        "stop_reason": state.get("stop_reason"),
        "train_seconds": round(float(state["elapsed_seconds"]), 1),
        "musgen_version": state.get("musgen_version", __version__),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return training
