"""Piano-roll pictures for the page: the render stage's piano roll, as PNG bytes."""

from __future__ import annotations

import io

__all__ = ["piano_roll_png", "ROLL_WIDTH", "ROLL_HEIGHT"]

#: Pixels of a piece's roll on the page (drawn at twice the CSS size would blur; this is 1:1
#: with the card's width on a laptop screen).
ROLL_WIDTH, ROLL_HEIGHT = 1000, 340


def piano_roll_png(score, *, title: str | None = None) -> bytes:
    """The piano roll of ``score`` as a ROLL_WIDTH x ROLL_HEIGHT PNG."""
    from ..render.pianoroll import piano_roll_figure

    fig = piano_roll_figure(score, title=title, width=ROLL_WIDTH, height=ROLL_HEIGHT, dpi=100)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
