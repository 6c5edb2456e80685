"""The ``musgen`` command line: subcommands mirror the Python API.

Each subcommand lives in ``musgen/cli/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``; it is imported only when used, so ``musgen info`` never loads TensorFlow.
Option values are checked while the arguments are parsed (the types of ``cli._args``).

Every error ends as one line on standard error, ``musgen COMMAND: error: ...``: exit status 2
for a usage error (a bad option value, a bad MUSGEN_BACKEND, an argument the API refused), 1 for
a failure (a damaged file, a missing model, a full disk...), 130 when interrupted. Only with
``MUSGEN_DEBUG=1`` does a traceback follow.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from importlib import import_module
from importlib.util import find_spec

from ..errors import MusgenError

#: Exit statuses.
EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``musgen train: error: argument --epochs: '0':
    expected a positive integer (1, 2, ...)`` and a pointer to ``--help``, exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        text = " ".join(str(message).split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see {self.prog} --help)\n")

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
    ("bench", "musgen.cli.bench", "time generation on this device (latency, tokens/s, "
                                  "real-time factor) for every backend"),
    ("info", "musgen.cli.info", "show the version, backends and what is available"),
]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="musgen",
        description="Train LSTM music generators on MIDI collections and generate new music.")
    parser.add_argument("--version", action="version", version=f"musgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module, help_text in COMMANDS:
        if find_spec(module) is None:  # a pure-Python subset install may leave one out
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        import_module(module).add_arguments(p)
    return parser


def _debug() -> bool:
    return os.environ.get("MUSGEN_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text or type(exc).__name__


def _check_environment(command: str) -> None:
    """MUSGEN_BACKEND is checked before any work (``info`` reports it instead)."""
    if command == "info":
        return
    from .._backend import requested

    requested(None)


def _report(command: str, exc: BaseException) -> int:
    """One line for ``exc`` and the exit status it stands for."""
    if isinstance(exc, (MusgenError, OSError, MemoryError)):
        status, what = EXIT_FAILURE, "error"
    elif isinstance(exc, (ValueError, TypeError)):  # an argument the API refused
        status, what = EXIT_USAGE, "error"
    else:
        status, what = EXIT_FAILURE, f"unexpected {type(exc).__name__}"
    hint = "" if status != EXIT_FAILURE or what == "error" else " (MUSGEN_DEBUG=1 shows where)"
    print(f"musgen {command}: {what}: {_one_line(exc)}{hint}", file=sys.stderr)
    return status


def _terminated(signum, frame):
    """SIGTERM unwinds like Ctrl-C, so staging folders and temporary files are removed."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (2), or --help / --version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    # the command as typed, for reports that say how they were made
    args._argv = list(sys.argv[1:] if argv is None else argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        _check_environment(args.command)
        return int(import_module(args._module).run(args) or 0)
    except KeyboardInterrupt:
        if _debug():
            raise
        print(f"musgen {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the command line never shows a traceback
        if _debug():
            raise
        return _report(args.command, exc)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
