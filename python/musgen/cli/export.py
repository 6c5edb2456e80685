"""``musgen export CHECKPOINT -o MODEL_DIR``: write a model directory from a training checkpoint
(a model directory with ``checkpoints/``, a checkpoints folder, or one ``.npz`` checkpoint)."""

from __future__ import annotations

import argparse

from . import _args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", type=_args.existing_path,
                   help="MODEL_DIR (exports its best epoch), MODEL_DIR/checkpoints, or a "
                        "checkpoints/epoch-NNNN.npz file")
    p.add_argument("-o", "--output", required=True, metavar="MODEL_DIR", type=_args.output_dir,
                   help="model directory to write (config.json + weights.safetensors)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing")


def run(args: argparse.Namespace) -> int:
    from ..training import export

    out = export(args.checkpoint, args.output)
    if not args.quiet:
        print(f"model directory: {out}")
    return 0
