"""Python fuzz targets (hypothesis): the model-directory reader, the dataset reader and the
arguments of ``musgen generate``. Each ``check_*`` function states the property one input must
keep; the strategies below make hostile inputs from a valid one (JSON values swapped for
hostile ones, bytes flipped, files cut short). tests/test_fuzz.py runs them with a few examples
in every test run and ``nox -s fuzz`` with many (MUSGEN_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

from hypothesis import strategies as st

# --------------------------------------------------------------------------- hostile values
HOSTILE_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
    st.sampled_from([0, -1, 2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64, 10 ** 30]),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
)
HOSTILE_JSON = st.recursive(HOSTILE_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


def json_paths(value, prefix=()) -> list:
    """Every path (tuple of keys/indices) into a JSON value, the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += json_paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += json_paths(v, prefix + (i,))
    return out


def replaced(value, path: tuple, new):
    """``value`` with the item at ``path`` replaced by ``new`` (or removed when new is ...)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        if rest or new is not ...:
            out[head] = replaced(value[head], rest, new)
        else:
            del out[head]
        return out
    out = list(value)
    out[head] = replaced(value[head], rest, None if new is ... else new)
    return out


@st.composite
def json_mutation(draw, text: bytes) -> bytes:
    """A JSON document with one value swapped for a hostile one, removed, or deeply nested."""
    value = json.loads(text)
    path = draw(st.sampled_from(json_paths(value)))
    kind = draw(st.sampled_from(["value", "remove", "deep", "huge"]))
    if kind == "deep":  # spliced in as text: json itself cannot build or dump it
        depth = draw(st.sampled_from([50, 5000]))
        text = json.dumps(replaced(value, path, "@DEEP@"))
        return text.replace('"@DEEP@"', "[" * depth + "]" * depth, 1).encode()
    if kind == "huge":  # spliced in as text: int->str refuses past 4300 digits
        digits = draw(st.sampled_from([20, 400, 4400]))
        text = json.dumps(replaced(value, path, "@HUGE@"))
        return text.replace('"@HUGE@"', "7" * digits, 1).encode()
    if kind == "remove" and path:
        new = ...
    else:
        new = draw(HOSTILE_JSON)
    return json.dumps(replaced(value, path, new)).encode()


@st.composite
def byte_mutation(draw, data: bytes) -> bytes:
    """``data`` cut short, with bytes flipped, or with bytes inserted."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert"]))
    if kind == "truncate" or not data:
        return data[:draw(st.integers(0, max(0, len(data) - 1)))]
    out = bytearray(data)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= draw(st.integers(1, 255))
        return bytes(out)
    i = draw(st.integers(0, len(out)))
    return bytes(out[:i]) + draw(st.binary(min_size=1, max_size=16)) + bytes(out[i:])


@st.composite
def damaged_files(draw, files: dict) -> dict:
    """``files`` (name -> bytes) with one of them damaged: a JSON mutation when it is JSON
    (config.json, a safetensors header), else byte damage."""
    name = draw(st.sampled_from(sorted(files)))
    data = files[name]
    out = dict(files)
    if name.endswith(".safetensors") and draw(st.booleans()) and len(data) >= 8:
        n = int.from_bytes(data[:8], "little")
        header = draw(json_mutation(data[8:8 + n].rstrip()))
        header += b" " * (-len(header) % 8)
        out[name] = len(header).to_bytes(8, "little") + header + data[8 + n:]
    elif name.endswith(".jsonl") and data.strip() and draw(st.booleans()):
        lines = data.splitlines()
        k = draw(st.integers(0, len(lines) - 1))
        lines[k] = draw(json_mutation(lines[k]))
        out[name] = b"\n".join(lines) + b"\n"
    elif name.endswith(".json") and draw(st.booleans()):
        out[name] = draw(json_mutation(data))
    else:
        out[name] = draw(byte_mutation(data))
    return out


def write_files(folder: Path, files: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def read_files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------- properties
def check_model_dir(folder: Path, backend: str) -> None:
    """A model directory loads and generates, or ``load`` raises ModelFormatError naming one of
    its files; nothing else, and never later than load."""
    from musgen import engine, generation
    from musgen.errors import ModelFormatError

    try:
        eng = engine.load(folder, backend=backend)
    except ModelFormatError as exc:
        assert str(folder) in str(exc), exc
        return
    if eng.kind == "lstm_lm" and "codec" in eng.config:
        generation.generate(eng, length=3, seed=1, backend=backend)


def check_dataset(folder: Path) -> None:
    """A dataset folder opens and every piece and split can be read, or ``Dataset.open`` raises
    DatasetError naming the folder (the codec section, read on first use, may raise it too, and
    so may the paper features, computed on first use from the source files the dataset
    names)."""
    from musgen.data import Dataset, DatasetError

    try:
        ds = Dataset.open(folder)
        ds.codec
    except DatasetError as exc:
        assert str(folder) in str(exc), exc
        return
    for split in ("train", "valid", "test"):
        ds.split_indices(split)
    for i in range(len(ds)):
        ds.piece_tokens(i)
    try:
        for i in range(len(ds)):
            ds.piece_paper_features(i)
    except DatasetError as exc:
        assert str(folder) in str(exc), exc


#: Values each ``musgen generate`` option is tried with: valid ones and hostile text.
GENERATE_OPTIONS = {
    "--n": st.one_of(st.integers(-3, 3).map(str), st.text(max_size=6)),
    "--length": st.one_of(st.sampled_from(["8", "4 notes", "2 beats", "0", "-1", "10 bars",
                                           "3 tokens", "1e3", "nan", " 5 notes "]),
                          st.text(max_size=10)),
    "--temperature": st.one_of(st.sampled_from(["0", "1", "0.5", "-1", "nan", "inf", "1e400"]),
                               st.text(max_size=6)),
    "--top-k": st.one_of(st.integers(-5, 400).map(str), st.text(max_size=6)),
    "--top-p": st.one_of(st.sampled_from(["0", "0.5", "1", "1.5", "-0.1", "nan"]),
                         st.text(max_size=6)),
    "--seed": st.one_of(st.sampled_from(["0", "-1", str(2 ** 64), str(2 ** 64 - 1), "1.5"]),
                        st.text(max_size=6)),
    "--threads": st.one_of(st.integers(-4, 4).map(str), st.text(max_size=4)),
    "--precision": st.sampled_from(["float32", "float16", "float64", ""]),
    "--backend": st.sampled_from(["cpp", "python", "auto", "gpu", ""]),
    "--key": st.one_of(st.sampled_from(["D minor", "Bb", "F# dorian", "H", "C major blues",
                                        ""]), st.text(max_size=8)),
    "--scale-strictness": st.sampled_from(["0", "0.5", "1", "1.5", "-1", "nan"]),
    "--pitch-range": st.one_of(st.sampled_from(["48-84", "C3-C6", "90-40", "61-61", "0-200",
                                                "C-1..G9"]), st.text(max_size=8)),
    "--max-voices": st.one_of(st.integers(-1, 40).map(str), st.text(max_size=4)),
    "--density": st.sampled_from(["2", "0.1", "0", "-1", "inf", "x"]),
    "--ending": st.sampled_from(["auto", "beat", "bar", "model", "none", "soon"]),
    "--grace": st.sampled_from(["0", "4", "-1", "nan", "1e9"]),
    "--max-primer-tokens": st.sampled_from(["0", "1", "2", "100", "-5", "x"]),
}


@st.composite
def generate_argv(draw) -> list:
    """Arguments of ``musgen generate`` after MODEL -o OUT: a few options with drawn values."""
    names = draw(st.lists(st.sampled_from(sorted(GENERATE_OPTIONS)), max_size=4, unique=True))
    argv = []
    for name in names:
        argv += [name, draw(GENERATE_OPTIONS[name])]
    if draw(st.booleans()):
        argv.append("-q")
    return argv


def bounded_generate(argv: list) -> bool:
    """False for arguments that are valid but ask for more work than a fuzz run should do."""
    from musgen.generation import parse_length

    values = dict(zip(argv[::2], argv[1::2]))
    try:
        if int(values.get("--n", "1")) > 3:
            return False
        amount, _ = parse_length(values.get("--length", "8"))
        return amount <= 16
    except ValueError:
        return True


def check_generate_args(model: Path, out: Path, argv: list) -> None:
    """``musgen generate`` ends with status 0 (the files written), or with status 1 or 2 and
    exactly one line on standard error naming what was wrong; status 2 writes nothing."""
    from musgen.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["generate", str(model), "-o", str(out / "x.mid"), *argv])
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    assert rc in (0, 1, 2), (rc, lines)
    if rc == 0:
        assert (out / "x.mid").is_file() or any(out.glob("x-*.mid"))
        return
    problems = [ln for ln in lines if ln.startswith("musgen generate: ")]
    assert len(problems) == 1 and "Traceback" not in err.getvalue(), lines
    if rc == 2:
        assert os.listdir(out) == [], os.listdir(out)
