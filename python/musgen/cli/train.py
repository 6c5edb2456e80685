"""``musgen train DATASET -o MODEL_DIR``: train an LSTM on a prepared dataset, checkpoint every
epoch, and export the best epoch as a model directory."""

from __future__ import annotations

import argparse

from . import _args


def _window(text: str) -> int:
    value = _args.positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least 2 tokens (an LSTM "
                                         "window learns from a sequence)")
    return value


def _minutes(text: str):
    if text == "preset":  # the default (argparse passes string defaults through `type`)
        return text
    if text.lower() in ("none", "0", "inf"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected minutes or 'none'") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of minutes")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", metavar="DATASET", type=_args.existing_dir,
                   help="dataset folder written by musgen prepare")
    p.add_argument("-o", "--output", required=True, metavar="MODEL_DIR", type=_args.output_dir,
                   help="model directory to write (checkpoints go to MODEL_DIR/checkpoints)")
    p.add_argument("--preset", choices=["default", "paper"], default="default",
                   help="default: token LSTM language model; paper: the seed paper's "
                        "regression model on (pitch, velocity, time delta)")
    p.add_argument("--epochs", type=_args.positive_int, default=None,
                   help="most epochs (default 60; paper preset 30)")
    p.add_argument("--batch-size", type=_args.positive_int, default=None,
                   help="windows per batch (default: 64, smaller when the time budget affords "
                        "too few steps; see 'model sized to the corpus' in the log)")
    p.add_argument("--window", type=_window, default=None,
                   help="tokens per window, at least 2 (128)")
    p.add_argument("--stride", type=_args.positive_int, default=None,
                   help="tokens between windows (64)")
    p.add_argument("--units", type=_args.positive_int, default=None,
                   help="LSTM units per layer (default: 256, fewer on a very small corpus)")
    p.add_argument("--layers", type=_args.positive_int, default=None, help="LSTM layers (2)")
    p.add_argument("--embedding-dim", type=_args.positive_int, default=None,
                   help="token embedding size (default: 64, smaller on a very small corpus)")
    p.add_argument("--dropout", type=_args.unit_interval, default=None,
                   help="dropout between layers, in [0, 1) (default: 0.2, up to 0.3 when the "
                        "model has many parameters per training token and the budget lets "
                        "it overfit)")
    p.add_argument("--learning-rate", type=_args.positive_float, default=None,
                   help="Adam learning rate, > 0 (4e-3)")
    p.add_argument("--weight-decay", type=_args.finite_non_negative_float, default=None,
                   help="decoupled (AdamW) weight decay per step, scaled by the learning rate (0)")
    p.add_argument("--validation-batch-size", type=_args.positive_int, default=None,
                   help="windows per validation batch (512)")
    p.add_argument("--transpose", type=_args.int_range(0, 127), default=None,
                   help="random transposition by up to +-N semitones (0); codec version 2 "
                        "moves the key condition with the notes")
    p.add_argument("--key-normalize", action="store_true", default=None,
                   help="codec version 2: train on every piece moved to C major or A minor; "
                        "generate --key reaches the other keys by transposition (excludes "
                        "--transpose)")
    p.add_argument("--tempo-shift", type=_args.int_range(0, 255), default=None,
                   help="codec version 2: random tempo change by up to +-N tempo bins of about "
                        "6%% each (0)")
    p.add_argument("--header-prefix", action=argparse.BooleanOptionalAction, default=None,
                   help="codec version 2: windows inside a piece start with its header of "
                        "conditions, so the model learns to follow key, style and instruments "
                        "past the first window (default: on for version-2 datasets)")
    p.add_argument("--patience", type=_args.positive_int, default=None,
                   help="stop after this many epochs without validation improvement (6)")
    p.add_argument("--max-minutes", type=_minutes, default="preset",
                   help="time budget: start no epoch that would end past it (25; 'none')")
    p.add_argument("--init-from", metavar="MODEL", type=_args.model_ref, default=None,
                   help="start from this model's weights (same codec and architecture; a new "
                        "optimizer): continue a model with other settings")
    p.add_argument("--seed", type=_args.seed, default=0,
                   help="seed of weights, dropout and data order")
    p.add_argument("--resume", action="store_true",
                   help="continue from the last complete checkpoint in MODEL_DIR/checkpoints "
                        "(an error when there is none)")
    p.add_argument("--tensorboard", metavar="LOGDIR", default=None, type=_args.output_dir,
                   help="write TensorBoard logs here")
    p.add_argument("--strategy", choices=["default", "mirrored", "multiworker"],
                   default="default", help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..training import train

    out = train(args.dataset, args.output, preset=args.preset, epochs=args.epochs,
                batch_size=args.batch_size, window=args.window, stride=args.stride,
                units=args.units, layers=args.layers, embedding_dim=args.embedding_dim,
                dropout=args.dropout, learning_rate=args.learning_rate, seed=args.seed,
                resume=args.resume, patience=args.patience, tensorboard=args.tensorboard,
                strategy=args.strategy, quiet=args.quiet, max_minutes=args.max_minutes,
                transpose=args.transpose, tempo_shift=args.tempo_shift,
                validation_batch_size=args.validation_batch_size,
                weight_decay=args.weight_decay, init_from=args.init_from,
                header_prefix=args.header_prefix, key_normalize=args.key_normalize)
    if not args.quiet:
        print(f"model directory: {out}")
    return 0
