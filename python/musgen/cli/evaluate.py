"""``musgen evaluate MODEL DATASET``: held-out NLL (per token, per note, per token type),
perplexity and accuracy of a model, next to an n-gram and (optionally) the paper preset; with
``--music``, the pieces it generates measured against the split, with the n-gram's pieces and
training pieces as baseline rows, copies from the training split, and a report."""

from __future__ import annotations

import argparse
import json
import shlex

from ..errors import MusgenError

from . import _args


def _json_out(text: str) -> str:
    return text if text == "-" else _args.output_file(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", type=_args.model_ref,
                   help="model directory (kind lstm_lm) or shipped model name")
    p.add_argument("dataset", metavar="DATASET", type=_args.existing_dir,
                   help="dataset folder written by musgen prepare")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"],
                   help="split to score (default test)")
    p.add_argument("--json", metavar="OUT", default=None, type=_json_out,
                   help="also write the full result as JSON to OUT ('-' for stdout only)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the n-gram (and paper) baselines")
    p.add_argument("--paper", metavar="PAPER_MODEL", default=None, type=_args.model_ref,
                   help="a paper-preset model directory trained on the same dataset")
    p.add_argument("--max-order", type=_args.int_range(1, 8), default=5,
                   help="highest n-gram order tried, 1 to 8 (5)")
    p.add_argument("--backend", default=None, choices=["auto", "cpp", "cuda", "python"],
                   help="engine implementation (default: $MUSGEN_BACKEND or auto)")
    music = p.add_argument_group("music (--music)")
    music.add_argument("--music", action="store_true",
                       help="generate pieces and measure their music against the split")
    music.add_argument("--n", type=int, default=200, help="pieces to generate (200)")
    music.add_argument("--length", default="64 beats",
                       help="length of each piece: N beats, N notes or N tokens ('64 beats')")
    music.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (1)")
    music.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens")
    music.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass")
    music.add_argument("--seed", type=int, default=0,
                       help="seed of the model's and the n-gram's sampling (0: reproducible)")
    music.add_argument("--intervals", action="store_true",
                       help="also measure transposition-invariant copies")
    music.add_argument("--report", metavar="DIR", default=None,
                       help="write report.html, report.md, PNGs and metrics.json to DIR")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    if args.music:
        try:
            return _run_music(args)
        except MusgenError:
            raise  # musgen's own errors: one line from musgen.cli.main
        except (ValueError, TypeError) as exc:  # bad arguments: one line, no traceback
            raise SystemExit(f"musgen evaluate: error: {exc}") from None
    if args.report:
        raise SystemExit("musgen evaluate: error: --report needs --music")
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


def _run_music(args: argparse.Namespace) -> int:
    from ..eval.music import evaluate_music
    from ..generation import parse_length
    from .metrics import show_music_evaluation

    parse_length(args.length)  # a bad length fails before any work
    if args.n < 2:
        raise SystemExit("musgen evaluate: error: --n must be >= 2")
    evaluation = evaluate_music(
        args.model, args.dataset, split=args.split, n=args.n, length=args.length,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
        backend=args.backend, baselines=not args.no_baselines, intervals=args.intervals,
        max_order=args.max_order, quiet=args.quiet or args.json == "-",
        settings={"command": "musgen " + shlex.join(getattr(args, "_argv", []))})
    return show_music_evaluation(evaluation, args)
