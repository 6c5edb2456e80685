"""Audio rendering: the event schedule, SoundFont search, audio files, FluidSynth output (timing,
pitch, instruments, level, duration), ``generate(render=...)`` and ``musgen render``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import wave

import numpy as np
import pytest

import musgen
from musgen import midi
from musgen.errors import SynthesizerUnavailableError
from musgen.render import Audio, audio_format_for, find_soundfont, render, soundfont
from musgen.render.schedule import NOTE_OFF, NOTE_ON, PROGRAM, schedule_events
from musgen.score import NOTE_DTYPE, PROGRAM_DTYPE, TEMPO_DTYPE, Score

SR = 22_050


def make_score(notes, *, programs=(), tempos=(), tpb=480) -> Score:
    """notes: (start, end, pitch, velocity, channel) in ticks."""
    arr = np.zeros(len(notes), NOTE_DTYPE)
    for i, (start, end, pitch, vel, ch) in enumerate(notes):
        arr[i] = (0, ch, pitch, vel, start, end)
    arr = arr[np.lexsort((arr["end"], arr["pitch"], arr["channel"], arr["track"], arr["start"]))]
    progs = np.array([(t, 0, ch, p) for t, ch, p in programs], PROGRAM_DTYPE)
    temps = np.array(list(tempos), TEMPO_DTYPE)
    return Score(notes=arr, ticks_per_beat=tpb, programs=progs, tempos=temps)


# ----------------------------------------------------------------------------- schedule
def test_schedule_events_times_follow_the_tempo_map():
    # 120 BPM for 2 beats (1 s), then 60 BPM: beat 3 is at 2 s.
    s = make_score([(0, 480, 60, 100, 0), (1440, 1920, 62, 90, 0)],
                   tempos=[(960, 1_000_000)])
    ev = schedule_events(s, 1000)
    on = ev[ev["kind"] == NOTE_ON]
    off = ev[ev["kind"] == NOTE_OFF]
    assert on["sample"].tolist() == [0, 2000] and on["data"].tolist() == [60, 62]
    assert on["velocity"].tolist() == [100, 90]
    assert off["sample"].tolist() == [500, 3000]


def test_schedule_events_same_sample_order_program_off_on():
    # A repeated key without a gap, a program change where the second note starts, and a
    # zero-length note whose off must follow its own on.
    s = make_score([(0, 480, 60, 100, 0), (480, 960, 60, 100, 0), (960, 960, 64, 80, 0)],
                   programs=[(480, 0, 40)])
    ev = schedule_events(s, 1000)
    at_half = ev[ev["sample"] == 500]
    assert at_half["kind"].tolist() == [PROGRAM, NOTE_OFF, NOTE_ON]
    assert at_half["data"].tolist() == [40, 60, 60]
    at_end = ev[ev["sample"] == 1000]
    assert at_end["kind"].tolist() == [NOTE_OFF, NOTE_ON, NOTE_OFF]
    assert at_end["data"].tolist() == [60, 64, 64]


def test_schedule_events_rejects_bad_sample_rate():
    with pytest.raises(ValueError, match="sample_rate"):
        schedule_events(make_score([]), 0)


# ----------------------------------------------------------------------------- soundfont
def test_find_soundfont_explicit_env_and_missing(tmp_path, monkeypatch):
    sf2 = tmp_path / "my.sf2"
    sf2.write_bytes(b"RIFF")
    assert find_soundfont(sf2) == sf2
    monkeypatch.setenv("MUSGEN_SOUNDFONT", str(sf2))
    assert find_soundfont() == sf2
    with pytest.raises(SynthesizerUnavailableError, match="soundfont: SoundFont .*nope.sf2"):
        find_soundfont(tmp_path / "nope.sf2")
    monkeypatch.setenv("MUSGEN_SOUNDFONT", str(tmp_path / "gone.sf2"))
    with pytest.raises(SynthesizerUnavailableError, match="MUSGEN_SOUNDFONT"):
        find_soundfont()
    monkeypatch.delenv("MUSGEN_SOUNDFONT")
    monkeypatch.setattr(soundfont, "SOUNDFONT_SEARCH_PATHS", (str(tmp_path / "none.sf2"),))
    with pytest.raises(SynthesizerUnavailableError,
                       match="no SoundFont found: install .*apt-get install fluid-soundfont-gm"):
        find_soundfont()


def test_missing_pyfluidsynth_says_what_to_install(monkeypatch, tmp_path):
    from musgen.render import fluidsynth_status

    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import fails as if not installed
    ok, why = fluidsynth_status()
    assert not ok
    assert "pip install 'musgen[audio]'" in why and "apt-get install libfluidsynth3" in why
    sf2 = tmp_path / "some.sf2"  # a SoundFont is found (machines without one fail earlier)
    sf2.write_bytes(b"RIFF")
    with pytest.raises(SynthesizerUnavailableError, match="pyfluidsynth is not installed"):
        render(make_score([(0, 480, 60, 100, 0)]), soundfont=sf2)


def test_cli_render_without_soundfont_is_one_line(tmp_path):
    src = tmp_path / "a.mid"
    midi.write(make_score([(0, 480, 60, 100, 0)]), src)
    # The rest of the environment stays (PYTHONPATH is how an unpacked wheel is tested).
    env = {**os.environ, "MUSGEN_SOUNDFONT": str(tmp_path / "missing.sf2"),
           "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "musgen", "render", str(src), "-o",
                        str(tmp_path / "a.wav")], capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"musgen render: error: MUSGEN_SOUNDFONT: SoundFont {tmp_path / 'missing.sf2'} does not "
        "exist or is not a file"]


# ----------------------------------------------------------------------------- audio files
def test_audio_levels_and_wav_bytes():
    t = np.arange(SR) / SR
    sine = 0.5 * np.sin(2 * np.pi * 440 * t)
    a = Audio(np.stack([sine, sine], 1), SR)
    assert a.duration_seconds == pytest.approx(1.0)
    assert a.peak_dbfs() == pytest.approx(20 * np.log10(0.5), abs=0.01)
    assert a.rms_dbfs() == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert Audio(np.zeros((10, 2)), SR).rms_dbfs() == float("-inf")
    with wave.open(io.BytesIO(a.to_bytes("wav"))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == \
            (2, 2, SR, SR)
        pcm = np.frombuffer(w.readframes(SR), "<i2").reshape(-1, 2)
    np.testing.assert_allclose(pcm[:, 0] / 32767, sine, atol=1 / 32767)
    assert a._repr_html_().startswith('<audio controls src="data:audio/wav;base64,UklGR')


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3"])
def test_audio_compressed_formats_round_trip(tmp_path, fmt):
    sf = pytest.importorskip("soundfile")
    if fmt not in musgen.render.available_audio_formats():
        pytest.skip(f"this libsndfile build cannot write {fmt}")
    t = np.arange(SR) / SR
    a = Audio(0.5 * np.sin(2 * np.pi * 440 * t), SR)
    path = a.save(tmp_path / f"x.{fmt}")
    data, rate = sf.read(path)
    assert rate == SR
    assert abs(len(data) - SR) <= 2048  # encoder padding for lossy formats
    assert 20 * np.log10(np.sqrt(np.mean(data ** 2))) == pytest.approx(a.rms_dbfs(), abs=0.5)


def test_audio_format_for_suffixes():
    assert [audio_format_for(f"a.{s}") for s in ("WAV", "flac", "oga", "ogg", "mp3")] == \
        ["wav", "flac", "ogg", "ogg", "mp3"]
    with pytest.raises(ValueError, match=r"a\.aiff: unknown audio format '\.aiff'"):
        audio_format_for("a.aiff")


# ----------------------------------------------------------------------------- synthesis
def _rms_db(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20 * np.log10(rms) if rms > 0 else -np.inf


def _dominant_hz(x: np.ndarray, rate: int) -> float:
    mono = x.mean(axis=1) * np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(mono))
    return float(np.fft.rfftfreq(len(mono), 1 / rate)[np.argmax(spectrum)])


def test_render_note_sounds_at_its_time_and_pitch(audio_available):
    # 60 BPM: A4 (440 Hz) from 1 s to 2 s, nothing before it.
    s = make_score([(480, 960, 69, 100, 0)], tempos=[(0, 1_000_000)])
    a = render(s, sample_rate=SR, tail=1.0)
    x = a.samples
    assert _rms_db(x[: int(0.95 * SR)]) < -100  # silence before the onset
    assert _rms_db(x[SR: 2 * SR]) > -30
    assert _dominant_hz(x[int(1.1 * SR): int(1.9 * SR)], SR) == pytest.approx(440, rel=0.02)
    assert 2.0 <= a.duration_seconds <= 3.0 + 0.05
    # The release dies away after the note-off: the last tenth of the tail is much quieter.
    assert _rms_db(x[-SR // 10:]) < _rms_db(x[SR: 2 * SR]) - 30


def test_render_programs_and_drums_change_the_sound(audio_available):
    note = [(0, 960, 60, 100, 0)]
    piano = render(make_score(note), sample_rate=SR).samples
    strings = render(make_score(note, programs=[(0, 0, 48)]), sample_rate=SR).samples
    drums = render(make_score([(0, 960, 38, 100, 9)]), sample_rate=SR).samples  # snare
    n = min(len(piano), len(strings), len(drums))

    def spectrum(x):
        s = np.abs(np.fft.rfft(x[:n].mean(axis=1)))
        return s / np.linalg.norm(s)

    assert float(spectrum(piano) @ spectrum(strings)) < 0.9
    assert float(spectrum(piano) @ spectrum(drums)) < 0.5
    # Same settings, same samples: nothing of one piece rings into the next.
    np.testing.assert_array_equal(render(make_score(note), sample_rate=SR).samples, piano)


def test_render_normalize_and_raw_levels(audio_available):
    s = make_score([(0, 480, 60, 100, 0)])
    assert render(s, sample_rate=SR).peak_dbfs() == pytest.approx(-1.0, abs=0.01)
    assert render(s, sample_rate=SR, normalize=False).peak_dbfs() < -6


def test_render_rejects_bad_arguments(audio_available):
    s = make_score([(0, 480, 60, 100, 0)])
    with pytest.raises(ValueError, match="sample_rate"):
        render(s, sample_rate=100)
    with pytest.raises(ValueError, match="tail"):
        render(s, tail=-1.0)
    with pytest.raises(TypeError, match="score: expected a musgen.Score"):
        render("song.mid")


def test_render_shipped_model_output_duration_and_level(audio_available):
    """The issue's check: the shipped model's piece, rendered, lasts as long as its MIDI (plus
    at most the release tail) and is not silent."""
    tail = 2.0
    score = musgen.generate(n=1, length="24 beats", seed=11)[0]
    audio = render(score, tail=tail, normalize=False)
    midi_seconds = score.duration_seconds
    assert midi_seconds > 5
    assert midi_seconds <= audio.duration_seconds <= midi_seconds + tail + 0.05
    assert audio.rms_dbfs() > -50
    # Sound throughout: every second of the piece has some level.
    per_second = [_rms_db(audio.samples[i * 44100:(i + 1) * 44100])
                  for i in range(int(midi_seconds))]
    assert min(per_second) > -60


def test_generate_render_returns_scores_with_audio(audio_available):
    pieces = musgen.generate(n=2, length="8 beats", seed=3, render={"sample_rate": SR})
    plain = musgen.generate(n=2, length="8 beats", seed=3)
    assert len(pieces) == 2
    for (score, audio), ref in zip(pieces, plain):
        assert score.equals(ref)
        assert audio.sample_rate == SR
        assert audio.duration_seconds >= score.duration_seconds
        assert audio.rms_dbfs() > -50


def test_generate_render_checks_before_generating(monkeypatch):
    import musgen.render as r

    with pytest.raises(TypeError, match="render: expected a bool or a mapping"):
        musgen.generate(n=1, length=8, render="yes")
    monkeypatch.setattr(r, "fluidsynth_status", lambda: (False, "no FluidSynth here"))
    monkeypatch.setattr("musgen.generation._load_model",
                        lambda *a: pytest.fail("generated before checking the synthesizer"))
    with pytest.raises(SynthesizerUnavailableError, match="no FluidSynth here"):
        musgen.generate(n=1, length=8, render=True)


# ----------------------------------------------------------------------------- command line
def _musgen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "musgen", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_cli_render_file_and_folder(audio_available, tmp_path):
    sf = pytest.importorskip("soundfile")
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    midi.write(make_score([(0, 960, 60, 100, 0)]), src / "a.mid")
    midi.write(make_score([(0, 1920, 64, 100, 0)]), src / "sub" / "b.mid")
    (src / "broken.mid").write_bytes(b"MThd not really")
    r = _musgen("render", src / "a.mid", "-o", tmp_path / "a.wav", "--sample-rate", SR)
    assert r.returncode == 0, r.stderr
    with wave.open(str(tmp_path / "a.wav")) as w:
        assert w.getframerate() == SR and w.getnframes() / SR >= 1.0
    r = _musgen("render", src, "-o", tmp_path / "out", "--format", "flac", "-q")
    assert r.returncode == 1  # one input was skipped
    assert "musgen render: skipped" in r.stderr and "broken.mid" in r.stderr
    assert sorted(p.relative_to(tmp_path / "out").as_posix()
                  for p in (tmp_path / "out").rglob("*")) == ["a.flac", "sub", "sub/b.flac"]
    data, rate = sf.read(tmp_path / "out" / "sub" / "b.flac")
    assert rate == 44100 and len(data) / rate >= 2.0
    r = _musgen("render", src / "a.mid", "-o", tmp_path / "a.aiff")
    assert r.returncode != 0 and r.stderr.strip().splitlines() == [
        f"musgen render: error: {tmp_path / 'a.aiff'}: unknown audio format '.aiff', expected "
        "one of .wav, .flac, .ogg, .mp3"]


def test_cli_generate_render_writes_audio_beside_midi(audio_available, tmp_path):
    r = _musgen("generate", "-o", tmp_path / "song.mid", "--n", 2, "--length", "8 beats",
                "--seed", 5, "--render", "--sample-rate", SR, "--quiet")
    assert r.returncode == 0, r.stderr
    for i in range(2):
        score = midi.read(tmp_path / f"song-{i:03d}.mid")
        with wave.open(str(tmp_path / f"song-{i:03d}.wav")) as w:
            seconds = w.getnframes() / w.getframerate()
        assert score.duration_seconds <= seconds <= score.duration_seconds + 2.05
