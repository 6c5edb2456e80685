"""``musgen serve``'s web page: pick a model, set the sampling controls, upload a primer,
generate, then see each piece's piano roll, listen to it and download its MIDI and audio.

``create_app`` builds the app (FastAPI, served by uvicorn); everything the page needs ships in
``musgen/web/static`` (no CDN: it works offline). Needs ``pip install 'musgen[web]'``.
"""

from __future__ import annotations

from .controls import CONTROLS, Limits, offered_controls
from .errors import RequestError

__all__ = ["create_app", "Limits", "CONTROLS", "offered_controls", "RequestError", "web_status"]


def create_app(*args, **kwargs):
    """See :func:`musgen.web.app.create_app`."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)


def web_status() -> tuple[bool, str]:
    """(usable, why): whether the web framework and server are installed."""
    from importlib.util import find_spec

    missing = [name for name, modules in (("fastapi", ["fastapi"]), ("uvicorn", ["uvicorn"]),
                                          ("python-multipart", ["python_multipart", "multipart"]))
               if all(find_spec(m) is None for m in modules)]
    if missing:
        return False, (f"musgen serve needs {', '.join(missing)}: pip install 'musgen[web]'")
    return True, "fastapi, uvicorn and python-multipart are installed"
