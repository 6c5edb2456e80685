"""Shared fixtures: every behaviour test runs on every available backend.

Opt-in corpus tests read MUSGEN_DATA (the folder holding ``corpora/`` and ``torture/``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from musgen import _backend

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
#: The shipped version-1 model ``jsb-v1`` (JSB Chorales on a quarter-note grid; the default model
#: before codec version 2): the regression sample was made with it, and tests on version-1
#: datasets use it.
V1_MODEL = TESTS.parent / "python" / "musgen" / "models" / "jsb-v1"
#: The wheels are tested with musgen's run-time dependencies only; matplotlib is the plot extra.
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_matplotlib = pytest.mark.skipif(not HAS_MATPLOTLIB,
                                      reason="matplotlib is not installed (the plot extra)")


def available_backends() -> list[str]:
    """Backends to test: python always, cpp when built; MUSGEN_BACKEND=python forces python only,
    MUSGEN_BACKEND=cuda tests the GPU engine (and C++ for reading and the codec)."""
    env = os.environ.get("MUSGEN_BACKEND", "").lower()
    if env == "python" or not _backend.has_cpp():
        return ["python"]
    if env == "cuda":  # engine calls run on the GPU; MIDI and codec calls map "cuda" to C++
        ok, why = _backend.cuda_status()
        if not ok:
            raise pytest.UsageError(
                f"MUSGEN_BACKEND=cuda but the CUDA backend is not available: {why}")
        return ["cuda", "python"]
    return ["cpp", "python"]


def fixture_backends() -> list[str]:
    """The backends the `backend` fixture runs each test on: available_backends(), or only the
    compiled one with MUSGEN_TEST_BACKENDS=cpp (the aarch64 wheel under emulation, where the
    NumPy side is the same Python as on x86_64 and slow); tests that compare implementations
    still compare all of them."""
    found = available_backends()
    if os.environ.get("MUSGEN_TEST_BACKENDS", "").lower() == "cpp" and "cpp" in found:
        return ["cpp"]
    return found


@pytest.fixture(params=fixture_backends())
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    """The big shared data folder; tests using it are opt-in via MUSGEN_DATA."""
    root = os.environ.get("MUSGEN_DATA")
    if not root:
        pytest.skip("opt-in: set MUSGEN_DATA to the folder holding corpora/ and torture/")
    path = Path(root)
    if not (path / "corpora").is_dir():
        pytest.fail(f"MUSGEN_DATA={root} has no corpora/ folder")
    return path


def pytest_collection_modifyitems(config, items):
    """Opt-in corpus tests are deselected (not skipped) unless MUSGEN_DATA points at the data."""
    if os.environ.get("MUSGEN_DATA"):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("corpus") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class EmulatedCuda:
    """Stands in for the CUDA engine behind the Engine facade: the device loop run on the host
    (emulated layer kernels, the sampling kernel's decision and bookkeeping code, the rules)."""

    def __init__(self, config, tensors):
        self.units = [int(u) for u in config["model"]["lstm_units"]]
        self.tensors = {k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()}

    def generate(self, *args, threads=0, progress=None, rules=None):
        return _backend.core().cuda_emulate_generate("lstm_lm", self.units, self.tensors, *args,
                                                     threads=threads, progress=progress,
                                                     rules=rules)


def has_cuda_emulation() -> bool:
    return _backend.has_cpp() and hasattr(_backend.core(), "cuda_emulate_generate")


def engine_on(path, backend: str):
    """An Engine on "cpp", "python", or "cuda-emulation" (the CUDA loop emulated on the host)."""
    from musgen import engine
    from musgen.modeldir import load_model_dir

    if backend != "cuda-emulation":
        return engine.load(path, backend=backend)
    eng = engine.load(path, backend="cpp")
    eng._cpp = EmulatedCuda(*load_model_dir(path))
    return eng


def loop_backends() -> list:
    """Every implementation of the sampling loop this build can run here."""
    return available_backends() + (["cuda-emulation"] if has_cuda_emulation() and
                                   "cuda" not in available_backends() else [])


def skip_or_fail(reason: str):
    """Skip a test whose system part (synthesizer, SoundFont, browser) is missing, unless
    MUSGEN_REQUIRE_SYSTEM_TESTS is set: .ci/run installs those parts and sets it for its test
    stages, where a skip would hide that the test never ran."""
    if os.environ.get("MUSGEN_REQUIRE_SYSTEM_TESTS"):
        pytest.fail(f"MUSGEN_REQUIRE_SYSTEM_TESTS is set but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def audio_available() -> None:
    """FluidSynth and a General MIDI SoundFont are installed (else skip, or fail in CI)."""
    from musgen.render import audio_status

    ok, why = audio_status()
    if not ok:
        skip_or_fail(why)


@pytest.fixture
def live_server():
    """Start apps on a real uvicorn server on 127.0.0.1 (a free port) in a thread; yields a
    function app -> base URL. Every server is stopped at the end of the test."""
    import socket
    import threading

    servers = []

    def start(app) -> str:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        for _ in range(600):  # up to 30 s for the start-up
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.05)
        if not server.started:
            raise RuntimeError("the test server did not start")
        servers.append((server, thread, sock))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread, sock in servers:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def make_score(rows, programs=(), tempos=((0, 600_000),), meters=((0, 4, 4),), names=None,
               tpb: int = 480):
    """A Score from note rows (track, channel, pitch, start_beat, end_beat[, velocity]);
    ``programs`` (beat, track, channel, program), ``meters`` (beat, numerator, denominator)."""
    from musgen.score import NOTE_DTYPE, PROGRAM_DTYPE, TEMPO_DTYPE, TIME_SIGNATURE_DTYPE, Score

    notes = np.zeros(len(rows), NOTE_DTYPE)
    for i, r in enumerate(rows):
        track, channel, pitch, start, end = r[:5]
        notes[i] = (track, channel, pitch, r[5] if len(r) > 5 else 80, round(start * tpb),
                    round(end * tpb))
    notes = np.sort(notes, order=["start", "track", "channel", "pitch", "end"])
    return Score(notes=notes, ticks_per_beat=tpb,
                 tempos=np.array(list(tempos), TEMPO_DTYPE),
                 time_signatures=np.array([(round(t * tpb), n, d, 24, 8) for t, n, d in meters],
                                          TIME_SIGNATURE_DTYPE),
                 programs=np.array([(round(t * tpb), tr, ch, p) for t, tr, ch, p in programs],
                                   PROGRAM_DTYPE),
                 track_names=list(names or []))
