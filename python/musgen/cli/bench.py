"""``musgen bench [MODEL]``: how fast a model generates on this device, every backend."""

from __future__ import annotations

import argparse
import json
import sys

from . import _args


def _backends(text: str) -> list:
    names = [b.strip() for b in text.split(",") if b.strip()]
    bad = [b for b in names if b not in ("cpp", "cuda", "python")]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated list of cpp, "
                                         "cuda, python")
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None, type=_args.model_ref,
                   help="model directory or shipped model name (default: the default model "
                        "shipped with musgen)")
    p.add_argument("--backends", type=_backends, default=None, metavar="B,B",
                   help="backends to time (default: every one this install has)")
    p.add_argument("--threads", type=_args.positive_int, default=None,
                   help="CPU threads (default: all cores)")
    p.add_argument("--quick", action="store_true", help="short runs (rough figures)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the figures as JSON ('-' for standard output)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from ..benchmark import format_report, run_benchmark

    def report(line: str) -> None:
        if not args.quiet:
            print(f"  {line}", file=sys.stderr, flush=True)

    result = run_benchmark(args.model, backends=args.backends, threads=args.threads,
                           quick=args.quick, report=report)
    print(format_report(result))
    if args.json:
        text = json.dumps(result, indent=2, default=str) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            from pathlib import Path

            from .._io import atomic_write_bytes

            atomic_write_bytes(Path(args.json), text.encode("utf-8"))
    return 0
