"""Progress bars for long loops: tqdm on a terminal or in a notebook, one summary line in a log.

tqdm redraws its bar with carriage returns, which is right on a terminal and noise in a log
file or a CI transcript. So the bar is drawn only where it can be redrawn (a terminal, or a
Jupyter notebook through ``tqdm.notebook``); anywhere else the loop prints a single line when it
ends (``prepare: 30/30 files in 1.2 s``). ``quiet`` silences both.
"""

from __future__ import annotations

import sys
import time

__all__ = ["progress_bar", "is_interactive"]


def is_interactive(stream) -> bool:
    """True when ``stream`` is a terminal (a bar can be redrawn in place)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _notebook_tqdm():
    """tqdm's notebook widget when running inside a Jupyter kernel, else None (the test
    ``tqdm.autonotebook`` makes, without its warning)."""
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
        if shell is None or "IPKernelApp" not in shell.config:
            return None
        from tqdm.notebook import IProgress, tqdm

        return tqdm if IProgress is not None else None  # ipywidgets present
    except Exception:  # noqa: BLE001 - any failure means: not a usable notebook
        return None


class _LogLine:
    """The non-interactive stand-in: counts like a tqdm bar and prints one line at the end."""

    def __init__(self, total, desc: str, unit: str, stream, quiet: bool):
        self.total, self.desc, self.unit, self.stream = total, desc, unit, stream
        self.quiet = quiet
        self.n = 0
        self._t0 = time.perf_counter()
        self._postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self._postfix = text

    def close(self) -> None:
        if self.quiet:
            return
        self.quiet = True  # a second close prints nothing
        elapsed = time.perf_counter() - self._t0
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        extra = f", {self._postfix}" if self._postfix else ""
        self.stream.write(f"{self.desc}: {count} {self.unit} in {elapsed:.1f} s{extra}\n")
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int | None, desc: str, *, unit: str = "it", quiet: bool = False,
                 stream=None, leave: bool = True):
    """A progress bar for a loop of ``total`` units (None: unknown), used as a context manager
    with ``update(n)``: a tqdm bar on a terminal or in a notebook, one line at the end in a log,
    nothing when ``quiet``. Written to ``stream`` (default: standard error)."""
    stream = sys.stderr if stream is None else stream
    if not quiet:
        notebook = _notebook_tqdm()
        if notebook is not None:
            return notebook(total=total, desc=desc, unit=unit, leave=leave)
        if is_interactive(stream):
            from tqdm import tqdm

            return tqdm(total=total, desc=desc, unit=unit, file=stream, leave=leave,
                        dynamic_ncols=True)
    return _LogLine(total, desc, unit, stream, quiet)
