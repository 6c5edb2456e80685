"""The error a web request can end in: an HTTP status and a one-line message for the page."""

from __future__ import annotations

__all__ = ["RequestError"]


class RequestError(Exception):
    """A request the server refuses or cannot serve: ``status`` (4xx; 500 for a damaged model
    folder) and a message naming the field, what was given and what is allowed."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message
