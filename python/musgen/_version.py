"""The package version: pyproject.toml's [project].version, the one source.

Installs carry it in ``_build_version.py``, written by the build from pyproject.toml (cheap to
import); a source tree that was never built falls back to the installed metadata, if any.
"""

from __future__ import annotations

try:
    from ._build_version import version as __version__
except ImportError:  # pragma: no cover - a source tree that was never built
    try:
        from importlib.metadata import PackageNotFoundError, version

        try:
            __version__ = version("musgen")
        except PackageNotFoundError:
            __version__ = "0+unknown"
    except ImportError:
        __version__ = "0+unknown"
