"""The ``musgen`` command line: subcommands mirror the Python API.

Each subcommand lives in ``musgen/cli/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``; it is imported only when used, so ``musgen info`` never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from importlib.util import find_spec

from ..errors import MusgenError

#: (subcommand, module, one-line help)
COMMANDS = [
    ("prepare", "musgen.cli.prepare", "read a MIDI corpus and write a tokenized dataset"),
    ("train", "musgen.cli.train", "train an LSTM on a dataset and export a model directory"),
    ("export", "musgen.cli.export", "export a model directory from a training checkpoint"),
    ("evaluate", "musgen.cli.evaluate",
     "held-out NLL of a model; with --music, the music it generates against the data"),
    ("metrics", "musgen.cli.metrics",
     "musical features of any MIDI files against reference files, copies, a report"),
    ("generate", "musgen.cli.generate", "generate MIDI files with a model (default: shipped)"),
    ("render", "musgen.cli.render", "render MIDI files to audio (WAV, FLAC, Ogg, MP3)"),
    ("plot", "musgen.cli.plot", "draw piano rolls of MIDI files (PNG, SVG, PDF)"),
    ("serve", "musgen.cli.serve", "serve a web page to generate, see and hear music"),
    ("info", "musgen.cli.info", "show the version, backends and what is available"),
]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="musgen",
        description="Train LSTM music generators on MIDI collections and generate new music.")
    parser.add_argument("--version", action="version", version=f"musgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module, help_text in COMMANDS:
        if find_spec(module) is None:  # a pure-Python subset install may leave one out
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # the command as typed, for reports that say how they were made
    args._argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(import_module(args._module).run(args) or 0)
    except MusgenError as exc:
        print(f"musgen {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"musgen {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
