"""``musgen generate``: sample MIDI files from a model directory (default: the shipped model)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SynthesizerUnavailableError
from ..generation import DEFAULT_LENGTH
from . import _args


def _output(text: str) -> str:
    """OUT.mid or a folder: an existing file is accepted only as a .mid to replace."""
    path = Path(text)
    if path.suffix.lower() in (".mid", ".midi"):
        return _args.output_file(text) if path.parent.is_dir() else _args.output_dir(text)
    return _args.output_dir(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None, type=_args.existing_dir,
                   help="model directory (default: the model shipped with musgen)")
    p.add_argument("-o", "--output", required=True, type=_output,
                   help="OUT.mid (one piece; with --n > 1: OUT-000.mid, OUT-001.mid, ...) or a "
                        "folder (generated-000.mid, ...)")
    p.add_argument("--n", type=_args.positive_int, default=1, help="number of pieces (default 1)")
    p.add_argument("--length", type=_args.length, default=None,
                   help=f"length of each piece: N tokens, N notes or N beats (default "
                        f"{DEFAULT_LENGTH!r})")
    p.add_argument("--temperature", type=_args.finite_non_negative_float, default=1.0,
                   help="0 = greedy (default 1.0)")
    p.add_argument("--top-k", type=_args.non_negative_int, default=None,
                   help="keep the k most likely tokens (0 = off)")
    p.add_argument("--top-p", type=_args.probability, default=None,
                   help="nucleus sampling mass in (0, 1]")
    p.add_argument("--seed", type=_args.seed, default=None,
                   help="random seed (same seed, same pieces on every backend)")
    p.add_argument("--primer", type=_args.existing_file, default=None,
                   help="MIDI file to continue")
    p.add_argument("--backend", default=None, choices=["auto", "cpp", "python", "cuda"],
                   help="engine backend (default: MUSGEN_BACKEND or auto)")
    p.add_argument("--threads", type=_args.positive_int, default=None,
                   help="CPU threads (default: all cores)")
    p.add_argument("--precision", default="float32", choices=["float32", "float16"],
                   help="weight storage of the CPU engine: float16 halves the bytes read per "
                        "token (faster, logits change by ~1e-3; default float32)")
    p.add_argument("--render", nargs="?", const="wav", default=None,
                   choices=["wav", "flac", "ogg", "mp3"], metavar="FORMAT",
                   help="also write each piece's audio beside its MIDI file (FluidSynth; "
                        "FORMAT wav (default), flac, ogg or mp3)")
    p.add_argument("--plot", action="store_true",
                   help="also draw each piece's piano roll beside its MIDI file (song.png)")
    from .render import add_synth_arguments

    add_synth_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")


def output_paths(output: str, n: int) -> list:
    """The file for each piece (see --output)."""
    out = Path(output)
    if out.suffix.lower() in (".mid", ".midi"):
        if n == 1:
            return [out]
        return [out.with_name(f"{out.stem}-{i:03d}{out.suffix}") for i in range(n)]
    return [out / f"generated-{i:03d}.mid" for i in range(n)]


def _plot(scores: list, paths: list, args: argparse.Namespace) -> None:
    """Each piece's piano roll beside its MIDI file (song.mid -> song.png)."""
    from .plot import save_plot

    for score, path in zip(scores, paths):
        save_plot(score, path.with_suffix(".png"), title=path.name, options={})


def _render(scores: list, paths: list, args: argparse.Namespace) -> None:
    """Each piece's audio beside its MIDI file (song.mid -> song.wav)."""
    from .._progress import progress_bar
    from ..render import render
    from .render import synth_options

    with progress_bar(len(scores), "rendering", unit="piece", quiet=args.quiet) as bar:
        for score, path in zip(scores, paths):
            render(score, **synth_options(args)).save(path.with_suffix(f".{args.render}"))
            bar.update(1)


def _write_all(scores, paths) -> None:
    """Write every piece; folders are created only now, after generation succeeded, and the
    ones created here are removed again if writing fails (no empty folder left behind)."""
    from .. import midi

    folder = paths[0].parent
    created = []
    probe = folder
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for score, path in zip(scores, paths):
            midi.write(score, path)
    except BaseException:
        for path in paths:
            if created:
                path.unlink(missing_ok=True)
        for made in created:  # innermost first
            try:
                made.rmdir()
            except OSError:
                break
        raise


def run(args: argparse.Namespace) -> int:
    from .._progress import progress_bar
    from ..generation import _load_model, generate, parse_length

    if args.render:
        from ..render import audio_status

        ok, why = audio_status(args.soundfont)  # before the generation work, not after
        if not ok:
            raise SynthesizerUnavailableError(why)
    length = args.length if args.length is not None else DEFAULT_LENGTH
    amount, unit = parse_length(length)
    paths = output_paths(args.output, args.n)
    # Loaded before the progress bar opens: a damaged model is one error line, no bar.
    engine = _load_model(args.model, args.backend, args.precision)
    total = args.n * amount if unit == "tokens" else None
    with progress_bar(total, "generating", unit="tok", quiet=args.quiet) as bar:
        scores = generate(engine, n=args.n, length=length,
                          temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                          seed=args.seed, primer=args.primer, backend=args.backend,
                          threads=args.threads, progress=bar.update,
                          precision=args.precision)
    _write_all(scores, paths)
    if args.plot:
        _plot(scores, paths, args)
    if args.render:
        _render(scores, paths, args)
    if not args.quiet:
        notes = sum(len(s.notes) for s in scores)
        print(f"wrote {len(paths)} file(s), {notes} notes: {paths[0]}"
              + (f" ... {paths[-1]}" if len(paths) > 1 else ""))
    return 0
