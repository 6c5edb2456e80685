"""Piano rolls: the PNG's size, notes drawn where the notes are (pixels read back), parts and
their General MIDI names, the beat and bar grid of the time signatures, and the one-line error
when matplotlib is missing."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from conftest import make_score

from musgen.errors import MissingDependencyError
from musgen.render import (
    GM_PROGRAM_NAMES,
    draw_piano_roll,
    note_programs,
    parts,
    piano_roll_figure,
    pitch_name,
    save_piano_roll,
)
from musgen.render.pianoroll import grid_lines, meter_text, part_colors, tempo_text
from musgen.score import Score

from conftest import needs_matplotlib

TPB = 480



def test_gm_names_and_pitch_names():
    assert len(GM_PROGRAM_NAMES) == 128
    assert GM_PROGRAM_NAMES[0] == "Acoustic Grand Piano"
    assert GM_PROGRAM_NAMES[40] == "Violin" and GM_PROGRAM_NAMES[52] == "Choir Aahs"
    assert GM_PROGRAM_NAMES[127] == "Gunshot"
    assert pitch_name(60) == "C4" and pitch_name(61) == "C#4" and pitch_name(21) == "A0"
    assert pitch_name(0) == "C-1" and pitch_name(127) == "G9"


def test_note_programs_own_track_first_then_channel_then_default():
    score = make_score(
        [(1, 0, 60, 0, 1), (1, 0, 62, 2, 3), (2, 1, 50, 0, 1), (3, 2, 40, 0, 1), (4, 1, 70, 3, 4)],
        programs=[(0, 1, 0, 40), (1, 1, 0, 42), (0, 0, 1, 33), (0, 2, 1, 24)])
    progs = note_programs(score)
    by_pitch = dict(zip(score.notes["pitch"].tolist(), progs.tolist()))
    # track 1 ch 0: 40 from beat 0, 42 from beat 1; track 2 ch 1: its own 24; track 4 ch 1 has
    # no program of its own: the channel's changes in any track, the latest (beat 0) is 24
    # (tracks 0 and 2 both at tick 0, stable order keeps track 2's last); ch 2: none -> 0.
    assert by_pitch[60] == 40 and by_pitch[62] == 42
    assert by_pitch[50] == 24 and by_pitch[70] == 24
    assert by_pitch[40] == 0


def test_parts_labels_drums_and_duplicates():
    score = make_score(
        [(1, 0, 60, 0, 1), (2, 9, 36, 0.5, 0.6), (3, 1, 48, 1, 2), (4, 2, 50, 1, 2)],
        programs=[(0, 1, 0, 40), (0, 3, 1, 0), (0, 4, 2, 0)],
        names=["", "Lead", "Kit", "", ""])
    found = parts(score)
    assert [p.label for p in found] == ["Lead: Violin", "Kit: Drums",
                                        "Acoustic Grand Piano (track 3, channel 2)",
                                        "Acoustic Grand Piano (track 4, channel 3)"]
    assert [p.is_drum for p in found] == [False, True, False, False]
    assert [score.notes["pitch"][p.index].tolist() for p in found] == [[60], [36], [48], [50]]


def test_grid_lines_follow_the_time_signatures():
    score = make_score([(0, 0, 60, 0, 20)], meters=[(0, 4, 4), (8, 3, 4), (14, 6, 8)])
    beats, bars = grid_lines(score, 0, 20)
    np.testing.assert_allclose(bars, [0, 4, 8, 11, 14, 17, 20])
    # 6/8 counts dotted quarters: one beat line inside each 3-beat bar.
    np.testing.assert_allclose(beats, [1, 2, 3, 5, 6, 7, 9, 10, 12, 13, 15.5, 18.5])
    beats, bars = grid_lines(score, 5, 12)
    np.testing.assert_allclose(bars, [8, 11])
    np.testing.assert_allclose(beats, [5, 6, 7, 9, 10, 12])
    assert meter_text(score) == "4/4 -> 3/4 -> 6/8"
    # no time signature: the MIDI default 4/4
    assert meter_text(make_score([(0, 0, 60, 0, 1)], meters=())) == "4/4"


def test_tempo_text():
    assert tempo_text(make_score([(0, 0, 60, 0, 1)])) == "100 BPM"
    assert tempo_text(make_score([(0, 0, 60, 0, 1)], tempos=())) == "120 BPM"
    changing = make_score([(0, 0, 60, 0, 1)], tempos=[(0, 500_000), (960, 625_000)])
    assert tempo_text(changing) == "96-120 BPM (2 tempos)"


def _png_pixels(data: bytes) -> np.ndarray:
    from matplotlib.image import imread

    return (imread(io.BytesIO(data), format="png")[..., :3] * 255).round().astype(int)


@needs_matplotlib
def test_save_piano_roll_writes_a_png_of_the_asked_size(tmp_path):
    score = make_score([(0, 0, 60, 0, 2), (0, 0, 64, 2, 4)])
    path = save_piano_roll(score, tmp_path / "sub" / "roll.png", width=640, height=300, dpi=80)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert _png_pixels(data).shape == (300, 640, 3)
    with pytest.raises(ValueError, match="width=0"):
        save_piano_roll(score, tmp_path / "x.png", width=0)


@needs_matplotlib
def test_piano_roll_notes_are_drawn_where_the_notes_are(tmp_path):
    rows = [(1, 0, 60, 0, 2), (1, 0, 67, 2, 3), (2, 1, 55, 1, 4), (3, 9, 38, 3, 3.1)]
    score = make_score(rows, programs=[(0, 1, 0, 0), (0, 2, 1, 40)],
                       names=["", "Piano", "Strings", "Drums"])
    width, height = 800, 400
    path = save_piano_roll(score, tmp_path / "roll.png", width=width, height=height, dpi=100,
                           pitch_range=(50, 70), beats=(0, 4))
    pixels = _png_pixels(path.read_bytes())
    # The same figure, built again, gives the data -> pixel transform of the saved image.
    fig = piano_roll_figure(score, width=width, height=height, dpi=100, pitch_range=(50, 70),
                            beats=(0, 4))
    fig.savefig(io.BytesIO(), format="png", dpi=100)
    ax = fig.axes[0]
    colors = [np.round(np.asarray(c[:3]) * 255).astype(int) for c in part_colors(3)]

    def pixel(beat, pitch):
        x, y = ax.transData.transform((beat, pitch))
        return pixels[round(height - y), round(x)]

    # part order: by first onset -> Piano (60, 67), Strings (55), Drums (38, off the range)
    for beat, pitch, color in [(1.0, 60, colors[0]), (0.3, 60, colors[0]), (2.5, 67, colors[0]),
                               (1.5, 55, colors[1]), (3.5, 55, colors[1])]:
        assert np.abs(pixel(beat, pitch) - color).max() <= 3, (beat, pitch, pixel(beat, pitch))
    # no note there: neither part colour
    for beat, pitch in [(3.0, 60), (1.0, 67), (0.5, 55), (2.5, 62)]:
        for color in colors[:2]:
            assert np.abs(pixel(beat, pitch) - color).max() > 30, (beat, pitch)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["Piano: Acoustic Grand Piano", "Strings: Violin", "Drums (hits)"]
    assert ax.get_title(loc="right") == "100 BPM, 4/4"
    assert ax.get_xlabel() == "time (beats)"
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert "C4" in ticks and "G4" in ticks and "C#4" not in ticks
    # save_piano_roll and piano_roll_figure give the same picture
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    assert np.array_equal(_png_pixels(buf.getvalue()), pixels)


@needs_matplotlib
def test_piano_roll_drum_hits_are_marked(tmp_path):
    score = make_score([(0, 0, 60, 0, 4), (1, 9, 42, 2, 2)])
    fig = piano_roll_figure(score, width=600, height=300, dpi=100)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    pixels = _png_pixels(buf.getvalue())
    x, y = fig.axes[0].transData.transform((2.0, 42))
    drum = np.round(np.asarray(part_colors(2)[1][:3]) * 255).astype(int)
    assert np.abs(pixels[round(300 - y), round(x)] - drum).max() <= 3


@needs_matplotlib
def test_draw_piano_roll_into_a_given_axes_and_empty_scores():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    out = draw_piano_roll(make_score([(0, 0, 60, 0, 1)]), ax, title="mine")
    assert out is ax and ax.get_title(loc="left") == "mine"
    empty = draw_piano_roll(Score())
    assert [t.get_text() for t in empty.texts] == ["no notes"]
    assert empty.get_legend() is None


@pytest.mark.parametrize("kwargs, match", [
    ({"beats": (4, 2)}, "beats="), ({"beats": (1, 2, 3)}, "beats="),
    ({"pitch_range": (80, 60)}, "pitch_range="), ({"pitch_range": (0, 200)}, "pitch_range=")])
@needs_matplotlib
def test_draw_piano_roll_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        draw_piano_roll(make_score([(0, 0, 60, 0, 1)]), **kwargs)


@needs_matplotlib
def test_draw_piano_roll_rejects_what_is_not_a_score():
    with pytest.raises(TypeError, match="expected a musgen Score, got list"):
        draw_piano_roll([1, 2])


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"pip install musgen\[plot\]$") as info:
        draw_piano_roll(make_score([(0, 0, 60, 0, 1)]))
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ImportError)


def test_score_ticks_to_beats():
    score = make_score([(0, 0, 60, 0, 1)])
    np.testing.assert_allclose(score.ticks_to_beats([0, 240, 960]), [0, 0.5, 2])
    smpte = Score(ticks_per_beat=0, smpte=(25, 40))
    np.testing.assert_allclose(smpte.ticks_to_beats([0, 1000]), [0, 2.0])  # 1 s = 2 beats
