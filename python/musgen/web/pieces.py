"""Generated pieces kept for the page: their MIDI, and their audio and piano roll made on first
request. Pieces are found by an id the server drew; the oldest are dropped past a limit."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..score import Score
from .errors import RequestError

__all__ = ["Piece", "PieceStore", "PIECE_ID_PATTERN"]

#: Piece ids: 32 lowercase hex digits (128 random bits), never a path.
PIECE_ID_PATTERN = r"^[0-9a-f]{32}$"


@dataclass(eq=False)
class Piece:
    """One generated piece. ``index`` is its stream in the request; ``seed`` the request's."""

    id: str
    model: str
    index: int
    seed: int
    score: Score
    midi: bytes
    roll: bytes | None = None
    audio: dict = field(default_factory=dict)  # format -> file in the store's folder
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self, audio_formats: list) -> dict:
        """What the page shows and links to."""
        base = f"/api/pieces/{self.id}"
        return {
            "id": self.id,
            "model": self.model,
            "index": self.index,
            "seed": self.seed,
            "notes": int(self.score.n_notes),
            "seconds": round(self.score.duration_seconds, 2),
            "midi_url": f"{base}/midi",
            "roll_url": f"{base}/roll.png",
            "audio_urls": {fmt: f"{base}/audio.{fmt}" for fmt in audio_formats},
        }

    def download_name(self, suffix: str) -> str:
        return f"musgen-{self.model}-seed{self.seed}-{self.index + 1}.{suffix}"


class PieceStore:
    """Pieces by id, at most ``capacity``, least recently used dropped first; rendered audio
    lives in a private temporary folder named only by piece ids."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self._pieces: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.folder = Path(tempfile.mkdtemp(prefix="musgen-web-"))
        # Removed with the store even when the app's shutdown never runs (a test client used
        # without its context manager, an interrupted server).
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.folder, True)

    def add(self, *, model: str, index: int, seed: int, score: Score, midi: bytes) -> Piece:
        piece = Piece(secrets.token_hex(16), model, index, seed, score, midi)
        with self._lock:
            self._pieces[piece.id] = piece
            while len(self._pieces) > self.capacity:
                _, old = self._pieces.popitem(last=False)
                self._forget(old)
        return piece

    def get(self, piece_id: str) -> Piece:
        with self._lock:
            piece = self._pieces.get(piece_id)
            if piece is None:
                raise RequestError(404, f"piece {piece_id!r} does not exist (pieces are kept "
                                        f"for the {self.capacity} most recent; generate again)")
            self._pieces.move_to_end(piece_id)
            return piece

    def audio_path(self, piece: Piece, fmt: str) -> Path:
        return self.folder / f"{piece.id}.{fmt}"

    def _forget(self, piece: Piece) -> None:
        for path in piece.audio.values():
            path.unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._pieces)

    def close(self) -> None:
        self._cleanup()
