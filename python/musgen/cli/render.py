"""``musgen render``: MIDI files to audio (WAV, FLAC, Ogg, MP3) with FluidSynth and a SoundFont."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._inputs import midi_jobs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="IN",
                   help="MIDI file(s), or folder(s) rendered file by file (subfolders kept)")
    p.add_argument("-o", "--output", required=True,
                   help="OUT.wav / .flac / .ogg / .mp3 for one MIDI file, else a folder")
    p.add_argument("--format", default="wav", choices=["wav", "flac", "ogg", "mp3"],
                   help="audio format of the files written into a folder (default wav)")
    add_synth_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_synth_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared with ``musgen generate --render``."""
    from ..render import DEFAULT_SAMPLE_RATE, DEFAULT_TAIL

    p.add_argument("--soundfont", default=None,
                   help="SoundFont .sf2/.sf3 (default: MUSGEN_SOUNDFONT, else the system's "
                        "General MIDI SoundFont, e.g. Debian's fluid-soundfont-gm)")
    p.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE,
                   help=f"frames per second (default {DEFAULT_SAMPLE_RATE})")
    p.add_argument("--tail", type=float, default=DEFAULT_TAIL,
                   help=f"seconds of release and reverb after the last note, at most (default "
                        f"{DEFAULT_TAIL})")
    p.add_argument("--no-normalize", action="store_true",
                   help="keep FluidSynth's levels instead of scaling the peak to -1 dBFS")


def synth_options(args: argparse.Namespace) -> dict:
    return {"soundfont": args.soundfont, "sample_rate": args.sample_rate, "tail": args.tail,
            "normalize": not args.no_normalize}


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ValueError, OSError) as exc:  # bad suffix or option, unwritable output: one line
        raise SystemExit(f"musgen render: error: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    from .._progress import progress_bar
    from ..render import audio_format_for, render_file, render_files

    out = Path(args.output)
    options = synth_options(args)
    single = len(args.inputs) == 1 and Path(args.inputs[0]).is_file()
    if single and out.suffix:
        audio_format_for(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        audio = render_file(args.inputs[0], out, **options)
        if not args.quiet:
            print(f"wrote {out} ({audio.duration_seconds:.1f} s, {audio.rms_dbfs():.1f} dBFS RMS)")
        return 0
    jobs = midi_jobs(args.inputs, args.format, "render")
    out.mkdir(parents=True, exist_ok=True)
    with progress_bar(len(jobs), "rendering", unit="file", quiet=args.quiet) as bar:
        result = render_files(jobs, out, format=args.format, progress=bar.update,
                              on_error="skip", **options)
    for path, reason in result.errors:
        print(f"musgen render: skipped {path}: {reason}", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {len(result.written)} file(s) to {out}"
              + (f", skipped {len(result.errors)}" if result.errors else ""))
    return 1 if result.errors else 0
