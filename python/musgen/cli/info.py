"""``musgen info``: version, backends available (and why not), threads, environment and the
shipped models; ``musgen info --model NAME`` prints one model's card."""

from __future__ import annotations

import json
import os
import platform


def add_arguments(p) -> None:
    from . import _args

    p.add_argument("--json", action="store_true", help="print as JSON")
    p.add_argument("--model", metavar="MODEL", default=None, type=_args.model_ref,
                   help="print this model's card (a shipped model's name or a model directory; "
                        "with --json: its entry and card as JSON)")


def _size(n: int) -> str:
    return f"{n / 2 ** 20:.1f} MiB" if n >= 2 ** 20 else f"{n / 2 ** 10:.0f} KiB"


def _model_lines(models: list) -> list:
    """One line per shipped model: name, codec version, parameters, size and card title."""
    if not models:
        return ["shipped models: none installed"]
    lines = ["shipped models (musgen generate --model NAME; musgen info --model NAME for the "
             "card):"]
    for m in models:
        name = m["name"] + (" (default)" if m["default"] else "")
        lines.append(f"  {name:<20} codec v{m['codec_version']}, vocabulary {m['vocab_size']}, "
                     f"{m['parameters'] / 1e6:.2f} M parameters, {_size(m['size_bytes'])}: "
                     f"{m['summary'] or '(no card)'}")
    return lines


def _run_card(args) -> int:
    from ..modelzoo import model_card, resolve_model, shipped_models

    path = resolve_model(args.model).resolve()
    card = model_card(path)
    if args.json:
        entry = next((m.to_dict() for m in shipped_models() if m.path.resolve() == path),
                     {"path": str(path)})
        print(json.dumps({**entry, "card": card}, indent=2))
    else:
        print(card, end="" if card.endswith("\n") else "\n")
    return 0


def collect() -> dict:
    from .. import __version__, _backend

    info: dict = {
        "version": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "MUSGEN_BACKEND": os.environ.get("MUSGEN_BACKEND", "auto"),
        "cpu_count": os.cpu_count(),
    }
    backends = {"python": {"available": True, "why": "always available"}}
    if _backend.has_cpp():
        core = _backend.core()
        backends["cpp"] = {"available": True, "why": "C++ extension built",
                           "core_version": getattr(core, "__version__", "?"),
                           "simd": getattr(core, "simd_info", lambda: "?")()}
        engine_cls = getattr(core, "LstmEngine", None)
        if engine_cls is not None and hasattr(engine_cls, "available_kernels"):
            backends["cpp"]["engine_kernels"] = list(engine_cls.available_kernels())
    else:
        backends["cpp"] = {"available": False, "why": _backend.CORE_IMPORT_ERROR}
    ok, why = _backend.cuda_status()
    backends["cuda"] = {"available": ok, "why": why}
    info["backends"] = backends
    try:
        info["auto_resolves_to"] = _backend.resolve(None)
    except Exception as exc:  # noqa: BLE001 - report, do not fail
        info["auto_resolves_to"] = f"error: {exc}"
    try:
        import importlib.util

        info["tensorflow"] = ("installed" if importlib.util.find_spec("tensorflow")
                              else "not installed (pip install musgen[train] to train)")
    except (ImportError, ValueError):
        info["tensorflow"] = "unknown"
    from ..render import audio_status
    from ..web import web_status

    for key, (ok, why) in (("audio", audio_status()), ("web", web_status())):
        info[key] = {"available": ok, "why": why}
    from ..modelzoo import shipped_models

    info["models"] = [m.to_dict() for m in shipped_models()]
    return info


def run(args) -> int:
    if args.model is not None:
        return _run_card(args)
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"musgen {info['version']} (Python {info['python']}, {info['platform']}, "
          f"{info['cpu_count']} CPUs)")
    print(f"MUSGEN_BACKEND={info['MUSGEN_BACKEND']} -> {info['auto_resolves_to']}")
    for name, b in info["backends"].items():
        mark = "yes" if b["available"] else "no "
        extra = f" [{b['simd']}]" if b.get("simd") else ""
        if b.get("engine_kernels"):
            extra += f" engine kernels: {', '.join(b['engine_kernels'])}"
        print(f"  {name:<7} {mark} {b['why']}{extra}")
    print(f"tensorflow: {info['tensorflow']}")
    for key in ("audio", "web"):
        print(f"{key}: {'yes' if info[key]['available'] else 'no'}, {info[key]['why']}")
    print("\n".join(_model_lines(info["models"])))
    return 0
