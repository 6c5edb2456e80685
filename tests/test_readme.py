"""README.md's examples run as written: the Python example, and the CLI quickstart on a small
openly licensed corpus (the set-up commands themselves are run by .ci/run)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from musgen import midi

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("readme_commands", ROOT / ".ci" / "readme_commands.py")
_readme = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_readme)


def test_readme_python_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme.readme_block("python"), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "(1, 8, " in out
    for i in range(2):
        score = midi.read(tmp_path / f"piece-{i}.mid")
        assert score.n_notes > 0


@pytest.mark.slow
@pytest.mark.tf
def test_readme_cli_quickstart(tmp_path):
    pytest.importorskip("tensorflow")
    shutil.copytree(ROOT / "tests" / "data" / "corpus_small", tmp_path / "my_midi")
    script = _readme.readme_block("quickstart")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                   check=True, timeout=1800)
    assert (tmp_path / "my_model" / "weights.safetensors").exists()
    files = sorted((tmp_path / "generated").glob("*.mid"))
    assert len(files) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(midi.read(f).n_notes > 0 for f in files)


def test_readme_render_and_plot_commands(tmp_path, audio_available):
    """The README's see-and-hear commands, as written, on a folder of generated pieces."""
    sf = pytest.importorskip("soundfile")
    subprocess.run([sys.executable, "-m", "musgen", "generate", "-o", "generated/", "--n", "2",
                    "--length", "8 beats", "--seed", "2", "--quiet"], cwd=tmp_path, check=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["bash", "-euo", "pipefail", "-c", _readme.readme_block("render")],
                   cwd=tmp_path, env=env, check=True, timeout=600, capture_output=True)
    song = midi.read(tmp_path / "song.mid")
    for name in ("song.png", "roll.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("song.wav", "song.flac", "audio/generated-000.ogg", "audio/generated-001.ogg"):
        data, rate = sf.read(tmp_path / name)
        assert len(data) / rate >= (song.duration_seconds if name.startswith("song") else 3.0)
