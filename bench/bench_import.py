"""``import musgen`` time (target <= 60 ms), measured in fresh interpreters.

Prints, as medians of interleaved runs: the cumulative import time of ``musgen`` reported by
``python -X importtime`` (the import alone), the same for ``musgen.midi`` and ``musgen.engine``
(the first stage a user touches), and the wall time of ``python -c "import musgen"`` against
``python -c "pass"``. Run alone: ``python bench/bench_import.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET_MS = 60.0
MODULES = ("musgen", "musgen.midi", "musgen.engine")


def import_ms(module: str) -> float:
    """Cumulative microseconds python -X importtime reports for ``module``, in ms."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                         capture_output=True, text=True, check=True).stderr
    for line in reversed(out.splitlines()):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1e3
    raise RuntimeError(f"no importtime line for {module}")


def wall_ms(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - t0) * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 21")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else 21
    times: dict = {m: [] for m in MODULES}
    times["wall import musgen"], times["wall pass"] = [], []
    for _ in range(runs):  # interleaved, so a busy moment falls on every row alike
        for m in MODULES:
            times[m].append(import_ms(m))
        times["wall import musgen"].append(wall_ms("import musgen"))
        times["wall pass"].append(wall_ms("pass"))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"bench_import: medians of {runs} fresh interpreters ({sys.executable})")
    for m in MODULES:
        print(f"  import {m:<15} {med[m]:8.1f} ms (python -X importtime, cumulative)")
    extra = med["wall import musgen"] - med["wall pass"]
    print(f"  interpreter start + import musgen {med['wall import musgen']:.1f} ms, bare "
          f"interpreter {med['wall pass']:.1f} ms: import musgen adds {extra:.1f} ms")
    print(f"ratio: import musgen / target = {med['musgen'] / TARGET_MS:.2f} "
          f"({med['musgen']:.1f} ms, target <= {TARGET_MS:.0f} ms: "
          f"{'met' if med['musgen'] <= TARGET_MS else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
