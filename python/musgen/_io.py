"""Atomic file writes shared by every stage (MIDI files, datasets, model directories, reports)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_write_bytes", "temp_name"]


def temp_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` for its temporary file (``.NAME.XXXXXXXX.tmp``)."""
    return path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path`` (fsync'd unless ``fsync=False``), then
    rename it over ``path``: readers see the old file or the whole new one, never a part.

    The temporary file is created with mode 0666 less the umask (what an ordinary ``open()``
    gives), by the kernel: no process-wide umask juggling, so threads may write at once.
    """
    path = Path(path)
    while True:
        tmp = temp_name(path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                         0o666)
            break
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        except OSError as exc:  # name the file asked for, not the temporary one
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
