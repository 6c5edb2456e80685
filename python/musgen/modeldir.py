"""The model directory: ``config.json`` + ``weights.safetensors`` (float32, Keras layout).

This module is the one definition of the format. Training writes it, every engine reads it, and
nothing here needs TensorFlow. Damaged or mismatched files raise ModelFormatError naming the file
and the tensor.

Tensor names (Keras layout, gate order i, f, c, o):

* ``embedding/embeddings``          [vocab, embedding_dim]          (kind ``lstm_lm``)
* ``lstm_{k}/kernel``               [in_k, 4 * units_k]
* ``lstm_{k}/recurrent_kernel``     [units_k, 4 * units_k]
* ``lstm_{k}/bias``                 [4 * units_k]
* ``head/kernel``, ``head/bias``    [units_last, vocab], [vocab]    (kind ``lstm_lm``)
* ``dense_{j}/kernel``, ``dense_{j}/bias``                          (kind ``paper``)

``config.json`` records ``weights_sha256``, the SHA-256 of ``weights.safetensors``, and loading
checks it (directories written before it existed have none and still load). Every damaged
directory raises ModelFormatError at load, never later.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import struct
from pathlib import Path

import numpy as np

from ._io import atomic_write_bytes, replace_dir, staging_dir
from .errors import ModelFormatError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "read_safetensors",
    "write_safetensors",
    "expected_tensors",
    "load_model_dir",
    "save_model_dir",
    "atomic_write_bytes",
    "parse_json",
    "check_codec",
    "SHA256_KEY",
]

FORMAT = "musgen.model"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
MODEL_KINDS = ("lstm_lm", "paper")
DENSE_ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
SHA256_KEY = "weights_sha256"
_MAX_HEADER = 100 * 1024 * 1024
_MAX_DIMS = 8
_MAX_DIM = 2 ** 31


def parse_json(data: bytes, where) -> object:
    """JSON text -> value; every way it can fail (bad UTF-8, bad syntax, nesting deep enough to
    exhaust the recursion limit, an integer too long to convert) raises ModelFormatError."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                               ) from None
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ModelFormatError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than int() converts
        raise ModelFormatError(f"{where}: JSON value out of range ({exc})") from None


# ----------------------------------------------------------------------------- safetensors
def write_safetensors(path, tensors: dict, metadata: dict | None = None) -> str:
    """Write float32 tensors (name -> array) as a safetensors file, atomically; returns the
    file's SHA-256 (hex)."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name], dtype="<f4")
        nbytes = arr.nbytes
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + nbytes]}
        blobs.append(arr.tobytes())
        offset += nbytes
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    data = struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def read_safetensors(path) -> tuple[dict, dict]:
    """Read a safetensors file of float32 tensors -> (tensors, metadata).

    Every way the file can lie (header size, JSON, dtype, shape, offsets out of range,
    overlapping or gapped data) raises ModelFormatError naming the file and tensor.
    """
    return _read_safetensors(path)[:2]


def _read_safetensors(path) -> tuple[dict, dict, str]:
    """(tensors, metadata, SHA-256 hex of the file's bytes)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read weights ({exc.strerror or exc})") from exc
    if len(data) < 8:
        raise ModelFormatError(f"{path}: file is {len(data)} bytes, too short for a safetensors "
                               "header (expected at least 8)")
    (hlen,) = struct.unpack_from("<Q", data, 0)
    if hlen > len(data) - 8 or hlen > _MAX_HEADER:
        raise ModelFormatError(f"{path}: header length {hlen} exceeds the file size "
                               f"({len(data)} bytes): truncated or not a safetensors file")
    header = parse_json(data[8:8 + hlen], f"{path}: header")
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path}: header must be a JSON object")
    body = memoryview(data)[8 + hlen:]
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{path}: __metadata__ must be a JSON object")
    tensors = {}
    spans = []
    for name, info in header.items():
        begin, end, shape = _tensor_entry(f"{path}: tensor {_short(name)}", info, len(body))
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(body[begin:end], dtype="<f4").reshape(shape).astype(
            np.float32)
    _check_layout(path, spans, len(body))
    return tensors, metadata, hashlib.sha256(data).hexdigest()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tensor_entry(where: str, info, body_size: int) -> tuple[int, int, tuple]:
    """(begin, end, shape) of one header entry, checked against the data section: sizes are
    multiplied as Python integers, so no product can overflow or wrap."""
    if not isinstance(info, dict):
        raise ModelFormatError(f"{where}: entry must be an object")
    if info.get("dtype") != "F32":
        raise ModelFormatError(f"{where}: dtype {_short(info.get('dtype'))}, expected 'F32' "
                               "(float32)")
    shape = info.get("shape")
    offs = info.get("data_offsets")
    if (not isinstance(shape, list) or len(shape) > _MAX_DIMS
            or not all(_is_int(d) and 0 <= d <= _MAX_DIM for d in shape)):
        raise ModelFormatError(f"{where}: shape {_short(shape)} is not a list of at most "
                               f"{_MAX_DIMS} sizes in [0, {_MAX_DIM}]")
    if not isinstance(offs, list) or len(offs) != 2 or not all(_is_int(o) for o in offs):
        raise ModelFormatError(f"{where}: data_offsets {_short(offs)} is not [begin, end]")
    begin, end = offs
    if not (0 <= begin <= end <= body_size):
        raise ModelFormatError(f"{where}: data_offsets [{_short(begin)}, {_short(end)}] outside "
                               f"the {body_size}-byte data section (file truncated?)")
    count = math.prod(shape)
    if end - begin != count * 4:
        raise ModelFormatError(f"{where}: data_offsets span {end - begin} bytes but shape "
                               f"{shape} of float32 needs {count * 4}")
    return begin, end, tuple(shape)


def _check_layout(path: Path, spans: list, body_size: int) -> None:
    """The tensors tile the data section: no overlap, no gap, no trailing bytes."""
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            kind = "overlaps the previous tensor" if begin < pos else "leaves a gap"
            raise ModelFormatError(f"{path}: tensor {_short(name)}: data_offsets [{begin}, {end}] "
                                   f"{kind} (expected to start at {pos})")
        pos = end
    if pos != body_size:
        raise ModelFormatError(f"{path}: {body_size - pos} trailing bytes after the last tensor")


def _short(value, limit: int = 80) -> str:
    """repr() cut to ``limit`` characters: a damaged file may hold enormous values."""
    if _is_int(value) and value.bit_length() > 256:
        return f"<integer of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # integers past int->str's digit limit, deep nesting
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ----------------------------------------------------------------------------- config
def expected_tensors(model: dict, where: str = CONFIG_NAME) -> dict:
    """The tensor names and shapes that a ``config["model"]`` section requires."""
    if not isinstance(model, dict):
        raise ModelFormatError(f"{where}: the 'model' section must be an object")

    def need(key, typ=int):
        if key not in model:
            raise ModelFormatError(f"{where}: model.{key} is missing")
        val = model[key]
        if typ is int and (not _is_int(val) or not 0 < val <= _MAX_DIM):
            raise ModelFormatError(f"{where}: model.{key} = {_short(val)}, expected a positive "
                                   f"integer up to {_MAX_DIM}")
        if typ is list and (not isinstance(val, list) or not val or not all(
                _is_int(u) and 0 < u <= _MAX_DIM for u in val)):
            raise ModelFormatError(f"{where}: model.{key} = {_short(val)}, expected a non-empty "
                                   "list of positive integers")
        return val

    kind = model.get("kind")
    if kind not in MODEL_KINDS:
        raise ModelFormatError(f"{where}: model.kind = {_short(kind)}, expected one of "
                               f"{MODEL_KINDS}")
    units = need("lstm_units", list)
    shapes: dict = {}
    if kind == "lstm_lm":
        vocab, emb = need("vocab_size"), need("embedding_dim")
        shapes["embedding/embeddings"] = (vocab, emb)
        width = emb
    else:
        width = need("n_features")
    for k, u in enumerate(units):
        shapes[f"lstm_{k}/kernel"] = (width, 4 * u)
        shapes[f"lstm_{k}/recurrent_kernel"] = (u, 4 * u)
        shapes[f"lstm_{k}/bias"] = (4 * u,)
        width = u
    if kind == "lstm_lm":
        shapes["head/kernel"] = (width, vocab)
        shapes["head/bias"] = (vocab,)
    else:
        dense = model.get("dense_units", [])
        if not isinstance(dense, list) or not all(_is_int(d) and 0 < d <= _MAX_DIM
                                                   for d in dense):
            raise ModelFormatError(f"{where}: model.dense_units = {_short(dense)}, expected a "
                                   "list of positive integers")
        activation = model.get("dense_activation", "relu")
        if activation not in DENSE_ACTIVATIONS:
            raise ModelFormatError(f"{where}: model.dense_activation = {_short(activation)}, "
                                   f"expected one of {DENSE_ACTIVATIONS}")
        for j, d in enumerate(list(dense) + [model["n_features"]]):
            shapes[f"dense_{j}/kernel"] = (width, d)
            shapes[f"dense_{j}/bias"] = (d,)
            width = d
    return shapes


def load_config(model_dir) -> dict:
    path = Path(model_dir) / CONFIG_NAME
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read the model config ({exc.strerror or exc})"
                               ) from exc
    config = parse_json(data, path)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise ModelFormatError(f"{path}: 'format' is {_short(found)}, expected {FORMAT!r}")
    ver = config.get("format_version")
    if ver != FORMAT_VERSION or isinstance(ver, bool):
        raise ModelFormatError(f"{path}: format_version {_short(ver)} is not supported "
                               f"(this musgen reads version {FORMAT_VERSION})")
    if not isinstance(config.get("model"), dict):
        raise ModelFormatError(f"{path}: the 'model' section is missing")
    sha = config.get(SHA256_KEY)
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64
                                and all(c in "0123456789abcdefABCDEF" for c in sha)):
        raise ModelFormatError(f"{path}: {SHA256_KEY} = {_short(sha)}, expected 64 hex digits")
    return config


def check_codec(config: dict, where) -> None:
    """A token model's codec section must rebuild (CodecConfig.from_dict) and give the model's
    vocabulary size: a damaged one fails here, at load, rather than at generate()."""
    if config["model"].get("kind") != "lstm_lm" or "codec" not in config:
        return
    from .codec import CodecConfig
    from .errors import CodecError

    try:
        codec = CodecConfig.from_dict(config["codec"])
    except (CodecError, TypeError, ValueError, KeyError, OverflowError, RecursionError) as exc:
        raise ModelFormatError(f"{where}: the codec section is damaged: {_one_line(exc)}"
                               ) from None
    if codec.vocab_size != config["model"]["vocab_size"]:
        raise ModelFormatError(f"{where}: the codec has {codec.vocab_size} tokens but "
                               f"model.vocab_size is {config['model']['vocab_size']}")


def _one_line(exc: BaseException) -> str:
    try:
        text = " ".join(str(exc).split())
    except (ValueError, RecursionError):
        text = ""
    text = text if len(text) <= 300 else text[:297] + "..."
    return text or type(exc).__name__


def load_model_dir(model_dir) -> tuple[dict, dict]:
    """Load and validate a model directory -> (config, tensors). Never needs TensorFlow."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelFormatError(f"{model_dir}: not a model directory (expected a folder with "
                               f"{CONFIG_NAME} and {WEIGHTS_NAME})")
    config = load_config(model_dir)
    wpath = model_dir / WEIGHTS_NAME
    cpath = str(model_dir / CONFIG_NAME)
    shapes = expected_tensors(config["model"], cpath)
    check_codec(config, cpath)
    tensors, _, digest = _read_safetensors(wpath)
    for name, shape in shapes.items():
        if name not in tensors:
            raise ModelFormatError(f"{wpath}: tensor {name!r} is missing (the config's "
                                   f"architecture needs shape {list(shape)})")
        if tuple(tensors[name].shape) != tuple(shape):
            raise ModelFormatError(f"{wpath}: tensor {name!r} has shape "
                                   f"{list(tensors[name].shape)}, the config needs {list(shape)}")
        if not np.all(np.isfinite(tensors[name])):
            raise ModelFormatError(f"{wpath}: tensor {name!r} contains NaN or infinite values")
    extra = sorted(set(tensors) - set(shapes))
    if extra:
        raise ModelFormatError(f"{wpath}: unexpected tensor(s) {_short(extra, 200)} for this "
                               "architecture")
    # Last, so that damage the structure shows is reported as such; this catches the rest
    # (flipped bits in the numbers).
    recorded = config.get(SHA256_KEY)
    if recorded is not None and digest != recorded.lower():
        raise ModelFormatError(f"{wpath}: SHA-256 {digest} differs from the {recorded} recorded "
                               f"in {CONFIG_NAME} (the weights are damaged or were replaced)")
    return config, tensors


def save_model_dir(model_dir, config: dict, tensors: dict) -> Path:
    """Write config.json and weights.safetensors (validated against each other; the config
    records the weights' SHA-256).

    Both files are written into a staging folder beside ``model_dir`` that then takes its place
    in one atomic exchange, so a reader sees the old pair or the new pair, never a mix and never
    no directory. Other entries of an existing ``model_dir`` (``checkpoints/``, a model card)
    are carried over.
    """
    model_dir = Path(model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        raise ModelFormatError(f"{model_dir}: exists and is not a folder")
    config = dict(config)
    config["format"] = FORMAT
    config["format_version"] = FORMAT_VERSION
    config.pop(SHA256_KEY, None)
    shapes = expected_tensors(config["model"], "config")
    for name, shape in shapes.items():
        if name not in tensors or tuple(np.shape(tensors[name])) != tuple(shape):
            got = None if name not in tensors else list(np.shape(tensors[name]))
            raise ModelFormatError(f"save_model_dir: tensor {name!r} has shape {got}, the config "
                                   f"needs {list(shape)}")
    with staging_dir(model_dir) as stage:
        sha = write_safetensors(stage / WEIGHTS_NAME, {k: tensors[k] for k in shapes})
        config[SHA256_KEY] = sha
        atomic_write_bytes(stage / CONFIG_NAME,
                           (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
        if model_dir.is_dir():
            for entry in model_dir.iterdir():
                if entry.name not in (CONFIG_NAME, WEIGHTS_NAME):
                    _link_copy(entry, stage / entry.name)
        replace_dir(stage, model_dir)
    return model_dir


def _link_copy(src: Path, dst: Path) -> None:
    """Carry an entry over into the new folder by hard links (no bytes copied; the old folder
    keeps its own links until it is removed, so a writer killed half-way loses nothing)."""
    def link(a, b):
        try:
            os.link(a, b)
        except OSError:  # another file system, or links not allowed: copy
            shutil.copy2(a, b)

    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=link)
    elif src.is_symlink():
        os.symlink(os.readlink(src), dst)
    else:
        link(src, dst)
