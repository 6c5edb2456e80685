"""``musgen metrics GENERATED --reference REF [--train TRAIN]``: musical features of any MIDI
files (folders, files or lists of paths) compared with reference files, copies from training
files, and a report (``--report DIR``) and JSON (``--json F``)."""

from __future__ import annotations

import argparse
import json
import shlex

from ..errors import MusgenError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("generated", nargs="+", metavar="GENERATED",
                   help="the pieces to score: folders, MIDI files or .txt lists of paths")
    p.add_argument("--reference", nargs="+", required=True, metavar="REF",
                   help="the music to compare with (folders, MIDI files or lists)")
    p.add_argument("--train", nargs="+", default=None, metavar="TRAIN",
                   help="the training set, for memorization (copy rates, longest copied run)")
    p.add_argument("--length", default=None,
                   help="the length the pieces were asked for, e.g. '64 beats' (for ended_early)")
    p.add_argument("--intervals", action="store_true",
                   help="also measure transposition-invariant copies (pitch intervals)")
    p.add_argument("--json", metavar="F", default=None,
                   help="write the result as JSON to F ('-' for stdout only)")
    p.add_argument("--report", metavar="DIR", default=None,
                   help="write report.html (self-contained), report.md, PNGs and metrics.json")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out MIDI files that cannot be read (else they are an error)")
    p.add_argument("--seed", type=int, default=0, help="seed of the distance subsampling (0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except MusgenError:
        raise  # musgen's own errors: one line from musgen.cli.main
    except (ValueError, TypeError) as exc:  # bad arguments and bad files: one line, no traceback
        raise SystemExit(f"musgen metrics: error: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    from ..eval.music import score_files

    if args.length is not None:
        from ..generation import parse_length

        parse_length(args.length)  # a bad length fails before any file is read
    command = "musgen " + shlex.join(getattr(args, "_argv", []))
    evaluation = score_files(args.generated, args.reference, train=args.train,
                             length=args.length, intervals=args.intervals,
                             skip_bad=args.skip_bad, seed=args.seed,
                             quiet=args.quiet or args.json == "-",
                             settings={"command": command})
    return show_music_evaluation(evaluation, args)


def show_music_evaluation(evaluation, args: argparse.Namespace) -> int:
    """Print a musical evaluation (its text report, or its JSON with ``--json -``), and write
    ``--json FILE`` and ``--report DIR`` when asked (``musgen metrics`` and ``musgen evaluate
    --music``)."""
    from .._io import atomic_write_bytes
    from ..eval.report import text_report, write_report

    text = json.dumps(evaluation.result, indent=2, sort_keys=True)
    if args.json == "-":
        print(text)
    else:
        print(text_report(evaluation))
        if args.json:
            atomic_write_bytes(args.json, (text + "\n").encode())
    if args.report:
        written = write_report(evaluation, args.report)
        if args.json != "-" and not args.quiet:
            print(f"report: {written['html']}")
    return 0
