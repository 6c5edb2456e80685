"""``musgen generate``: sample MIDI files from a model directory (default: the shipped model)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import SynthesizerUnavailableError
from ..generation import DEFAULT_LENGTH, DEFAULT_MAX_PRIMER_TOKENS, ENDINGS
from . import _args


def _checked(parse, name: str):
    """An argument type that runs ``parse`` and turns its ValueError into a usage error."""
    def convert(text):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    convert.__name__ = name
    return convert


def _key(text):
    from ..engine.constraints import parse_key

    parse_key(text)
    return text


def _pitch_range(text):
    from ..engine.constraints import parse_pitch_range

    return parse_pitch_range(text)


def _strictness(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a number from 0 to 1")
    return value


def _beats(text):
    from ..generation import MAX_GRACE_BEATS

    value = float(text)
    if not 0 <= value <= MAX_GRACE_BEATS:
        raise ValueError(f"expected beats from 0 to {MAX_GRACE_BEATS}")
    return value


def _primer_cap(text):
    value = int(text)
    if value != 0 and value < 2:
        raise ValueError("expected a number of tokens >= 2 (0: no limit)")
    return value or None


def _instruments(text):
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError("expected instruments separated by commas, e.g. 0,40,drums")
    return [int(t) if t.isdigit() else t for t in items]


def _output(text: str) -> str:
    """OUT.mid or a folder: an existing file is accepted only as a .mid to replace."""
    path = Path(text)
    if path.suffix.lower() in (".mid", ".midi"):
        return _args.output_file(text) if path.parent.is_dir() else _args.output_dir(text)
    return _args.output_dir(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None, type=_args.model_ref,
                   help="model directory or shipped model name (default: the default model "
                        "shipped with musgen; `musgen info` lists the shipped ones)")
    p.add_argument("--model", dest="model_option", metavar="MODEL", default=None,
                   type=_args.model_ref, help="the same as the MODEL argument")
    p.add_argument("-o", "--output", required=True, type=_output,
                   help="OUT.mid (one piece; with --n > 1: OUT-000.mid, OUT-001.mid, ...) or a "
                        "folder (generated-000.mid, ...)")
    p.add_argument("--n", type=_args.positive_int, default=1, help="number of pieces (default 1)")
    p.add_argument("--length", type=_args.length, default=None,
                   help=f"length of each piece, at least: N tokens, N notes or N beats "
                        f"(default {DEFAULT_LENGTH!r})")
    p.add_argument("--temperature", type=_args.finite_non_negative_float, default=1.0,
                   help="0 = greedy (default 1.0)")
    p.add_argument("--top-k", type=_args.non_negative_int, default=None,
                   help="keep the k most likely tokens (0 = off)")
    p.add_argument("--top-p", type=_args.probability, default=None,
                   help="nucleus sampling mass in (0, 1]")
    p.add_argument("--seed", type=_args.seed, default=None,
                   help="random seed (same seed, same pieces on every backend; printed, and "
                        "stored in each file, when drawn)")
    p.add_argument("--primer", type=_args.existing_file, default=None,
                   help="MIDI file to continue")
    p.add_argument("--max-primer-tokens", type=_checked(_primer_cap, "tokens"),
                   default=DEFAULT_MAX_PRIMER_TOKENS,
                   help=f"a longer primer is continued from its last tokens (default "
                        f"{DEFAULT_MAX_PRIMER_TOKENS}; 0: no limit)")
    p.add_argument("--backend", default=None, choices=["auto", "cpp", "python", "cuda"],
                   help="engine backend (default: MUSGEN_BACKEND or auto)")
    p.add_argument("--threads", type=_args.positive_int, default=None,
                   help="CPU threads (default: all cores)")
    p.add_argument("--precision", default="float32", choices=["float32", "float16"],
                   help="weight storage of the CPU engine: float16 halves the bytes read per "
                        "token (faster, logits change by ~1e-3; default float32)")
    _constraint_arguments(p)
    p.add_argument("--render", nargs="?", const="wav", default=None,
                   choices=["wav", "flac", "ogg", "mp3"], metavar="FORMAT",
                   help="also write each piece's audio beside its MIDI file (FluidSynth; "
                        "FORMAT wav (default), flac, ogg or mp3)")
    p.add_argument("--plot", action="store_true",
                   help="also draw each piece's piano roll beside its MIDI file (song.png)")
    from .render import add_synth_arguments

    add_synth_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")


def _constraint_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("length and ending")
    g.add_argument("--allow-early-end", action="store_true",
                   help="let the model end a piece before --length (by default it cannot)")
    g.add_argument("--ending", choices=ENDINGS, default="auto",
                   help="after --length: close at the next beat or bar line (auto: bar for "
                        "models with bars, else beat), 'model': let the model end within "
                        "--grace beats first, 'none': stop where the tokens may end")
    g.add_argument("--grace", type=_checked(_beats, "beats"), default=4.0,
                   help="beats the model may take to end a piece itself (--ending model; "
                        "default 4)")
    g = p.add_argument_group("musical constraints")
    g.add_argument("--key", type=_checked(_key, "key"), default=None,
                   help="key or scale, e.g. 'D minor', 'Bb', 'F# dorian'")
    g.add_argument("--scale-strictness", type=_checked(_strictness, "strictness"), default=None,
                   help="with --key: 1 (default) allows only pitches of the scale, lower "
                        "values make other pitches less likely instead")
    g.add_argument("--pitch-range", type=_checked(_pitch_range, "range"), default=None,
                   help="lowest and highest pitch, e.g. 48-84 or C3-C6")
    g.add_argument("--max-voices", type=_args.voices, default="auto",
                   help="most notes sounding at once (1..32); 'auto' (default): the model's "
                        "default, where it has one; 'off'")
    g.add_argument("--min-voices", type=_args.voices, default="auto",
                   help="fewest notes sounding from the first note on (1..32): time waits "
                        "for the notes; 'auto' (default): the model's default; 'off'")
    g.add_argument("--max-rest", type=_args.rest, default="auto", metavar="BEATS",
                   help="longest rest (no note sounding) after the first note, in beats; "
                        "'auto' (default): the rest the model's corpus keeps to, where the "
                        "model records it; 'off': none")
    g.add_argument("--density", type=_args.positive_float, default=None,
                   help="target notes per beat")
    g.add_argument("--style", default=None, help="style label (models with conditions)")
    g.add_argument("--bpm", type=_args.positive_float, default=None,
                   help="tempo in beats per minute (models with tempo tokens)")
    g.add_argument("--instruments", type=_checked(_instruments, "instruments"), default=None,
                   help="the exact parts, e.g. 0,40,drums (GM programs or names; models with "
                        "instruments)")
    g.add_argument("--allowed-instruments", type=_checked(_instruments, "instruments"),
                   default=None, help="instruments the model may choose its parts from")


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


def _write_all(scores, paths, texts, threads=None) -> None:
    """Write every piece with its text event (C++ threads, one atomic file each); folders are
    created only now, after generation succeeded, and the ones created here are removed again
    if writing fails (no empty folder left behind)."""
    from .. import midi

    folder = paths[0].parent
    created = []
    probe = folder
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        midi.write_many(scores, paths, texts=texts, threads=threads)
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


def _report(result, paths, quiet: bool) -> None:
    """The seed (drawn or given), then the pieces that ended differently from what was asked."""
    seed = result.seed
    if not quiet:
        shown = seed if not isinstance(seed, list) else ",".join(str(s) for s in seed)
        print(f"seed {shown}" + (f" (drawn: --seed {shown} makes these pieces again)"
                                 if result.seed_drawn else ""))
    if result.primer_note:
        print(f"musgen generate: warning: {result.primer_note}", file=sys.stderr)
    for piece in result.shortfalls():
        why = ("the model ended it early (--allow-early-end)" if piece.ended == "early"
               else "cut by the token cap before its ending")
        print(f"musgen generate: {paths[piece.index]}: {piece.beats:g} beats, {piece.notes} "
              f"notes, asked {result.asked}: {why}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    import warnings

    from .._progress import progress_bar
    from ..errors import GenerationWarning
    from ..generation import _load_model, generate_with_report, parse_length

    if args.render:
        from ..render import audio_status

        ok, why = audio_status(args.soundfont)  # before the generation work, not after
        if not ok:
            raise SynthesizerUnavailableError(why)
    length = args.length if args.length is not None else DEFAULT_LENGTH
    amount, unit = parse_length(length)
    paths = output_paths(args.output, args.n)
    if args.model is not None and args.model_option is not None:
        raise ValueError("give the model once, as MODEL or --model")
    # Loaded before the progress bar opens: a damaged model is one error line, no bar.
    engine = _load_model(args.model if args.model is not None else args.model_option,
                         args.backend, args.precision)
    total = args.n * amount if unit == "tokens" else None
    with progress_bar(total, "generating", unit="tok", quiet=args.quiet) as bar, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", GenerationWarning)  # reported by _report, once
        result = generate_with_report(
            engine, n=args.n, length=length, temperature=args.temperature, top_k=args.top_k,
            top_p=args.top_p, seed=args.seed, primer=args.primer, backend=args.backend,
            threads=args.threads, progress=bar.update, precision=args.precision,
            allow_early_end=args.allow_early_end, ending=args.ending, grace=args.grace,
            key=args.key, scale_strictness=args.scale_strictness, pitch_range=args.pitch_range,
            max_voices=args.max_voices, min_voices=args.min_voices, max_rest=args.max_rest,
            density=args.density,
            style=args.style, bpm=args.bpm, instruments=args.instruments,
            allowed_instruments=args.allowed_instruments, max_primer_tokens=args.max_primer_tokens)
    scores = result.scores
    _write_all(scores, paths, [result.text(i) for i in range(len(scores))],
               args.threads)
    _report(result, paths, args.quiet)
    if args.plot:
        _plot(scores, paths, args)
    if args.render:
        _render(scores, paths, args)
    if not args.quiet:
        notes = sum(len(s.notes) for s in scores)
        print(f"wrote {len(paths)} file(s), {notes} notes: {paths[0]}"
              + (f" ... {paths[-1]}" if len(paths) > 1 else ""))
    return 0
