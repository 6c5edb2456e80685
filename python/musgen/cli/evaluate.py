"""``musgen evaluate MODEL DATASET``: held-out NLL (per token, per note, per token type),
perplexity and accuracy of a model, next to an n-gram and (optionally) the paper preset."""

from __future__ import annotations

import argparse
import json

from . import _args


def _json_out(text: str) -> str:
    return text if text == "-" else _args.output_file(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", type=_args.existing_dir,
                   help="model directory (kind lstm_lm)")
    p.add_argument("dataset", metavar="DATASET", type=_args.existing_dir,
                   help="dataset folder written by musgen prepare")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"],
                   help="split to score (default test)")
    p.add_argument("--json", metavar="OUT", default=None, type=_json_out,
                   help="also write the full result as JSON to OUT ('-' for stdout only)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the n-gram (and paper) baselines")
    p.add_argument("--paper", metavar="PAPER_MODEL", default=None, type=_args.existing_dir,
                   help="a paper-preset model directory trained on the same dataset")
    p.add_argument("--max-order", type=_args.int_range(1, 8), default=5,
                   help="highest n-gram order tried, 1 to 8 (5)")
    p.add_argument("--backend", default=None, choices=["auto", "cpp", "cuda", "python"],
                   help="engine implementation (default: $MUSGEN_BACKEND or auto)")


def run(args: argparse.Namespace) -> int:
    from ..eval import evaluate, format_report, write_json

    result = evaluate(args.model, args.dataset, split=args.split, backend=args.backend,
                      baselines=not args.no_baselines, paper_model=args.paper,
                      max_order=args.max_order)
    if args.json == "-":
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    print(format_report(result))
    if args.json:
        write_json(result, args.json)
    return 0
