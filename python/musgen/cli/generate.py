"""``musgen generate``: sample MIDI files from a model directory (default: the shipped model)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SynthesizerUnavailableError
from ..generation import DEFAULT_LENGTH


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="model directory (default: the model shipped with musgen)")
    p.add_argument("-o", "--output", required=True,
                   help="OUT.mid (one piece; with --n > 1: OUT-000.mid, OUT-001.mid, ...) or a "
                        "folder (generated-000.mid, ...)")
    p.add_argument("--n", type=int, default=1, help="number of pieces (default 1)")
    p.add_argument("--length", default=DEFAULT_LENGTH,
                   help=f"length of each piece: N tokens, N notes or N beats (default "
                        f"{DEFAULT_LENGTH!r})")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default 1.0)")
    p.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass in (0, 1]")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (same seed, same pieces on every backend)")
    p.add_argument("--primer", default=None, help="MIDI file to continue")
    p.add_argument("--backend", default=None, choices=["auto", "cpp", "python", "cuda"],
                   help="engine backend (default: MUSGEN_BACKEND or auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")


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


def run(args: argparse.Namespace) -> int:
    from .. import midi
    from .._progress import progress_bar
    from ..generation import generate, parse_length

    if args.n < 1:
        raise SystemExit("musgen generate: error: --n must be >= 1")
    if args.render:
        from ..render import audio_status

        ok, why = audio_status(args.soundfont)  # before the generation work, not after
        if not ok:
            raise SynthesizerUnavailableError(why)
    amount, unit = parse_length(args.length)
    paths = output_paths(args.output, args.n)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    total = args.n * amount if unit == "tokens" else None
    with progress_bar(total, "generating", unit="tok", quiet=args.quiet) as bar:
        scores = generate(args.model, n=args.n, length=args.length,
                          temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                          seed=args.seed, primer=args.primer, backend=args.backend,
                          threads=args.threads, progress=bar.update,
                          precision=args.precision)
    for score, path in zip(scores, paths):
        midi.write(score, path)
    if args.plot:
        _plot(scores, paths, args)
    if args.render:
        _render(scores, paths, args)
    if not args.quiet:
        notes = sum(len(s.notes) for s in scores)
        print(f"wrote {len(paths)} file(s), {notes} notes: {paths[0]}"
              + (f" ... {paths[-1]}" if len(paths) > 1 else ""))
    return 0
