"""``musgen prepare CORPUS... -o DATASET``: read MIDI corpora and write a tokenized dataset."""

from __future__ import annotations

import argparse

from . import _args


def _split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected three numbers TRAIN,VALID,TEST "
                                         "such as 0.8,0.1,0.1")
    return parts  # type: ignore[return-value]


def _max_tokens(text: str) -> int:
    value = _args.positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least 2 (BOS and EOS)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpora", nargs="+", metavar="CORPUS", type=_args.existing_path,
                        help="folders searched for .mid/.midi/.rmi/.kar files (or single files); "
                             "files under train/valid/validation/test folders keep that split")
    parser.add_argument("-o", "--output", required=True, metavar="DATASET", type=_args.output_dir,
                        help="dataset folder to write (an earlier dataset there is replaced)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the split of files outside train/valid/test folders")
    parser.add_argument("--split", type=_split, default=(0.8, 0.1, 0.1), metavar="T,V,T",
                        help="train,valid,test ratios of the seeded split (default 0.8,0.1,0.1)")
    parser.add_argument("--threads", type=_args.positive_int, default=None,
                        help="reader and encoder threads (default: every core)")
    parser.add_argument("--steps-per-beat", type=_args.positive_int, default=None,
                        help="time grid of the codec (default: the codec's default)")
    parser.add_argument("--max-tokens", type=_max_tokens, default=None,
                        help="quarantine files that encode to more tokens (at least 2)")
    parser.add_argument("--min-notes", type=_args.positive_int, default=1,
                        help="quarantine files with fewer notes (default 1)")
    parser.add_argument("--codec-version", type=int, default=2, choices=[1, 2],
                        help="codec version of the tokens (default 2: parts and instruments, "
                             "tempo, bars, and the key/style/density/instrument conditions; "
                             "1: the first codec, one stream without them)")
    parser.add_argument("--label", action="append", default=None, metavar="NAME",
                        help="style label of the corpora (once for all, or once per corpus in "
                             "order; default: each corpus folder's name)")
    drums = parser.add_mutually_exclusive_group()
    drums.add_argument("--keep-drums", dest="keep_drums", action="store_true", default=None,
                       help="keep channel-10 percussion as DrumPitch tokens (the default of "
                            "codec version 2)")
    drums.add_argument("--drop-drums", dest="keep_drums", action="store_false",
                       help="drop channel-10 percussion (the default of codec version 1)")
    parser.add_argument("--paper-features", action="store_true",
                        help="also store the paper preset's note features (paper.npy); without "
                             "them, the paper preset computes them from the source files")
    parser.add_argument("--backend", default=None, choices=["auto", "cpp", "cuda", "python"],
                        help="reader/codec implementation (default: $MUSGEN_BACKEND or auto)")
    parser.add_argument("--fsync", action="store_true",
                        help="flush the dataset to the disk before it replaces the output (it "
                             "then survives a power cut)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar and no summary")


def run(args: argparse.Namespace) -> int:
    from .. import codec
    from ..data import format_summary, prepare

    overrides = {"version": args.codec_version}
    if args.steps_per_beat is not None:
        overrides["steps_per_beat"] = args.steps_per_beat
    if args.keep_drums is not None:
        overrides["keep_drums"] = args.keep_drums
    config = codec.default_config(**overrides)
    summary = prepare(args.corpora, args.output, config=config, seed=args.seed, split=args.split,
                      threads=args.threads, max_tokens=args.max_tokens,
                      min_notes=args.min_notes, quiet=args.quiet,
                      backend=args.backend, labels=args.label,
                      paper_features=args.paper_features, fsync=args.fsync)
    if not args.quiet:
        print(format_summary(summary))
    return 0
