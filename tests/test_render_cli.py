"""``musgen plot`` and ``musgen generate --plot``: piano-roll files of the asked size and
format, notes drawn where the notes are, folders, and one-line errors."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from musgen import midi  # noqa: E402
from musgen.render.pianoroll import part_colors, piano_roll_figure  # noqa: E402
from musgen.score import NOTE_DTYPE, Score  # noqa: E402


def _musgen(*args):
    return subprocess.run([sys.executable, "-m", "musgen", *map(str, args)],
                          capture_output=True, text=True)


def _pixels(path) -> np.ndarray:
    from matplotlib.image import imread

    return (imread(str(path), format="png")[..., :3] * 255).round().astype(int)


def _score(rows) -> Score:
    """rows: (pitch, start beat, end beat) on one piano track."""
    notes = np.zeros(len(rows), NOTE_DTYPE)
    for i, (pitch, a, b) in enumerate(rows):
        notes[i] = (0, 0, pitch, 90, a * 480, b * 480)
    return Score(notes=np.sort(notes, order=["start", "track", "channel", "pitch", "end"]))


def test_cli_plot_png_size_and_notes_where_the_notes_are(tmp_path):
    rows = [(60, 0, 2), (64, 2, 3), (67, 3, 6), (55, 1, 4)]
    midi.write(_score(rows), tmp_path / "song.mid")
    r = _musgen("plot", tmp_path / "song.mid", "-o", tmp_path / "roll.png", "--width", 900,
                "--height", 360)
    assert r.returncode == 0, r.stderr
    pixels = _pixels(tmp_path / "roll.png")
    assert pixels.shape == (360, 900, 3)
    score = midi.read(tmp_path / "song.mid")
    fig = piano_roll_figure(score, title="song.mid", width=900, height=360)
    fig.savefig(io.BytesIO(), format="png", dpi=fig.dpi)
    ax = fig.axes[0]
    color = np.round(np.asarray(part_colors(1)[0][:3]) * 255).astype(int)

    def at(beat, pitch):
        x, y = ax.transData.transform((beat, pitch))
        return pixels[round(360 - y), round(x)]

    for beat, pitch in [(1, 60), (2.5, 64), (4.5, 67), (2, 55)]:  # inside each note
        assert np.abs(at(beat, pitch) - color).max() <= 3, (beat, pitch)
    for beat, pitch in [(3, 60), (1, 64), (1, 67), (5, 55)]:      # beside them
        assert np.abs(at(beat, pitch) - color).max() > 30, (beat, pitch)
    # --beats 0:2 zooms in: the note on beats 0-2 spans the whole width, not a third of it
    r = _musgen("plot", tmp_path / "song.mid", "-o", tmp_path / "zoom.png", "--width", 900,
                "--height", 360, "--beats", "0:2")
    assert r.returncode == 0, r.stderr
    zoom = _pixels(tmp_path / "zoom.png")
    zfig = piano_roll_figure(score, title="song.mid", width=900, height=360, beats=(0, 2))
    zfig.savefig(io.BytesIO(), format="png", dpi=zfig.dpi)
    left, right = zfig.axes[0].get_xlim()
    assert (left, right) == (0, 2)

    def row_cover(image, axes):  # colored pixels along pitch 60's row / the axes' width
        x0, y = axes.transData.transform((axes.get_xlim()[0], 60))
        x1, _ = axes.transData.transform((axes.get_xlim()[1], 60))
        row = image[round(360 - y), round(x0):round(x1)]
        return (np.abs(row - color).max(axis=-1) <= 3).mean()

    assert row_cover(zoom, zfig.axes[0]) > 0.95
    assert row_cover(pixels, ax) < 0.4


def test_cli_plot_svg_pdf_and_folders(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    midi.write(_score([(60, 0, 1)]), src / "a.mid")
    midi.write(_score([(62, 0, 1)]), src / "sub" / "b.mid")
    (src / "bad.mid").write_bytes(b"MThd nope")
    for fmt, magic in (("svg", b"<?xml"), ("pdf", b"%PDF")):
        r = _musgen("plot", src / "a.mid", "-o", tmp_path / f"a.{fmt}")
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"a.{fmt}").read_bytes().startswith(magic)
    r = _musgen("plot", src, "-o", tmp_path / "rolls", "-q")
    assert r.returncode == 1 and "musgen plot: skipped" in r.stderr and "bad.mid" in r.stderr
    assert sorted(p.relative_to(tmp_path / "rolls").as_posix()
                  for p in (tmp_path / "rolls").rglob("*.png")) == ["a.png", "sub/b.png"]


@pytest.mark.parametrize("args, message", [
    (["-o", "x.gif"], "musgen plot: error: x.gif: unknown picture format '.gif', expected "
                      ".png, .svg, .pdf"),
    (["-o", "x.png", "--beats", "a:b"], "musgen plot: error: --beats 'a:b': expected END or "
                                        "START:END in beats, e.g. 32 or 16:48"),
    (["-o", "x.png", "--width", "3"], "musgen plot: error: width=3: expected an integer >= 16 "
                                      "(pixels / dots per inch)"),
])
def test_cli_plot_errors_are_one_line(tmp_path, args, message):
    midi.write(_score([(60, 0, 1)]), tmp_path / "a.mid")
    r = subprocess.run([sys.executable, "-m", "musgen", "plot", str(tmp_path / "a.mid"), *args],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [message]


def test_cli_generate_plot_draws_each_piece(tmp_path):
    r = _musgen("generate", "-o", tmp_path / "g", "--n", 2, "--length", "8 beats", "--seed", 1,
                "--plot", "--quiet")
    assert r.returncode == 0, r.stderr
    for i in range(2):
        assert (tmp_path / "g" / f"generated-{i:03d}.mid").is_file()
        assert _pixels(tmp_path / "g" / f"generated-{i:03d}.png").shape == (480, 1200, 3)
