"""Shipped models by name: listing, resolving (paths win, 'default' follows the constant),
generate/engine/CLI by name, and the one-line error of an unknown name."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import mido
import numpy as np
import pytest

from musgen import engine, generate, modelzoo
from musgen.cli import main
from musgen.errors import ModelFormatError
from musgen.modeldir import read_safetensors


def test_modelzoo_lists_the_shipped_default_with_its_figures():
    models = modelzoo.shipped_models()
    assert [m.name for m in models][0] == modelzoo.DEFAULT_MODEL
    m = models[0]
    assert m.default and m.path == modelzoo.default_model_dir()
    config = json.loads((m.path / "config.json").read_text())
    assert m.codec_version == config["codec"]["format_version"]
    assert m.vocab_size == config["model"]["vocab_size"]
    tensors, _ = read_safetensors(m.path / "weights.safetensors")
    assert m.parameters == sum(math.prod(t.shape) for t in tensors.values())
    assert m.size_bytes == sum(f.stat().st_size for f in m.path.rglob("*") if f.is_file())
    heading = next(ln for ln in (m.path / "MODEL_CARD.md").read_text().splitlines()
                   if ln.startswith("#"))
    assert m.summary == heading.lstrip("# ").strip() and m.summary
    assert m.to_dict()["size_bytes"] == m.size_bytes


def test_modelzoo_resolves_names_and_paths(tmp_path, monkeypatch):
    assert modelzoo.resolve_model("default") == modelzoo.default_model_dir()
    assert modelzoo.resolve_model(modelzoo.DEFAULT_MODEL) == modelzoo.default_model_dir()
    # a path that exists wins over a shipped name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").mkdir()
    assert modelzoo.resolve_model("default") == Path("default")
    assert modelzoo.resolve_model(tmp_path / "default") == tmp_path / "default"
    with pytest.raises(ModelFormatError, match=r"model 'nope': not a model directory here, nor "
                       r"a shipped model \(shipped: default"):
        modelzoo.resolve_model("nope")
    # not a bare name: never looked up as one, left to the loader to report
    assert modelzoo.resolve_model("some/where/else") == Path("some/where/else")
    with pytest.raises(ModelFormatError, match="not a model directory"):
        engine.load("some/where/else")
    with pytest.raises(TypeError, match="model: expected"):
        modelzoo.resolve_model(3)


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """A models folder holding the default model as 'chorale' (the default) and as 'other'."""
    root = tmp_path / "models"
    for name in ("chorale", "other"):
        shutil.copytree(modelzoo.default_model_dir(), root / name)
    (root / "other" / "MODEL_CARD.md").write_text("# Another model\n\nIts card.\n")
    (root / "notes").mkdir()  # a folder without a model is not listed
    monkeypatch.setattr(modelzoo, "models_root", lambda: root)
    monkeypatch.setattr(modelzoo, "DEFAULT_MODEL", "chorale")
    return root


def test_modelzoo_default_name_follows_the_constant(zoo):
    assert [m.name for m in modelzoo.shipped_models()] == ["chorale", "other"]
    assert [m.default for m in modelzoo.shipped_models()] == [True, False]
    assert modelzoo.shipped_names() == ["default", "chorale", "other"]
    assert modelzoo.resolve_model("default") == zoo / "chorale"
    assert modelzoo.resolve_model("other") == zoo / "other"
    assert modelzoo.model_card("other").startswith("# Another model")
    with pytest.raises(ModelFormatError, match=r"shipped: default, chorale, other\)"):
        modelzoo.resolve_model("notes")
    # generate() without a model uses the default whatever its folder is called
    eng = engine.load("default", backend="python")
    assert eng.path == zoo / "chorale"


def test_generate_by_name_equals_generate_by_path(backend):
    by_name = generate(model="default", n=2, length="24 notes", seed=7, backend=backend)
    by_path = generate(model=str(modelzoo.default_model_dir()), n=2, length="24 notes", seed=7,
                       backend=backend)
    assert len(by_name) == 2
    for a, b in zip(by_name, by_path):
        assert len(a.notes) > 0
        np.testing.assert_array_equal(a.notes, b.notes)
    with pytest.raises(ModelFormatError, match="shipped: default"):
        generate(model="no-such-model", length=4)
    with pytest.raises(ModelFormatError, match="shipped: default"):
        engine.load("no-such-model")


def _notes(path: Path) -> list:
    return [(m.type, m.note, m.velocity, m.time) for m in mido.MidiFile(path)
            if m.type in ("note_on", "note_off")]


def test_cli_generate_by_name_and_by_path(tmp_path, capsys):
    base = ["-o", None, "--length", "16 notes", "--seed", "5", "-q"]
    outs = []
    for i, model in enumerate((["--model", "default"], ["default"],
                               [str(modelzoo.default_model_dir())])):
        out = tmp_path / f"p{i}.mid"
        args = ["generate", *model, *base]
        args[args.index(None)] = str(out)
        assert main(args) == 0
        outs.append(_notes(out))
    assert outs[0] and outs[0] == outs[1] == outs[2]
    assert main(["generate", "--model", "nope", "-o", str(tmp_path / "x.mid")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model 'nope': not a model directory here" in err[0] \
        and "shipped: default" in err[0]
    assert main(["generate", "--model", str(tmp_path / "nope"), "-o", str(tmp_path / "x.mid")]
                ) == 2
    assert "expected an existing model folder or a shipped model's name (shipped: default" in \
        capsys.readouterr().err
    assert main(["generate", "default", "--model", "default", "-o", str(tmp_path / "y.mid")]
                ) == 2
    assert capsys.readouterr().err.strip() == ("musgen generate: error: give the model once, "
                                               "as MODEL or --model")


def test_cli_info_lists_the_shipped_models_and_prints_a_card(capsys):
    m = modelzoo.shipped_models()[0]
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(m.name))
    assert f"codec v{m.codec_version}" in line and m.summary in line and "(default)" in line
    assert f"{m.size_bytes / 2 ** 20:.1f} MiB" in line
    assert main(["info", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["models"]
    assert listed == [x.to_dict() for x in modelzoo.shipped_models()]
    assert main(["info", "--model", "default"]) == 0
    assert capsys.readouterr().out == (m.path / "MODEL_CARD.md").read_text()
    assert main(["info", "--model", "default", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["name"] == m.name and card["card"] == (m.path / "MODEL_CARD.md").read_text()
    assert main(["info", "--model", "nope"]) == 2
    assert "shipped: default" in capsys.readouterr().err


def test_models_folder_is_package_data_of_the_wheel():
    """The wheel packages the whole python/musgen folder, the shipped models included."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["scikit-build"]
    assert config["wheel"]["packages"] == ["python/musgen"]
    assert not any("models" in str(x) for x in config.get("wheel", {}).get("exclude", []))
    assert (modelzoo.default_model_dir() / "weights.safetensors").is_file()
