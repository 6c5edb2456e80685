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
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ._io import atomic_write_bytes
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
]

FORMAT = "musgen.model"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
MODEL_KINDS = ("lstm_lm", "paper")
_MAX_HEADER = 100 * 1024 * 1024


# ----------------------------------------------------------------------------- safetensors
def write_safetensors(path, tensors: dict, metadata: dict | None = None) -> None:
    """Write float32 tensors (name -> array) as a safetensors file, atomically."""
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
    atomic_write_bytes(path, struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs))


def read_safetensors(path) -> tuple[dict, dict]:
    """Read a safetensors file of float32 tensors -> (tensors, metadata).

    Every way the file can lie (header size, JSON, dtype, shape, offsets out of range,
    overlapping or gapped data) raises ModelFormatError naming the file and tensor.
    """
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
    try:
        header = json.loads(data[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path}: header must be a JSON object")
    body = memoryview(data)[8 + hlen:]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    spans = []
    for name, info in header.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict):
            raise ModelFormatError(f"{where}: entry must be an object")
        if info.get("dtype") != "F32":
            raise ModelFormatError(f"{where}: dtype {info.get('dtype')!r}, expected 'F32' "
                                   "(float32)")
        shape = info.get("shape")
        offs = info.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ModelFormatError(f"{where}: shape {shape!r} is not a list of sizes")
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) for o in offs)):
            raise ModelFormatError(f"{where}: data_offsets {offs!r} is not [begin, end]")
        begin, end = offs
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= begin <= end <= len(body)):
            raise ModelFormatError(f"{where}: data_offsets [{begin}, {end}] outside the "
                                   f"{len(body)}-byte data section (file truncated?)")
        if end - begin != count * 4:
            raise ModelFormatError(f"{where}: data_offsets span {end - begin} bytes but shape "
                                   f"{shape} of float32 needs {count * 4}")
        spans.append((begin, end, name))
        arr = np.frombuffer(body[begin:end], dtype="<f4").reshape(shape).astype(np.float32)
        tensors[name] = arr
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            kind = "overlaps the previous tensor" if begin < pos else "leaves a gap"
            raise ModelFormatError(f"{path}: tensor {name!r}: data_offsets [{begin}, {end}] "
                                   f"{kind} (expected to start at {pos})")
        pos = end
    if pos != len(body):
        raise ModelFormatError(f"{path}: {len(body) - pos} trailing bytes after the last tensor")
    return tensors, metadata


# ----------------------------------------------------------------------------- config
def expected_tensors(model: dict, where: str = CONFIG_NAME) -> dict:
    """The tensor names and shapes that a ``config["model"]`` section requires."""
    def need(key, typ=int):
        if key not in model:
            raise ModelFormatError(f"{where}: model.{key} is missing")
        val = model[key]
        if typ is int and (not isinstance(val, int) or isinstance(val, bool) or val <= 0):
            raise ModelFormatError(f"{where}: model.{key} = {val!r}, expected a positive integer")
        if typ is list and (not isinstance(val, list) or not val or not all(
                isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in val)):
            raise ModelFormatError(f"{where}: model.{key} = {val!r}, expected a non-empty list "
                                   "of positive integers")
        return val

    kind = model.get("kind")
    if kind not in MODEL_KINDS:
        raise ModelFormatError(f"{where}: model.kind = {kind!r}, expected one of {MODEL_KINDS}")
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
        dense = list(model.get("dense_units", [])) + [model["n_features"]]
        for j, d in enumerate(dense):
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
    try:
        config = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFormatError(f"{path}: 'format' is {config.get('format') if isinstance(config, dict) else None!r}, "
                               f"expected {FORMAT!r}")
    ver = config.get("format_version")
    if ver != FORMAT_VERSION:
        raise ModelFormatError(f"{path}: format_version {ver!r} is not supported "
                               f"(this musgen reads version {FORMAT_VERSION})")
    if not isinstance(config.get("model"), dict):
        raise ModelFormatError(f"{path}: the 'model' section is missing")
    return config


def load_model_dir(model_dir) -> tuple[dict, dict]:
    """Load and validate a model directory -> (config, tensors). Never needs TensorFlow."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelFormatError(f"{model_dir}: not a model directory (expected a folder with "
                               f"{CONFIG_NAME} and {WEIGHTS_NAME})")
    config = load_config(model_dir)
    wpath = model_dir / WEIGHTS_NAME
    shapes = expected_tensors(config["model"], str(model_dir / CONFIG_NAME))
    tensors, _ = read_safetensors(wpath)
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
        raise ModelFormatError(f"{wpath}: unexpected tensor(s) {extra} for this architecture")
    return config, tensors


def save_model_dir(model_dir, config: dict, tensors: dict) -> Path:
    """Write config.json and weights.safetensors (validated against each other) atomically."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    config = dict(config)
    config["format"] = FORMAT
    config["format_version"] = FORMAT_VERSION
    shapes = expected_tensors(config["model"], "config")
    for name, shape in shapes.items():
        if name not in tensors or tuple(np.shape(tensors[name])) != tuple(shape):
            got = None if name not in tensors else list(np.shape(tensors[name]))
            raise ModelFormatError(f"save_model_dir: tensor {name!r} has shape {got}, the config "
                                   f"needs {list(shape)}")
    write_safetensors(model_dir / WEIGHTS_NAME, {k: tensors[k] for k in shapes})
    atomic_write_bytes(model_dir / CONFIG_NAME,
                       (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    return model_dir
