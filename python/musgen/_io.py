"""Atomic writes shared by every stage: single files (MIDI files, reports) and whole folders
(datasets, model directories), which are built in a staging folder beside the target and then
take its place in one step.

Replacing a folder: on Linux the staging folder and the target are swapped with
``renameat2(RENAME_EXCHANGE)``, so at every instant the target path holds either the complete
old folder or the complete new one. Where the kernel or file system cannot exchange, the old
folder is renamed away and the new one renamed in (two renames, a moment with neither).

Staging folders are named ``.NAME.XXXXXXXX.tmp`` beside the target, each with a lock file
``.NAME.XXXXXXXX.lock`` that its writer holds (``flock``) while it works. A writer killed
outright (SIGKILL, power loss) leaves both behind; the next writer of the same target removes
every staging folder whose lock nobody holds. Staging folders without a lock file (written by
an older musgen) are removed once they have been left untouched for ``STALE_SECONDS``.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

try:  # POSIX advisory locks; elsewhere staging folders are cleaned by age only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_write_bytes", "temp_name", "StagingDir", "staging_dir", "replace_dir",
           "remove_stale_staging", "STALE_SECONDS"]

#: A staging folder without a lock file is stale after this long without a change.
STALE_SECONDS = 15 * 60


def _name_error(exc: OSError, path: Path) -> OSError:
    """The same error, naming the user's path rather than a temporary one."""
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def temp_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` for its temporary file (``.NAME.XXXXXXXX.tmp``)."""
    return path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path`` (fsync'd unless ``fsync=False``), then
    rename it over ``path``: readers see the old file or the whole new one, never a part.

    The temporary file is created with mode 0666 less the umask (what an ordinary ``open()``
    gives), by the kernel: no process-wide umask juggling, so threads may write at once.
    Errors name ``path`` (a missing folder, a read-only one), never the temporary file.
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
        except OSError as exc:
            raise _name_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _name_error(exc, path) from None
        raise


# ----------------------------------------------------------------------------- folder exchange
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc >= 2.28 (or not Linux)
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _renameat2()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False where the system cannot."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(new: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put folder ``new`` at ``target``. When ``target`` exists, the two are exchanged and the
    old folder is left at ``new`` (the caller removes it)."""
    new, target = Path(new), Path(target)
    if not target.exists():
        os.rename(new, target)
        return
    if _exchange(new, target):
        return
    old = new.with_name(new.name + ".old")  # two renames: the portable fallback
    os.rename(target, old)
    os.rename(new, target)
    os.rename(old, new)


# ----------------------------------------------------------------------------- staging folders
def _try_lock(path: Path):
    """An open, exclusively locked file descriptor on ``path``, or None when someone holds it
    (or it vanished)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    if fcntl is None:  # pragma: no cover
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _last_change(path: Path) -> float:
    newest = path.stat().st_mtime
    for entry in os.scandir(path):
        try:
            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
        except OSError:
            pass
    return newest


def remove_stale_staging(target: str | os.PathLike) -> list:
    """Remove the staging folders of ``target`` left by killed writers; returns their paths.

    A folder whose lock file is held belongs to a running writer and is kept; one whose lock
    file is free is removed (with its lock); one without a lock file is removed only when
    nothing in it changed for ``STALE_SECONDS``.
    """
    target = Path(target)
    parent = target.parent
    removed = []
    pattern = str(parent / f".{glob.escape(target.name)}.*.tmp")
    for found in glob.glob(pattern):
        stage = Path(found)
        if not stage.is_dir() or stage.is_symlink():
            continue
        lock = stage.with_name(stage.name[:-len(".tmp")] + ".lock")
        if lock.exists():
            fd = _try_lock(lock)
            if fd is None:
                continue
            try:
                shutil.rmtree(stage, ignore_errors=True)
                lock.unlink(missing_ok=True)
            finally:
                os.close(fd)
        else:
            try:
                if time.time() - _last_change(stage) < STALE_SECONDS:
                    continue
            except OSError:
                continue
            shutil.rmtree(stage, ignore_errors=True)
        removed.append(stage)
    return removed


class StagingDir:
    """A locked staging folder beside ``target`` (see the module docstring).

    ``commit()`` puts it in place of ``target`` (atomically where the system allows);
    ``close()`` removes whatever is left at the staging path (the half-built folder after a
    failure, the old folder after a commit) and releases the lock.
    """

    def __init__(self, target: str | os.PathLike):
        self.target = Path(target)
        parent = self.target.parent
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(self.target)
        fd, lock = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".lock",
                                    dir=parent)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd: int | None = fd
        self.lock = Path(lock)
        self.path = self.lock.with_name(self.lock.name[:-len(".lock")] + ".tmp")
        try:
            self.path.mkdir()
        except BaseException:
            self.close()
            raise
        self.committed = False

    def commit(self) -> Path:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self.path, 0o777 & ~mask)
        replace_dir(self.path, self.target)
        self.committed = True
        return self.target

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            if self.path.exists():
                shutil.rmtree(self.path, ignore_errors=True)
            self.lock.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


@contextmanager
def staging_dir(target: str | os.PathLike):
    """``with staging_dir(target) as stage: ...; replace_dir(stage, target)``-style use: yields
    the staging folder's path; the folder (or the old one exchanged into it) is removed on
    exit, and the lock released."""
    stage = StagingDir(target)
    try:
        yield stage.path
    finally:
        stage.close()
