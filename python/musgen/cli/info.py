"""``musgen info``: version, backends available (and why not), threads and environment."""

from __future__ import annotations

import json
import os
import platform


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print as JSON")


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
    return info


def run(args) -> int:
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
    return 0
