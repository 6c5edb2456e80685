"""``musgen serve``: the web page to generate music, see its piano rolls and listen to it."""

from __future__ import annotations

import argparse
import ipaddress
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..web.controls import Limits

    d = Limits()
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--models", default=None, metavar="DIR",
                   help="a folder of model folders (or one model folder) offered besides the "
                        "shipped model")
    p.add_argument("--soundfont", default=None,
                   help="SoundFont for audio (default: MUSGEN_SOUNDFONT or the system's)")
    p.add_argument("--backend", default=None, choices=["auto", "cpp", "python", "cuda"],
                   help="engine backend (default: MUSGEN_BACKEND or auto)")
    p.add_argument("--max-pieces", type=int, default=d.max_pieces,
                   help=f"pieces per request (default {d.max_pieces})")
    p.add_argument("--max-beats", type=int, default=d.max_beats,
                   help=f"length per piece in beats (default {d.max_beats}; notes and tokens "
                        "scale with it)")
    p.add_argument("--max-upload-kb", type=int, default=d.max_upload_bytes // 1024,
                   help=f"largest primer MIDI file in KiB (default {d.max_upload_bytes // 1024})")
    p.add_argument("--quiet", action="store_true", help="no access log")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def limits_from(args: argparse.Namespace):
    from ..web.controls import Limits

    d = Limits()
    for name in ("max_pieces", "max_beats", "max_upload_kb"):
        if getattr(args, name) < 1:
            raise SystemExit(f"musgen serve: error: --{name.replace('_', '-')} must be >= 1")
    scale = args.max_beats / d.max_beats
    return Limits(max_upload_bytes=args.max_upload_kb * 1024, max_pieces=args.max_pieces,
                  max_beats=args.max_beats, max_notes=max(1, int(d.max_notes * scale)),
                  max_tokens=max(1, int(d.max_tokens * scale)))


def run(args: argparse.Namespace) -> int:
    from ..web import web_status

    ok, why = web_status()
    if not ok:
        raise SystemExit(f"musgen serve: error: {why}")
    import uvicorn

    from ..web import create_app

    backend = None if args.backend == "auto" else args.backend
    app = create_app(args.models, limits=limits_from(args), soundfont=args.soundfont,
                     backend=backend)
    service = app.state.service
    if not service.audio_ok:
        print(f"musgen serve: no audio: {service.audio_why}", file=sys.stderr)
    if not _is_loopback(args.host):
        print(f"musgen serve: warning: listening on {args.host}: anyone who can reach this "
              "machine can use the page and its CPU", file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"musgen serve: http://{shown}:{args.port}/ (models: "
          f"{', '.join(service.catalog.names())}; Ctrl+C to stop)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                access_log=not args.quiet)
    return 0
