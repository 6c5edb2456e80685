"""A dependency-free progress bar for long loops, drawn on stderr unless ``quiet``."""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "reading") as p: p.update(n)``; silent when ``quiet``."""

    def __init__(self, total: int | None, desc: str = "", *, quiet: bool = False,
                 unit: str = "it", stream=None, min_interval: float = 0.1):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.count = 0
        self.min_interval = min_interval
        self._t0 = time.perf_counter()
        self._last = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.perf_counter()
        if not self.quiet and (now - self._last >= self.min_interval
                               or (self.total is not None and self.count >= self.total)):
            self._last = now
            self._draw(now)

    def _draw(self, now: float, end: str = "\r") -> None:
        elapsed = now - self._t0
        rate = self.count / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(1.0, self.count / self.total)
            bar = "#" * int(frac * 30)
            text = (f"{self.desc} [{bar:<30}] {self.count}/{self.total} {self.unit} "
                    f"{rate:,.1f} {self.unit}/s {elapsed:.1f}s")
        else:
            text = f"{self.desc} {self.count} {self.unit} {rate:,.1f} {self.unit}/s {elapsed:.1f}s"
        self.stream.write(text + end)
        self.stream.flush()

    def close(self) -> None:
        if not self.quiet and self.count:
            self._draw(time.perf_counter(), end="\n")
        self.quiet = True
