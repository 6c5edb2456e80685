"""nox sessions: tests (both backends), opt-in corpus tests, benchmarks, TF parity, wheels.

Heavy sessions are not run by default (``nox -s bench``, ``nox -s compare_tf``, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
ROOT = Path(__file__).resolve().parent
DATA = os.environ.get("MUSGEN_DATA", str(ROOT.parent / "shared" / "data"))


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on the C++ build, then again on the pure-Python backend."""
    session.install(".[test,train]")
    session.run("pytest", *session.posargs)
    session.run("pytest", "-m", "not slow", *session.posargs, env={"MUSGEN_BACKEND": "python"})


@nox.session
def tests_pure(session: nox.Session) -> None:
    """A pure-Python install (no C++ build) passes the suite."""
    session.install(".[test,train]", env={"MUSGEN_BUILD_EXTENSION": "OFF"})
    session.run("pytest", "-m", "not slow", *session.posargs)


@nox.session(default=False)
def corpus(session: nox.Session) -> None:
    """Opt-in tests on the big corpora (MUSGEN_DATA, default ../shared/data)."""
    session.install(".[test,train]")
    session.run("pytest", "-m", "corpus", *session.posargs, env={"MUSGEN_DATA": DATA})


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Every benchmark in bench/ (prints ratios against the tools users would otherwise pick).

    ``nox -s bench -- bench_engine bench_prepare --quick``: names pick scripts, options (``-...``)
    go to each script (``--quick``: a short run that checks the script works).
    """
    session.install(".[bench,train]")
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    only = {a for a in session.posargs if not a.startswith("-")}
    options = [a for a in session.posargs if a.startswith("-")]
    for script in scripts:
        if only and script.stem not in only:
            continue
        session.run("python", str(script), *options, env={"MUSGEN_DATA": DATA})


@nox.session(default=False)
def compare_tf(session: nox.Session) -> None:
    """Train a small model with TensorFlow, export it, and compare Keras with the C++/NumPy engines."""
    session.install(".[test,train]")
    session.run("python", str(ROOT / "bench" / "compare_tf.py"), *session.posargs)


@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """Sanitized libFuzzer targets (clang, ASan + UBSan), each for MUSGEN_FUZZ_SECONDS (60), then
    the Python fuzz targets with MUSGEN_FUZZ_EXAMPLES (2000) examples; ``-- --coverage`` also
    prints llvm-cov's coverage of the reader and the codec. See fuzz/README.md."""
    session.install(".[test]")
    session.run("python", str(ROOT / "fuzz" / "run.py"),
                "--seconds", os.environ.get("MUSGEN_FUZZ_SECONDS", "60"),
                "--examples", os.environ.get("MUSGEN_FUZZ_EXAMPLES", "2000"), *session.posargs)


@nox.session(default=False, venv_backend="none")
def wheels(session: nox.Session) -> None:
    """manylinux wheels: x86_64, and aarch64 cross-built and tested under qemu (tools/wheels.py)."""
    session.run("python", str(ROOT / "tools" / "wheels.py"), *session.posargs)
