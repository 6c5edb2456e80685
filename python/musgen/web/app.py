"""The web app: ``create_app(...)`` builds a fresh FastAPI app (tests make one each).

Routes only translate HTTP to the plain methods of ``WebService`` and back. Blocking work
(generating, rendering, drawing) runs in worker threads, never on the event loop, so one slow
request does not hold up the others. Static files are served from the package by name lookup in
a fixed table read at start-up: no part of a URL is ever joined to a file system path.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import UploadFile

from ..render.audio import mime_type
from .catalog import ModelCatalog
from .controls import Limits
from .errors import RequestError
from .service import WebService

__all__ = ["create_app", "BodySizeLimit"]

# Room for the form's text fields and multipart framing on top of the primer file.
_FORM_OVERHEAD = 64 * 1024
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before the app parses it,
    whether it declares its length or streams in chunks."""

    class _TooLarge(Exception):
        pass

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send, f"{int(declared)} bytes")
        seen, started = 0, False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._TooLarge()
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except self._TooLarge:
            if not started:
                await self._refuse(send, f"more than {self.max_bytes} bytes")

    async def _refuse(self, send, size: str):
        import json

        body = json.dumps({"error": f"request body: {size} is larger than the "
                                    f"{self.max_bytes} bytes allowed (a primer MIDI file may "
                                    f"have up to {self.max_bytes - _FORM_OVERHEAD} bytes)"}
                          ).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _static_files() -> dict:
    """name -> (bytes, media type) for every file shipped in musgen/web/static."""
    table = {}
    for item in resources.files("musgen.web").joinpath("static").iterdir():
        suffix = os.path.splitext(item.name)[1]
        if item.is_file() and suffix in _STATIC_TYPES:
            table[item.name] = (item.read_bytes(), _STATIC_TYPES[suffix])
    return table


async def _read_form(request: Request, limits: Limits) -> tuple[dict, bytes | None]:
    """(text fields, primer bytes or None) of a submitted form; a repeated or misplaced field
    is a 400 naming it."""
    form = await request.form(max_files=1, max_fields=32)
    fields, primer = {}, None
    try:
        for key, value in form.multi_items():
            if key in fields or (key == "primer" and primer is not None):
                raise RequestError(400, f"{key}: given more than once")
            if isinstance(value, UploadFile):
                if key != "primer":
                    raise RequestError(400, f"{key}: a file was sent, expected a value")
                primer = await value.read(limits.max_upload_bytes + 1)
            elif key == "primer":
                if value:
                    raise RequestError(400, "primer: expected a MIDI file upload")
            else:
                fields[key] = value
    finally:
        await form.close()
    return fields, primer or None


def create_app(models_dir: str | os.PathLike | None = None, *, limits: Limits | None = None,
               soundfont: str | os.PathLike | None = None, generate=None, backend=None):
    """A new app serving the page and its API.

    Parameters
    ----------
    models_dir : folder or None
        Model folders offered besides the shipped ones (or one model folder).
    limits : Limits or None
        Per-request limits (upload size, pieces, length) and how many requests generate at once.
    soundfont : path or None
        The SoundFont to render audio with (default: see ``musgen.render.find_soundfont``).
    generate : callable or None
        ``musgen.generate`` unless given (tests pass a stand-in).
    backend : str or None
        The engine backend the models are loaded with.
    """
    limits = limits or Limits()
    service = WebService(ModelCatalog(models_dir, backend=backend), limits=limits,
                         soundfont=soundfont, generate=generate)
    static = _static_files()
    limiter = anyio.CapacityLimiter(limits.concurrent_generations)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.close()

    app = FastAPI(title="musgen", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.service = service

    async def off_loop(fn, *args):
        return await anyio.to_thread.run_sync(partial(fn, *args), limiter=limiter)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.get("/")
    async def index():
        body, media = static["index.html"]
        return Response(body, media_type=media)

    @app.get("/static/{name}")
    async def static_file(name: str):
        if name not in static:
            raise RequestError(404, f"static file {name!r} does not exist")
        body, media = static[name]
        return Response(body, media_type=media, headers={"Cache-Control": "no-cache"})

    @app.get("/api/options")
    async def options():
        return service.options()

    @app.post("/api/generate")
    async def generate_pieces(request: Request):
        fields, primer = await _read_form(request, limits)
        return await off_loop(service.generate, fields, primer)

    @app.get("/api/pieces/{piece_id}/midi")
    async def piece_midi(piece_id: str):
        piece = service.piece(piece_id)
        return Response(piece.midi, media_type="audio/midi", headers={
            "Content-Disposition": f'inline; filename="{piece.download_name("mid")}"'})

    @app.get("/api/pieces/{piece_id}/roll.png")
    async def piece_roll(piece_id: str):
        return Response(await off_loop(service.roll, piece_id), media_type="image/png")

    @app.get("/api/pieces/{piece_id}/audio.{fmt}")
    async def piece_audio(piece_id: str, fmt: str):
        path = await off_loop(service.audio, piece_id, fmt)
        piece = service.piece(piece_id)
        return FileResponse(path, media_type=mime_type(fmt),
                            filename=piece.download_name(fmt), content_disposition_type="inline")

    app.add_middleware(BodySizeLimit, max_bytes=limits.max_upload_bytes + _FORM_OVERHEAD)
    return app
