"""The work behind the page's routes, as plain methods that tests call directly: what the page
offers, generating pieces, and each piece's MIDI, audio and piano roll."""

from __future__ import annotations

import secrets
import sys
import warnings
from pathlib import Path

from ..errors import MidiError, ModelFormatError, MusgenError
from ..generation import generate as musgen_generate
from .catalog import ModelCatalog
from .controls import Limits, offered_controls, parse_form
from .errors import RequestError
from .pieces import Piece, PieceStore

__all__ = ["WebService"]

# Offered for download besides WAV (which the page plays) when this install can write them.
_DOWNLOAD_FORMATS = ("wav", "flac", "ogg")


class WebService:
    """Models, limits, the piece store and the synthesizer settings of one app.

    ``generate`` is ``musgen.generate`` unless a test passes a stand-in with its signature.
    """

    def __init__(self, catalog: ModelCatalog, *, limits: Limits | None = None, soundfont=None,
                 generate=None):
        from ..render import audio_status, available_audio_formats

        self.catalog, self.limits = catalog, limits or Limits()
        self.soundfont = soundfont
        self.store = PieceStore(self.limits.max_stored_pieces)
        self.generate_fn = generate or musgen_generate
        self.audio_ok, self.audio_why = audio_status(soundfont)
        writable = available_audio_formats()
        self.audio_formats = [f for f in _DOWNLOAD_FORMATS if f in writable] \
            if self.audio_ok else []

    # ------------------------------------------------------------------ what the page offers
    def options(self) -> dict:
        return {
            "models": [{"name": e.name, "description": e.description, "shipped": e.shipped,
                        "features": list(e.features), "styles": list(e.styles)}
                       for e in self.catalog.entries.values()],
            "default_model": self.catalog.default_name(),
            "controls": offered_controls(self.limits, self.generate_fn),
            "audio": {"available": self.audio_ok, "why": self.audio_why,
                      "formats": self.audio_formats},
            "limits": {"max_upload_bytes": self.limits.max_upload_bytes,
                       "max_pieces": self.limits.max_pieces},
        }

    # ------------------------------------------------------------------ generation
    def _primer(self, data: bytes | None, notes: list):
        """The uploaded primer as a Score (None without one); ``notes`` collects the warnings
        of a damaged file that was recovered."""
        from .. import midi

        if not data:
            return None
        if len(data) > self.limits.max_upload_bytes:
            raise RequestError(413, f"primer: {len(data)} bytes is more than the "
                                    f"{self.limits.max_upload_bytes} bytes allowed")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                score = midi.read_bytes(data, path="primer")
            except MidiError as exc:
                raise RequestError(400, str(exc)) from None
        notes.extend(str(w.message) for w in caught)
        if score.n_notes > self.limits.max_primer_notes:
            raise RequestError(400, f"primer: {score.n_notes} notes is more than the "
                                    f"{self.limits.max_primer_notes} allowed")
        return score

    def generate(self, fields: dict, primer: bytes | None = None) -> dict:
        """Generate the pieces a submitted form asks for. Blocking: call it off the event loop.

        Returns ``{"pieces": [summary, ...], "warnings": [...]}``.
        """
        from ..midi._writer import encode as midi_bytes  # the one SMF writer, to memory

        name = str(fields.get("model") or self.catalog.default_name() or "")
        self.catalog.get(name)  # an unknown model is refused before anything else
        kwargs = parse_form(fields, self.limits, self.generate_fn)
        notes: list = []
        if "primer" in {c["name"] for c in offered_controls(self.limits, self.generate_fn)}:
            kwargs["primer"] = self._primer(primer, notes)
        elif primer:
            raise RequestError(400, "primer: not an option of this server's generate()")
        seed = kwargs.get("seed")
        if seed is None:  # drawn here so the page can show it and repeat the pieces
            seed = secrets.randbelow(2**32)
            if "seed" in kwargs:
                kwargs["seed"] = seed
        try:
            engine = self.catalog.engine(name)
        except ModelFormatError as exc:  # the server's folder is damaged: say so, not where
            print(f"musgen serve: model {name!r}: {exc}", file=sys.stderr)
            raise RequestError(500, f"model {name!r} cannot be loaded on this server (its "
                                    "files are damaged; the server's log says how)") from None
        try:
            scores = self.generate_fn(engine, threads=1, **kwargs)
        except (MusgenError, ValueError) as exc:  # e.g. a primer the codec cannot encode
            raise RequestError(400, str(exc)) from None
        pieces = [self.store.add(model=name, index=i, seed=seed, score=score,
                                 midi=midi_bytes(score)) for i, score in enumerate(scores)]
        return {"pieces": [p.summary(self.audio_formats) for p in pieces], "warnings": notes}

    # ------------------------------------------------------------------ each piece's media
    def piece(self, piece_id: str) -> Piece:
        return self.store.get(piece_id)

    def audio(self, piece_id: str, fmt: str) -> Path:
        """The piece's audio file in ``fmt``, rendered on first request. Blocking."""
        from ..render import render

        if not self.audio_ok:
            raise RequestError(404, f"audio is not available on this server: {self.audio_why}")
        if fmt not in self.audio_formats:
            raise RequestError(404, f"audio format {fmt!r} is not offered; this server offers "
                                    f"{', '.join(self.audio_formats)}")
        piece = self.store.get(piece_id)
        with piece.lock:  # two requests for the same file render it once
            if fmt not in piece.audio:
                path = self.store.audio_path(piece, fmt)
                render(piece.score, soundfont=self.soundfont).save(path, fmt)
                piece.audio[fmt] = path
            return piece.audio[fmt]

    def roll(self, piece_id: str) -> bytes:
        """The piece's piano roll as PNG bytes, drawn on first request. Blocking."""
        from .roll import piano_roll_png

        piece = self.store.get(piece_id)
        with piece.lock:
            if piece.roll is None:
                piece.roll = piano_roll_png(piece.score,
                                            title=f"{piece.model}, seed {piece.seed}, "
                                                  f"piece {piece.index + 1}")
            return piece.roll

    def close(self) -> None:
        self.store.close()
