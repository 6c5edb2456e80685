"""Package-level behaviour: one version source, backend selection, `musgen info`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import musgen
from musgen import _backend
from musgen.errors import BackendUnavailableError


def test_version_single_source():
    import tomllib

    from conftest import TESTS

    pyproject = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())
    assert musgen.__version__ == pyproject["project"]["version"]
    if _backend.has_cpp():
        assert _backend.core().__version__ == musgen.__version__


def test_backend_resolve_explicit_and_env(monkeypatch):
    monkeypatch.setenv("MUSGEN_BACKEND", "python")
    assert _backend.resolve(None) == "python"
    monkeypatch.setenv("MUSGEN_BACKEND", "auto")
    assert _backend.resolve(None) == ("cpp" if _backend.has_cpp() else "python")
    assert _backend.resolve("python") == "python"


def test_backend_resolve_rejects_unknown(monkeypatch):
    with pytest.raises(ValueError, match="backend='gpu'"):
        _backend.resolve("gpu")
    monkeypatch.setenv("MUSGEN_BACKEND", "fast")
    with pytest.raises(ValueError, match="MUSGEN_BACKEND='fast'"):
        _backend.resolve(None)


def test_backend_cuda_engine_unavailable_says_why():
    ok, why = _backend.cuda_status()
    if ok:
        pytest.skip("a CUDA device is available here; the unavailable path cannot be exercised")
    with pytest.raises(BackendUnavailableError, match="CUDA backend is not available: .+"):
        _backend.resolve("cuda", engine=True)


def test_info_cli_json():
    out = subprocess.run([sys.executable, "-m", "musgen", "info", "--json"], check=True,
                         capture_output=True, text=True).stdout
    info = json.loads(out)
    assert info["version"] == musgen.__version__
    assert info["backends"]["python"]["available"] is True
    assert info["backends"]["cpp"]["available"] is _backend.has_cpp()
