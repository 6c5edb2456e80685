"""Build the sanitized libFuzzer targets and run each for a given time; used by ``nox -s fuzz``
and ``.ci/run``. Needs clang (with its libFuzzer runtime), CMake and musgen installed.

    python fuzz/run.py --seconds 60 [--examples 2000] [--build build/fuzz] [--coverage]
                       [TARGET ...]

Each target starts from the seeds made from tests/data (fuzz/seeds.py) and the regression
corpus (fuzz/regressions/TARGET), keeps what it learns in BUILD/corpus/TARGET, and writes any
failing input to BUILD/artifacts/ (then the run fails: fix the bug, and check the input in
under fuzz/regressions/TARGET so that the ordinary tests replay it). The summary line of each
target gives its executions. ``--coverage`` rebuilds with clang's source-based coverage,
replays the corpus, and prints llvm-cov's line coverage of the MIDI reader and the codec.
Then the Python fuzz targets (fuzz/python_targets.py, through tests/test_fuzz.py) run with
``--examples`` examples each.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGETS = ("midi_read", "codec_encode", "codec_decode", "codec_decode_v2", "grammar_walk")
COVERED = ("cpp/src/midi/read.cpp", "cpp/src/codec/codec.cpp")


def tool(name: str) -> str:
    """clang++ / llvm-profdata / llvm-cov, plain or with a version suffix (Debian)."""
    for cand in [name] + [f"{name}-{v}" for v in range(20, 13, -1)]:
        path = shutil.which(cand)
        if path:
            return path
    raise SystemExit(f"fuzz: {name} not found (apt-get install clang llvm libclang-rt-dev)")


def build(build_dir: Path, coverage: bool) -> None:
    subprocess.run(["cmake", "-S", str(HERE), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=",
                    f"-DCMAKE_CXX_COMPILER={tool('clang++')}",
                    f"-DPython_EXECUTABLE={sys.executable}",
                    f"-DMUSGEN_FUZZ_COVERAGE={'ON' if coverage else 'OFF'}"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build_dir), "-j", str(os.cpu_count() or 1)],
                   check=True, stdout=subprocess.DEVNULL)


def seeds(build_dir: Path) -> Path:
    out = build_dir / "seeds"
    if not out.is_dir():
        subprocess.run([sys.executable, str(HERE / "seeds.py"), str(out)], check=True)
    return out


def run_target(build_dir: Path, target: str, seconds: int, seed_dir: Path) -> tuple[int, int]:
    """Fuzz one target -> (executions, exit status)."""
    corpus = build_dir / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts = build_dir / "artifacts"
    artifacts.mkdir(exist_ok=True)
    dirs = [str(corpus), str(seed_dir / target)]
    if (HERE / "regressions" / target).is_dir():
        dirs.append(str(HERE / "regressions" / target))
    cmd = [str(build_dir / f"fuzz_{target}"), f"-max_total_time={seconds}", "-print_final_stats=1",
           "-rss_limit_mb=2048", "-timeout=30", f"-artifact_prefix={artifacts}/{target}-", *dirs]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace")
    log = build_dir / f"{target}.log"
    log.write_text(proc.stdout)
    m = re.search(r"stat::number_of_executed_units: (\d+)", proc.stdout)
    execs = int(m.group(1)) if m else 0
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-25:])
        print(f"fuzz_{target}: FAILED (exit {proc.returncode}); log {log}\n{tail}")
    return execs, proc.returncode


def coverage(build_dir: Path, seed_dir: Path, fuzz_dir: Path) -> None:
    """Replay every corpus with a coverage build and print the lines of COVERED reached."""
    build(build_dir, coverage=True)
    profiles = []
    for target in TARGETS:
        raw = build_dir / f"{target}.profraw"
        dirs = [d for d in (fuzz_dir / "corpus" / target, seed_dir / target,
                            HERE / "regressions" / target) if d.is_dir()]
        env = dict(os.environ, LLVM_PROFILE_FILE=str(raw))
        subprocess.run([str(build_dir / f"fuzz_{target}"), "-runs=0", *map(str, dirs)], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        profiles.append(str(raw))
    merged = build_dir / "all.profdata"
    subprocess.run([tool("llvm-profdata"), "merge", "-sparse", *profiles, "-o", str(merged)],
                   check=True)
    objects = [str(build_dir / f"fuzz_{t}") for t in TARGETS]
    report = subprocess.run([tool("llvm-cov"), "report", objects[0],
                             *[a for o in objects[1:] for a in ("-object", o)],
                             f"-instr-profile={merged}", *[str(ROOT / f) for f in COVERED]],
                            check=True, stdout=subprocess.PIPE, text=True).stdout
    print(report)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("targets", nargs="*", metavar="TARGET",
                   help=f"some of {', '.join(TARGETS)} (default: all)")
    p.add_argument("--seconds", type=int, default=60, help="time per target (60)")
    p.add_argument("--examples", type=int, default=2000,
                   help="examples per Python fuzz target (2000; 0 skips them)")
    p.add_argument("--build", default=str(ROOT / "build" / "fuzz"), help="build folder")
    p.add_argument("--coverage", action="store_true",
                   help="then measure line coverage of the reader and the codec")
    args = p.parse_args(argv)
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        p.error(f"unknown target(s) {unknown}: expected some of {', '.join(TARGETS)}")
    build_dir = Path(args.build).resolve()
    build(build_dir, coverage=False)
    seed_dir = seeds(build_dir)
    failed = []
    for target in args.targets or TARGETS:
        execs, rc = run_target(build_dir, target, args.seconds, seed_dir)
        print(f"fuzz_{target}: {execs} executions in {args.seconds} s"
              + ("" if rc == 0 else f", FAILED (input in {build_dir / 'artifacts'})"))
        if rc != 0:
            failed.append(target)
    if args.coverage:
        coverage(build_dir / "coverage", seed_dir, build_dir)
    if args.examples > 0:
        env = dict(os.environ, MUSGEN_FUZZ_EXAMPLES=str(args.examples))
        rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(ROOT / "tests" / "test_fuzz.py")], env=env, cwd=ROOT).returncode
        if rc != 0:
            failed.append("python targets")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
