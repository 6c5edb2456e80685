"""Package-level behaviour: one version source, backend selection, `musgen info`."""

from __future__ import annotations

import io
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

    from importlib.metadata import version

    pyproject = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())
    expected = pyproject["project"]["version"]
    # pyproject -> the build's generated file (every install, pure-Python ones too) -> __version__
    from musgen import _build_version

    assert _build_version.version == expected
    assert musgen.__version__ == expected
    assert version("musgen") == expected
    # pyproject -> CMake (SKBUILD_PROJECT_VERSION) -> the extension
    if _backend.has_cpp():
        assert _backend.core().__version__ == expected


def test_import_musgen_is_light():
    # `import musgen` loads neither NumPy nor importlib.metadata; the stages load on first use
    code = ("import sys, musgen; print(sorted(m for m in ('numpy', 'importlib.metadata', "
            "'musgen.score', 'musgen._core') if m in sys.modules)); "
            "print(musgen.Score.__module__, musgen.score.NOTE_DTYPE.itemsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "musgen.score 24"


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
    from musgen.render import audio_status
    from musgen.web import web_status

    assert [info["audio"]["available"], info["audio"]["why"]] == list(audio_status())
    assert [info["web"]["available"], info["web"]["why"]] == list(web_status())


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_in_a_log_is_one_line_without_carriage_returns():
    from musgen._progress import progress_bar

    log = io.StringIO()
    with progress_bar(40, "reading", unit="files", stream=log) as bar:
        for _ in range(40):
            bar.update(1)
        bar.close()  # closing twice prints once
    text = log.getvalue()
    assert "\r" not in text and text.count("\n") == 1
    assert text.startswith("reading: 40/40 files in ")


def test_progress_bar_on_a_terminal_is_tqdm_and_quiet_prints_nothing():
    from musgen._progress import progress_bar

    term = _Terminal()
    with progress_bar(40, "reading", unit="files", stream=term) as bar:
        bar.update(40)
    assert type(bar).__module__.startswith("tqdm")
    assert "reading: 100%" in term.getvalue() and "40/40" in term.getvalue()
    quiet = _Terminal()
    with progress_bar(40, "reading", quiet=True, stream=quiet) as bar:
        bar.update(40)
    assert quiet.getvalue() == ""


def test_earlier_import_paths_keep_working():
    """Modules that moved into the stage subpackages are still importable by their old names."""
    import musgen.dataset
    import musgen.evaluation
    from musgen.data import Dataset, prepare
    from musgen.eval import evaluate

    assert musgen.dataset.prepare is prepare and musgen.dataset.Dataset is Dataset
    assert musgen.dataset.piece_field is musgen.data.piece_field
    assert musgen.evaluation.evaluate is evaluate
    assert musgen.evaluation.paper_baseline is musgen.eval.paper_baseline
    assert musgen.prepare is prepare and musgen.evaluate is evaluate
    assert callable(musgen.train) and musgen.train is musgen.training.train


def test_imports_point_one_way_along_the_data_flow():
    """No stage imports a later stage (cli -> stages -> score/errors), checked on the source."""
    import ast
    from pathlib import Path

    order = ["errors", "score", "_io", "_backend", "_progress", "midi", "codec", "data",
             "modeldir", "modelzoo", "training", "engine", "render", "generation", "eval", "web", "cli"]
    rank = {name: i for i, name in enumerate(order)}
    root = Path(musgen.__file__).parent
    bad = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).parts
        stage = rel[0].removesuffix(".py")
        if stage not in rank:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                parts = list(rel[:-1])[: len(rel) - node.level]
                target = (parts + (node.module or "").split("."))[0] if parts or node.module \
                    else ""
                names = [a.name for a in node.names] if not parts and not node.module else []
                for t in [target] + names:
                    if t in rank and rank[t] > rank[stage]:
                        bad.append(f"{'/'.join(rel)} imports {t}")
    assert bad == []
