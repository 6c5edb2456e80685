"""The Engine facade: validation, backend choice, and the one Python signature of each call."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import _backend
from ..errors import ModelFormatError
from ..modeldir import CONFIG_NAME, load_model_dir
from ..modelzoo import resolve_model
from ._numpy import NumpyModel

__all__ = ["Engine", "TokenStreams", "load"]


PRECISIONS = ("float32", "float16")


def load(model_dir: str | os.PathLike, *, backend: str | None = None,
         precision: str = "float32") -> "Engine":
    """Load a model directory and return an engine.

    Parameters
    ----------
    model_dir : path or str
        Folder with ``config.json`` and ``weights.safetensors`` (see ``musgen.modeldir``), or
        the name of a model shipped with musgen (``musgen info`` lists them; an existing path
        of the same name wins).
    backend : {"cpp", "python", "cuda", "auto"} or None
        None reads ``MUSGEN_BACKEND`` (default auto: C++ when built, else NumPy).
    precision : {"float32", "float16"}
        How the weights read at every step are stored (CPU backends). "float16" rounds every
        LSTM kernel, recurrent kernel and dense/head kernel to IEEE half precision, halving the
        bytes a step reads (about 1.7x faster at batch 1 on 2x512 models); the arithmetic stays
        float32 and embeddings and biases stay float32. It is an opt-in approximation: logits
        move by about 1e-3 and sampled tokens can differ from float32's. Both CPU backends
        compute with the same rounded weights.

    Raises
    ------
    ModelFormatError
        The folder, config or weights are missing, damaged or do not match each other.
    BackendUnavailableError
        The requested backend is not built or not usable on this machine.
    ValueError
        An unknown precision, or float16 asked of the CUDA backend.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision: {precision!r}, expected one of {', '.join(PRECISIONS)}")
    name = _backend.resolve(backend, engine=True)
    if name == "cuda" and precision != "float32":
        raise ValueError("precision: float16 weights are a CPU engine option (backend 'cpp' or "
                         "'python'); the CUDA engine computes in float32")
    if name == "cpp" and _backend.requested(backend) == "auto":
        from ._cpp import has_cpp_engine

        if not has_cpp_engine():  # a core built without the engine: auto means "best available"
            name = "python"
    model_dir = resolve_model(model_dir)
    try:
        config, tensors = load_model_dir(model_dir)
    except UnicodeDecodeError as exc:  # a config.json that is not UTF-8 text
        raise ModelFormatError(f"{Path(model_dir) / CONFIG_NAME}: not UTF-8 text ({exc})"
                               ) from exc
    return Engine(config, tensors, name, Path(model_dir), precision)


def rounded_to_float16(tensors: dict) -> dict:
    """The tensors a float16 engine computes with: every kernel and recurrent kernel rounded to
    the nearest IEEE half (ties to even) and widened back; embeddings and biases unchanged.
    Raises ModelFormatError for a kernel value beyond float16's finite range."""
    out = {}
    for name, value in tensors.items():
        x = np.asarray(value, dtype=np.float32)
        if name.endswith("kernel"):
            big = np.flatnonzero(~(np.abs(x) < 65520.0))
            if big.size:
                raise ModelFormatError(
                    f"tensor {name!r} holds {x.flat[big[0]]} at index {big[0]}, outside "
                    "float16's finite range; use precision float32")
            x = x.astype(np.float16).astype(np.float32)
        out[name] = x
    return out


class Engine:
    """A loaded model on one backend. Create it with :func:`load`.

    Attributes
    ----------
    config : dict
        The model directory's ``config.json``.
    backend : str
        "cpp", "python" or "cuda".
    kind : str
        "lstm_lm" (token language model) or "paper" (note-feature regression).
    precision : str
        "float32" or "float16" (see :func:`load`).
    """

    def __init__(self, config: dict, tensors: dict, backend: str, path: Path | None = None,
                 precision: str = "float32"):
        self.config = config
        self.backend = backend
        self.path = path
        self.precision = precision
        self.kind = config["model"]["kind"]
        self._np = NumpyModel(config, rounded_to_float16(tensors) if precision == "float16"
                              else tensors)
        self._cpp = None
        if backend == "cpp":
            from ._cpp import build_cpp_engine

            self._cpp = build_cpp_engine(config, tensors, precision)
        elif backend == "cuda":  # resolve() returns "cuda" only with a usable device
            from ._cuda import build_cuda_engine

            self._cpp = build_cuda_engine(config, tensors)
        self._codec = None

    def __repr__(self) -> str:
        m = self.config["model"]
        extra = "" if self.precision == "float32" else f", precision={self.precision!r}"
        return (f"Engine(kind={self.kind!r}, lstm_units={m['lstm_units']}, "
                f"backend={self.backend!r}{extra}, "
                f"path={str(self.path) if self.path else None!r})")

    # ------------------------------------------------------------------------- properties
    @property
    def vocab_size(self) -> int:
        """Number of token ids (kind lstm_lm)."""
        self._need_kind("lstm_lm", "vocab_size")
        return self._np.vocab_size

    @property
    def codec(self):
        """The CodecConfig saved with the model (kind lstm_lm)."""
        if self._codec is None:
            from ..codec import CodecConfig

            if "codec" not in self.config:
                raise ModelFormatError(f"{self.path}: config.json has no 'codec' section")
            self._codec = CodecConfig.from_dict(self.config["codec"])
        return self._codec

    def _need_kind(self, kind: str, what: str) -> None:
        if self.kind != kind:
            raise TypeError(f"Engine.{what} needs a model of kind {kind!r}; this one is "
                            f"{self.kind!r}")

    # ------------------------------------------------------------------------- teacher forcing
    def logits(self, tokens) -> np.ndarray:
        """Teacher-forced logits from a zero state.

        Parameters
        ----------
        tokens : int array [B, T] or [T]
            Token ids in ``[0, vocab_size)``; a 1-D array is one stream (B = 1).

        Returns
        -------
        float32 array [B, T, vocab_size]
            ``logits[b, t]`` scores the token that follows ``tokens[b, :t + 1]``.
        """
        self._need_kind("lstm_lm", "logits")
        tok = _as_tokens(tokens, self._np.vocab_size)
        if tok.shape[1] == 0:
            return np.zeros((tok.shape[0], 0, self._np.vocab_size), np.float32)
        if self._cpp is not None:
            return self._cpp.logits(tok)
        out, _ = self._np.sequence(tok)
        return out

    def predict(self, features) -> np.ndarray:
        """Teacher-forced outputs of a paper model: features [B, T, F] or [T, F] -> [B, T, F]."""
        self._need_kind("paper", "predict")
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != self._np.n_features:
            raise ValueError(f"features: shape {list(np.shape(features))}, expected [B, T, "
                             f"{self._np.n_features}] or [T, {self._np.n_features}]")
        if not np.all(np.isfinite(x)):
            raise ValueError("features: contains NaN or infinite values")
        if x.shape[1] == 0:
            return np.zeros(x.shape, np.float32)
        if self._cpp is not None:
            return self._cpp.predict(np.ascontiguousarray(x))
        out, _ = self._np.sequence(x)
        return out


    def generate_features(self, primer, steps: int) -> np.ndarray:
        """Autoregressive paper-model generation: each predicted row becomes the next input.

        Parameters
        ----------
        primer : float array [B, P, F] or [P, F], P >= 1
            Feature rows (pitch, velocity, time delta) that warm the state.
        steps : int
            Rows to generate after the primer.

        Returns
        -------
        float32 array [B, steps, F]
        """
        self._need_kind("paper", "generate_features")
        F = self._np.n_features
        x = np.asarray(primer, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1] < 1 or x.shape[2] != F:
            raise ValueError(f"primer: shape {list(np.shape(primer))}, expected [B, P, {F}] or "
                             f"[P, {F}] with P >= 1")
        if not np.all(np.isfinite(x)):
            raise ValueError("primer: contains NaN or infinite values")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps: {steps!r}, expected a non-negative integer")
        if self._cpp is not None:
            return self._cpp.generate_features(np.ascontiguousarray(x), int(steps))
        out = np.zeros((x.shape[0], int(steps), F), np.float32)
        y, state = self._np.sequence(x)
        y = y[:, -1]
        for t in range(int(steps)):
            out[:, t] = y
            if t + 1 < steps:
                y, state = self._np.step(y, state)
        return out

    # ------------------------------------------------------------------------- sampling
    def generate_tokens(self, n: int = 1, *, primer, length: int = 256, unit: str = "tokens",
                        temperature=1.0, top_k=None, top_p=None, seed=None, grammar=None,
                        eos_id: int | None = None, clock_steps=None, is_note=None,
                        max_tokens: int | None = None, threads: int | None = None,
                        progress=None, rules=None) -> "TokenStreams":
        """Sample ``n`` independent token streams (the whole loop runs in C++ on that backend).

        Parameters
        ----------
        n : int
            Number of streams.
        primer : int array [P] (shared) or [n, P]
            Tokens that warm the state (P >= 1, e.g. just BOS); generation continues after them.
        length : int
            Budget in ``unit``: "tokens", "notes" (tokens with ``is_note``) or "steps" (the sum of
            ``clock_steps``, e.g. grid steps). Without ``rules``, when it is reached a stream
            stops at the first point the grammar may end (``can_end``), so the last event is
            always complete; with ``rules`` the rules' ending decides.
        temperature, top_k, top_p : scalar or sequence of n
            0 temperature is greedy; ``top_k`` None/0 and ``top_p`` None/1 disable the filters.
        seed : None, int or sequence of n ints
            Philox key per stream (see ``musgen.engine.philox``).
        grammar : object with ``table`` int32 [S, V], ``start_state``, ``can_end`` bool [S]; or None
            for no constraint.
        eos_id : int or None
            Sampling it ends the stream (it is included in the output); allowed only where can_end.
        max_tokens : int or None
            Hard cap of generated tokens per stream (default ``length`` + 64 for unit tokens,
            else 64 * length + 64). Memory follows the tokens actually generated, not the cap.
        threads : int or None
            C++ threads (None: all cores): split over the streams, or, with fewer streams than
            threads, sharing each step's matrix work. Results do not depend on it.
        progress : callable(int) or None
            Called with the number of tokens generated since the last call.
        rules : musgen.engine.rules.Rules or None
            The generation rules (min_length, endings, bars and parts, voices, static masks and
            biases, density); their tables must have this vocabulary. None: the grammar and the
            budget stop only. The clock steps and notes of the budget then come from the rules'
            tables.

        Returns
        -------
        TokenStreams: a list of n int32 arrays, the generated tokens of each stream (the primer
        not included), with ``reasons`` (why each stopped, ``rules.REASONS``) and
        ``rows_stepped`` (rows the engine computed a step for; None on the NumPy backend).
        """
        self._need_kind("lstm_lm", "generate_tokens")
        V = self._np.vocab_size
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n: {n!r}, expected a non-negative integer")
        n = int(n)
        if unit not in LENGTH_UNITS:
            raise ValueError(f"unit: {unit!r}, expected one of {LENGTH_UNITS}")
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"length: {length!r}, expected a non-negative integer")
        kind = LENGTH_UNITS.index(unit)
        if max_tokens is None:
            max_tokens = int(length) + 64 if kind == 0 else 16 * int(length) + 64
        if max_tokens < 0:
            raise ValueError(f"max_tokens: {max_tokens}, expected >= 0")
        p = np.asarray(primer)
        if p.ndim == 1:
            p = np.broadcast_to(p, (n, p.shape[0]))
        if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 1:
            raise ValueError(f"primer: shape {list(np.shape(primer))}, expected [P] or [{n}, P] "
                             "with P >= 1")
        p = _as_tokens(p, V)
        table, start, can_end = _grammar_arrays(grammar, V)
        eos = -1 if eos_id is None else int(eos_id)
        if not -1 <= eos < V:
            raise ValueError(f"eos_id: {eos_id} outside the vocabulary [0, {V})")
        if rules is not None:
            if rules.tables.vocab_size != V:
                raise ValueError(f"rules: tables of {rules.tables.vocab_size} tokens, but the "
                                 f"model's vocabulary is {V}")
            clock_steps, is_note = rules.tables.clock_steps, rules.tables.is_note
        clock, notes = _length_tables(clock_steps, is_note, V, kind)
        temps, ks, ps = _sampling_settings(n, temperature, top_k, top_p, V)
        seeds = stream_seeds(seed, n)
        args = (p, table, start, can_end, eos, clock, notes, kind, int(length), int(max_tokens),
                seeds, temps, ks, ps)
        if self._cpp is not None:
            flat, offsets, reasons, rows = _run_cpp(
                self._cpp, args, 0 if threads is None else int(threads), progress,
                None if rules is None else rules.as_dict())
            streams = [flat[offsets[i]:offsets[i + 1]] for i in range(n)]
        else:
            from .sampling import numpy_generate

            streams, reasons = numpy_generate(self._np, *args, progress=progress, rules=rules)
            rows = None
        return TokenStreams(streams, reasons=reasons, rows_stepped=rows)


class TokenStreams(list):
    """The streams of one ``generate_tokens`` call (a list of int32 arrays) and how they ended.

    Attributes
    ----------
    reasons : int8 [n]
        Why each stream stopped (``musgen.engine.rules.REASONS``: 1 closed at its ending,
        2 EOS after the budget, 3 EOS before it, 4 cut by max_tokens, 5 budget met).
    rows_stepped : int or None
        Stream rows the engine computed a step for after the warm-up (C++ and CUDA engines;
        the warm-up's logits give every stream its first token): (tokens made - n) divided by
        this is the share of stream-steps that made a kept token.
    """

    def __init__(self, streams, *, reasons, rows_stepped=None):
        super().__init__(streams)
        self.reasons = np.asarray(reasons, np.int8)
        self.rows_stepped = rows_stepped


def _grammar_arrays(grammar, V: int):
    """(table int32 [S, V], start state, can_end uint8 [S]) of a grammar, checked; no grammar
    is one state that allows everything."""
    if grammar is None:
        return np.zeros((1, V), np.int32), 0, np.ones(1, np.uint8)
    table = np.ascontiguousarray(grammar.table, dtype=np.int32)
    start = int(grammar.start_state)
    can_end = np.ascontiguousarray(grammar.can_end, dtype=np.uint8)
    if table.ndim != 2 or table.shape[1] != V or can_end.shape != (table.shape[0],):
        raise ValueError(f"grammar: table {list(table.shape)} and can_end "
                         f"{list(can_end.shape)} do not fit vocabulary {V}")
    if table.min() < -1 or table.max() >= table.shape[0]:
        raise ValueError("grammar: table entries must be -1 or a state index")
    if not 0 <= start < table.shape[0]:
        raise ValueError(f"grammar: start_state {start} out of range")
    return table, start, can_end


def _length_tables(clock_steps, is_note, V: int, kind: int):
    """(clock steps int32 [V], is-note uint8 [V]) for the length budget's unit."""
    clock = (np.zeros(V, np.int32) if clock_steps is None
             else np.ascontiguousarray(clock_steps, dtype=np.int32))
    notes = (np.zeros(V, np.uint8) if is_note is None
             else np.ascontiguousarray(is_note, dtype=np.uint8))
    if clock.shape != (V,) or notes.shape != (V,):
        raise ValueError(f"clock_steps / is_note: expected [{V}] arrays")
    if kind == 1 and is_note is None:
        raise ValueError("unit 'notes' needs is_note (which tokens are notes)")
    if kind == 2 and clock_steps is None:
        raise ValueError("unit 'steps' needs clock_steps (grid steps per token)")
    return clock, notes


def _sampling_settings(n: int, temperature, top_k, top_p, V: int):
    """Per-stream (temperature float32, top_k int32, top_p float32) arrays, checked."""
    temps = _per_stream(temperature, n, np.float32, "temperature", 1.0)
    ks = _per_stream(0 if top_k is None else top_k, n, np.int64, "top_k", 0)
    ps = _per_stream(1.0 if top_p is None else top_p, n, np.float32, "top_p", 1.0)
    if not np.all(np.isfinite(temps)) or np.any(temps < 0):
        raise ValueError("temperature: must be finite and >= 0 (0 = greedy)")
    if np.any(ks < 0):
        raise ValueError("top_k: must be >= 0 (0 or None = off)")
    if not np.all(np.isfinite(ps)) or np.any(ps <= 0) or np.any(ps > 1):
        raise ValueError("top_p: must be in (0, 1] (1 or None = off)")
    return temps, np.minimum(ks, V).astype(np.int32), ps


def _as_tokens(tokens, vocab: int) -> np.ndarray:
    """Validate token ids -> contiguous int32 [B, T]."""
    arr = np.asarray(tokens)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise ValueError(f"tokens: shape {list(arr.shape)}, expected [B, T] or [T]")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"tokens: dtype {arr.dtype}, expected integers")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab):
        bad = arr[(arr < 0) | (arr >= vocab)].flat[0]
        raise ValueError(f"tokens: id {int(bad)} outside the vocabulary [0, {vocab})")
    return np.ascontiguousarray(arr, dtype=np.int32)


LENGTH_UNITS = ("tokens", "notes", "steps")


def _per_stream(value, n: int, dtype, name: str, default) -> np.ndarray:
    """A scalar (same for every stream) or a length-n sequence -> array [n]."""
    if value is None:
        value = default
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or {n} values (one per stream), got shape "
                         f"{list(arr.shape)}")
    return arr.astype(dtype)


def stream_seeds(seed, n: int) -> np.ndarray:
    """Seeds uint64 [n]: None draws one fresh 64-bit seed for the batch; an int is shared by all
    streams (they still differ: the stream index is part of the Philox counter); a sequence
    gives each stream its own."""
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    arr = np.asarray(seed, dtype=object)
    vals = [arr.item()] * n if arr.ndim == 0 else list(arr.reshape(-1))
    if len(vals) != n:
        raise ValueError(f"seed: expected an int or {n} ints (one per stream), got {len(vals)}")
    out = np.empty(n, np.uint64)
    for i, v in enumerate(vals):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"seed: {v!r} is not an integer")
        if not 0 <= int(v) < 2**64:
            raise ValueError(f"seed: {int(v)} is outside [0, 2**64)")
        out[i] = int(v)
    return out


def _run_cpp(cpp, args, threads: int, progress, rules):
    """Call the C++ loop -> (tokens, offsets, reasons, rows stepped); with a progress callback,
    poll its token counter from this thread."""
    import threading

    from .. import _backend

    counter = _backend.core().EngineProgress()  # every engine's generate() accepts it
    if progress is None:
        flat, offsets, reasons = cpp.generate(*args, threads=threads, progress=counter,
                                              rules=rules)
        return flat, offsets, reasons, counter.rows
    result: dict = {}

    def work():
        try:
            result["value"] = cpp.generate(*args, threads=threads, progress=counter, rules=rules)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=work, name="musgen-generate", daemon=True)
    worker.start()
    seen = 0
    while worker.is_alive():
        worker.join(0.1)
        now = counter.value
        if now > seen:
            progress(now - seen)
            seen = now
    if "error" in result:
        raise result["error"]
    if counter.value > seen:
        progress(counter.value - seen)
    return (*result["value"], counter.rows)
