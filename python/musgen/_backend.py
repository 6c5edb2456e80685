"""Backend selection: MUSGEN_BACKEND=auto|cpp|cuda|python, overridden per call by ``backend=``.

``auto`` means the C++ extension when it was built, else pure Python. CUDA is used only when asked
for, and only by the inference engine; for MIDI reading and the codec ``cuda`` means the C++ code.
"""

from __future__ import annotations

import os

from .errors import BackendUnavailableError

BACKENDS = ("auto", "cpp", "cuda", "python")

try:  # the compiled core is optional: a pure-Python install (MUSGEN_BUILD_EXTENSION=OFF) has none
    from . import _core  # type: ignore[attr-defined]

    CORE_IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - depends on the install
    _core = None
    CORE_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"


def core():
    """The compiled module, or raise BackendUnavailableError saying why it is missing."""
    if _core is None:
        raise BackendUnavailableError(
            "the C++ backend is not available: musgen._core could not be imported "
            f"({CORE_IMPORT_ERROR}); reinstall without MUSGEN_BUILD_EXTENSION=OFF, "
            "or use backend='python'"
        )
    return _core


def has_cpp() -> bool:
    return _core is not None


def cuda_status() -> tuple[bool, str]:
    """(available, reason) for the CUDA engine."""
    if _core is None:
        return False, "the C++ extension is not built"
    if not getattr(_core, "HAS_CUDA", False):
        return False, "this build has no CUDA backend (build with MUSGEN_ENABLE_CUDA=ON and nvcc)"
    ok, why = _core.cuda_runtime_status()
    return bool(ok), str(why)


def requested(backend: str | None = None) -> str:
    """The backend asked for: the argument, else $MUSGEN_BACKEND, else 'auto' (validated)."""
    name = backend if backend is not None else os.environ.get("MUSGEN_BACKEND", "auto")
    name = (name or "auto").strip().lower()
    if name not in BACKENDS:
        src = "backend=" if backend is not None else "MUSGEN_BACKEND="
        raise ValueError(f"{src}{name!r}: expected one of {', '.join(BACKENDS)}")
    return name


def resolve(backend: str | None = None, *, engine: bool = False) -> str:
    """Resolve to 'cpp', 'python' or (engine only) 'cuda'.

    Parameters
    ----------
    backend : str or None
        Per-call override; None reads MUSGEN_BACKEND.
    engine : bool
        True for the inference engine, the only place CUDA applies.
    """
    name = requested(backend)
    if name == "auto":
        return "cpp" if _core is not None else "python"
    if name == "python":
        return "python"
    if name == "cuda":
        if not engine:
            core()  # MIDI/codec work on a CUDA build runs in the C++ core
            return "cpp"
        ok, why = cuda_status()
        if not ok:
            raise BackendUnavailableError(f"the CUDA backend is not available: {why}")
        return "cuda"
    core()
    return "cpp"
