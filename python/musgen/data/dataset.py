"""Reading a dataset folder: ``Dataset.open`` maps the tokens into memory and checks that the
files agree with each other."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .format import (
    FORMAT,
    INFO_NAME,
    PAPER_NAME,
    PIECES_NAME,
    READABLE_VERSIONS,
    SPLIT_FOLDERS,
    SPLITS,
    TOKENS_NAME,
    DatasetError,
    Piece,
)

__all__ = ["Dataset"]


def _read_json(path: Path):
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return _parse_json(data, path)


def _parse_json(data: bytes, where):
    """JSON -> value; bad UTF-8 or syntax, nesting past the recursion limit and integers too
    long to convert all raise DatasetError naming ``where``."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise DatasetError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:
        raise DatasetError(f"{where}: JSON value out of range ({exc})") from None


_PIECE_TYPES = {"index": int, "source": str, "path": str, "sha1": str, "split": str,
                "split_by": str, "offset": int, "length": int, "n_notes": int,
                "note_offset": int}
#: Fields since format_version 2, absent (None) in older datasets and in version-1 codecs.
_OPTIONAL_TYPES = {"style": str, "key": str, "density": int, "programs": list,
                   "tempo_bpm": (int, float), "time_signature": str}


def _piece(line: str, where: str) -> Piece:
    """One pieces.jsonl record, every field of its type (ints not negative)."""
    try:
        row = _parse_json(line.encode("utf-8", "surrogateescape"), where)
    except DatasetError as exc:
        raise DatasetError(f"{where}: bad piece record ({str(exc)[len(where) + 2:]})") from None
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: bad piece record (expected a JSON object)")
    values = {}
    for name, typ in _PIECE_TYPES.items():
        value = row.get(name)
        if not isinstance(value, typ) or isinstance(value, bool) or (
                typ is int and not 0 <= value < 2 ** 62):
            raise DatasetError(f"{where}: bad piece record (field {name!r} is "
                               f"{type(value).__name__}, expected "
                               f"{'a non-negative int' if typ is int else 'a string'})")
        values[name] = value
    for name, typ in _OPTIONAL_TYPES.items():
        value = row.get(name)
        if value is None:
            continue
        if (not isinstance(value, typ) or isinstance(value, bool) or (
                name == "programs" and not all(isinstance(p, int) and 0 <= p <= 128
                                               for p in value))):
            raise DatasetError(f"{where}: bad piece record (field {name!r} is "
                               f"{type(value).__name__} {value!r:.40}, expected "
                               f"{'a list of programs 0..128' if name == 'programs' else typ})")
        values[name] = value
    return Piece(**values)


#: The most header tokens a version-2 piece can have: BOS, a Program token per part (at most
#: the 129 programs of the vocabulary, drums included), Key, Style, Density, Tempo, TimeSig.
MAX_HEADER = 1 + 129 + 5


def _header_lengths(ds) -> np.ndarray:
    """``Dataset.header_lengths``: the position after each piece's first TimeSig token."""
    out = np.zeros(len(ds.pieces), dtype=np.int64)
    codec = ds.codec
    if codec.version != 2:
        return out
    from ..codec.vocab import TYPE_TIMESIG

    is_meter = codec.token_types == TYPE_TIMESIG
    for i, (off, n) in enumerate(zip(ds.offsets.tolist(), ds.lengths.tolist())):
        head = np.asarray(ds.tokens[off:off + min(n, MAX_HEADER)])
        hit = np.flatnonzero(is_meter[head])
        out[i] = int(hit[0]) + 1 if hit.size else 0
    return out


class Dataset:
    """A prepared dataset, tokens memory-mapped (opening is cheap whatever the size).

    Attributes
    ----------
    path : Path
    info : dict
        ``dataset.json``.
    tokens : np.memmap of int32 [total_tokens]
        All pieces concatenated; piece ``i`` is ``tokens[offsets[i]:offsets[i] + lengths[i]]``.
    pieces : list of Piece
    offsets, lengths : int64 [n_pieces]
        Token offset and length of each piece.
    paper_features : ndarray of float32 [total_notes, 3]
        Per note: pitch, velocity, seconds since the previous onset. Memory-mapped from
        ``paper.npy`` when the dataset stores them; else computed from the source files on first
        use (``musgen.data.paper``), which raises DatasetError if a source is gone or changed.
    piece_note_offsets : int64 [n_pieces + 1]
        Piece ``i``'s notes are ``paper_features[piece_note_offsets[i]:piece_note_offsets[i+1]]``.
    """

    def __init__(self, path: Path, info: dict, tokens: np.ndarray, pieces: list[Piece],
                 paper: np.ndarray | None):
        self.path = path
        self.info = info
        self.tokens = tokens
        self.pieces = pieces
        self._paper = paper
        self.offsets = np.array([p.offset for p in pieces], dtype=np.int64)
        self.lengths = np.array([p.length for p in pieces], dtype=np.int64)
        notes = np.array([p.n_notes for p in pieces], dtype=np.int64)
        self.piece_note_offsets = np.concatenate([[0], np.cumsum(notes)]).astype(np.int64)
        self._split_of = np.array([p.split for p in pieces], dtype=object)
        self._codec = None
        self._headers = None

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Dataset":
        """Open a dataset folder; raise DatasetError naming the file if it is damaged."""
        path = Path(path)
        if not (path / INFO_NAME).is_file():
            raise DatasetError(f"{path}: not a musgen dataset (no {INFO_NAME}); make one with "
                               "`musgen prepare`")
        info = _read_json(path / INFO_NAME)
        found = info.get("format") if isinstance(info, dict) else type(info).__name__
        if found != FORMAT:
            raise DatasetError(f"{path / INFO_NAME}: format is {found!r}, expected {FORMAT!r}")
        if info.get("format_version") not in READABLE_VERSIONS:
            raise DatasetError(f"{path / INFO_NAME}: format_version {info.get('format_version')!r}"
                               f", this musgen reads versions "
                               f"{', '.join(map(str, READABLE_VERSIONS))}")
        tokens = cls._load_array(path / TOKENS_NAME, np.int32, 1)
        paper = None
        if (path / PAPER_NAME).exists():  # stored by prepare(paper_features=True) (or older)
            paper = cls._load_array(path / PAPER_NAME, np.float32, 2)
            if paper.shape[1:] != (3,):
                raise DatasetError(f"{path / PAPER_NAME}: shape {paper.shape}, expected "
                                   "[notes, 3]")
        pieces = []
        try:
            lines = (path / PIECES_NAME).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise DatasetError(f"{path / PIECES_NAME}: cannot read ({exc.strerror or exc})"
                               ) from exc
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path / PIECES_NAME}: not UTF-8 text ({exc.reason} at byte "
                               f"{exc.start})") from None
        tok_end = note_end = 0
        for lineno, line in enumerate(lines, 1):
            piece = _piece(line, f"{path / PIECES_NAME}:{lineno}")
            if (piece.index != len(pieces) or piece.offset != tok_end
                    or piece.note_offset != note_end or piece.length < 1
                    or piece.split not in SPLITS):
                raise DatasetError(f"{path / PIECES_NAME}:{lineno}: piece {piece.index} does not "
                                   f"follow piece {len(pieces) - 1} (offset {piece.offset}, "
                                   f"expected {tok_end}; split {piece.split!r})")
            tok_end += piece.length
            note_end += piece.n_notes
            pieces.append(piece)
        if tok_end != tokens.shape[0] or (paper is not None and note_end != paper.shape[0]):
            raise DatasetError(f"{path}: {PIECES_NAME} describes {tok_end} tokens and {note_end} "
                               f"notes, but {TOKENS_NAME} has {tokens.shape[0]}"
                               + ("" if paper is None else
                                  f" and {PAPER_NAME} has {paper.shape[0]}"))
        return cls(path, info, tokens, pieces, paper)

    @staticmethod
    def _load_array(path: Path, dtype, ndim: int) -> np.ndarray:
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - NumPy's header parser raises many kinds
            # (ValueError, EOFError, SyntaxError, tokenize.TokenError, ...) on damaged bytes
            raise DatasetError(f"{path}: cannot map ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:200]})") from None
        if arr.dtype != np.dtype(dtype) or arr.ndim != ndim:
            raise DatasetError(f"{path}: {arr.dtype} {arr.shape}, expected {np.dtype(dtype)} "
                               f"with {ndim} dimension(s)")
        return arr

    @property
    def paper_features(self) -> np.ndarray:
        if self._paper is None:
            from .paper import source_paper_features

            self._paper = source_paper_features(self)
        return self._paper

    @property
    def stores_paper_features(self) -> bool:
        """Whether ``paper.npy`` exists (else the features come from the source files)."""
        return (self.path / PAPER_NAME).exists()

    @property
    def codec(self):
        """The CodecConfig the tokens were made with (imported on first use); a damaged codec
        section raises DatasetError naming dataset.json."""
        if self._codec is None:
            from ..codec import CodecConfig
            from ..errors import CodecError

            try:
                self._codec = CodecConfig.from_dict(self.info.get("codec"))
            except (CodecError, TypeError, ValueError, KeyError, OverflowError) as exc:
                raise DatasetError(f"{self.path / INFO_NAME}: the codec section is damaged: "
                                   f"{' '.join(str(exc).split())[:300]}") from None
        return self._codec

    @property
    def header_lengths(self) -> np.ndarray:
        """Per piece, int64: the tokens of its header (BOS and the conditions up to and including
        the TimeSig token; codec version 2), or 0 when it has none (version 1). Training
        windows that start inside a piece are prefixed with these (``pipeline``)."""
        if self._headers is None:
            self._headers = _header_lengths(self)
        return self._headers

    def key_counts(self, split: str = "train", *, normalized: bool = False) -> dict:
        """Codec version 2: how many pieces of ``split`` have each Key condition, as
        ``{"C": 171, "Cm": 133, ...}`` (key names as in the vocabulary, most common first);
        ``{}`` for version 1. A trained model records its training split's counts, and
        ``generate(key=...)`` uses them to tell the keys the model knows from those it hardly
        saw (``musgen.keyplan``). ``normalized``: the keys after key normalization (C for a
        major key, Am for a minor one), as a ``key_normalize`` model sees them."""
        counts: dict = {}
        for i in self.split_indices(split).tolist():
            key = self.pieces[i].key
            if key is not None and normalized:
                key = "Am" if key.endswith("m") else "C"
            if key is not None:
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def rest_profile(self, split: str = "train") -> dict:
        """How the pieces of ``split`` rest (no note sounding between their first and last
        note), in beats: ``{"pieces", "with_rests", "longest_beats", "longest_p95_beats"}``,
        the last the 95th percentile over pieces of each piece's longest rest. A trained model
        records it, and ``generate`` keeps its rests no longer by default (``max_rest``).
        Empty for a codec on a grid of seconds (no beats)."""
        codec = self.codec
        if codec.timing != "beats":
            return {}
        from ..codec import decode

        longest = []
        for i in self.split_indices(split).tolist():
            score = decode(np.asarray(self.piece_tokens(i)), codec)
            notes = score.notes
            if notes.size < 2:
                longest.append(0.0)
                continue
            order = np.argsort(notes["start"], kind="stable")
            start = notes["start"][order]
            reach = np.maximum.accumulate(notes["end"][order])
            gaps = start[1:] - reach[:-1]
            longest.append(max(0, int(gaps.max())) / score.ticks_per_beat)
        if not longest:
            return {}
        arr = np.asarray(longest)
        step = 1.0 / codec.steps_per_beat
        p95 = max(0.0, float(np.ceil(np.percentile(arr, 95) / step - 1e-9) * step))
        return {"pieces": int(arr.size), "with_rests": int(np.count_nonzero(arr > 0)),
                "longest_beats": float(arr.max()), "longest_p95_beats": round(p95, 6)}

    def __len__(self) -> int:
        return len(self.pieces)

    def __repr__(self) -> str:
        counts = {s: int((self._split_of == s).sum()) for s in SPLITS}
        return (f"Dataset({str(self.path)!r}, {len(self.pieces)} pieces {counts}, "
                f"{self.tokens.shape[0]} tokens)")

    def split_indices(self, name: str) -> np.ndarray:
        """Indices (int64, ascending) of the pieces in split ``name`` (train/valid/test)."""
        split = SPLIT_FOLDERS.get(str(name).lower())
        if split is None:
            raise DatasetError(f"split {name!r}: expected one of {', '.join(SPLITS)}")
        return np.flatnonzero(self._split_of == split).astype(np.int64)

    def piece_tokens(self, i: int) -> np.ndarray:
        """Piece ``i``'s tokens, int32 [length] (a view into the memory map)."""
        p = self.pieces[i]
        return self.tokens[p.offset:p.offset + p.length]

    def piece_paper_features(self, i: int) -> np.ndarray:
        """Piece ``i``'s note features, float32 [n_notes, 3]."""
        return self.paper_features[self.piece_note_offsets[i]:self.piece_note_offsets[i + 1]]
