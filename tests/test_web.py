"""``musgen serve``'s app through the framework's test client: the options the page offers
(exactly generate()'s), every control reaching generate(), bad input -> 4xx with its message,
upload limits, path tricks, pieces' MIDI / audio / piano roll, the model catalog, concurrent
requests off the event loop, and the ``musgen serve`` command."""

from __future__ import annotations

import inspect
import io
import subprocess
import sys
import threading
import wave

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import musgen  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from musgen import midi  # noqa: E402
from musgen.engine._random import random_model_dir  # noqa: E402
from musgen.generation import default_model_dir  # noqa: E402
from musgen.modelzoo import DEFAULT_MODEL  # noqa: E402
from musgen.web import CONTROLS, Limits, create_app, offered_controls  # noqa: E402

SMALL = {"n": "2", "length": "8", "length_unit": "beats", "seed": "3"}
#: What generate gets for the musical controls left blank on the form.
UNSET = {"key": None, "scale_strictness": None, "pitch_range": None, "max_voices": "auto",
         "min_voices": "auto", "max_rest": "auto", "density": None, "style": None, "bpm": None, "instruments": None, "ending": "auto",
         "allow_early_end": False}


@pytest.fixture
def client():
    with TestClient(create_app()) as c:
        yield c


class Recorder:
    """A stand-in for generate() with its signature: records each call, then generates."""

    def __init__(self):
        self.calls = []

    def __call__(self, model=None, **kwargs):
        self.calls.append((model, kwargs))
        return musgen.generate(model, **kwargs)


Recorder.__call__.__signature__ = inspect.signature(musgen.generate)


def _midi_bytes(score) -> bytes:
    from musgen.midi._writer import encode

    return encode(score)


def _primer_file() -> bytes:
    """A six-note MIDI file the shipped model made."""
    return _midi_bytes(musgen.generate(n=1, length="6 notes", seed=99, ending="none")[0])


# ----------------------------------------------------------------------------- options
def test_page_and_its_files_ship_in_the_package(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        assert f"/static/{name}" in r.text
        s = client.get(f"/static/{name}")
        assert s.status_code == 200 and s.headers["content-type"].startswith(kind)
    # Offline: nothing is loaded from another host.
    for name in ("index.html", "app.js", "style.css"):
        text = client.get("/" if name == "index.html" else f"/static/{name}").text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_options_offer_exactly_the_parameters_of_generate(client):
    body = client.get("/api/options").json()
    names = [c["name"] for c in body["controls"]]
    params = inspect.signature(musgen.generate).parameters
    assert set(names) <= set(params)
    assert names == [c["name"] for c in CONTROLS if c["name"] in params]
    assert names == ["n", "length", "temperature", "top_k", "top_p", "seed", "primer", "key",
                     "scale_strictness", "pitch_range", "max_voices", "min_voices", "max_rest",
                     "density", "style", "bpm", "instruments", "ending", "allow_early_end"]
    # the musical controls that need a version-2 codec say so
    assert {c["name"]: c.get("needs") for c in body["controls"] if c.get("needs")} == {
        "style": "styles", "bpm": "tempo", "instruments": "instruments"}
    assert body["controls"][names.index("ending")]["choices"] == list(musgen.generation.ENDINGS)
    assert body["models"][0]["name"] == DEFAULT_MODEL and body["default_model"] == DEFAULT_MODEL
    assert "jsb_chorales" in body["models"][0]["description"]
    length = body["controls"][1]
    assert length["max"] == {"beats": 256, "notes": 1024, "tokens": 4096}
    assert body["controls"][0]["max"] == 8
    assert body["limits"] == {"max_upload_bytes": 1 << 20, "max_pieces": 8}


def test_a_control_generate_lacks_is_not_offered_nor_accepted():
    def generate(model=None, *, n=1, length="8 beats", temperature=1.0, seed=None, primer=None,
                 threads=None):
        return musgen.generate(model, n=n, length=length, temperature=temperature, seed=seed,
                               primer=primer, threads=threads)

    assert [c["name"] for c in offered_controls(Limits(), generate)] == [
        "n", "length", "temperature", "seed", "primer"]
    with TestClient(create_app(generate=generate)) as c:
        names = [x["name"] for x in c.get("/api/options").json()["controls"]]
        assert names == ["n", "length", "temperature", "seed", "primer"]
        r = c.post("/api/generate", data={**SMALL, "top_k": "5"})
        assert r.status_code == 400
        assert r.json()["error"].startswith("top_k: not an option of this server's generate()")
        assert c.post("/api/generate", data=SMALL).status_code == 200


# ----------------------------------------------------------------------------- generation
def test_every_control_reaches_generate():
    rec = Recorder()
    primer = _primer_file()
    with TestClient(create_app(generate=rec)) as c:
        r = c.post("/api/generate",
                   data={"model": DEFAULT_MODEL, "n": "3", "length": "12", "length_unit": "notes",
                         "temperature": "0.5", "top_k": "10", "top_p": "0.9", "seed": "42"},
                   files={"primer": ("mine.mid", primer, "audio/midi")})
    assert r.status_code == 200, r.text
    (engine, kwargs), = rec.calls
    assert engine.path == default_model_dir()
    primer_score = kwargs.pop("primer")
    assert primer_score.equals(midi.read_bytes(primer))
    assert kwargs == {"n": 3, "length": "12 notes", "temperature": 0.5, "top_k": 10,
                      "top_p": 0.9, "seed": 42, "threads": 1, **UNSET}
    pieces = r.json()["pieces"]
    assert [p["index"] for p in pieces] == [0, 1, 2] and {p["seed"] for p in pieces} == {42}
    assert r.json()["warnings"] == []


def test_blank_fields_mean_the_defaults_and_a_drawn_seed():
    rec = Recorder()
    with TestClient(create_app(generate=rec)) as c:
        r = c.post("/api/generate", data={"length": "4", "top_k": "", "top_p": "", "seed": ""})
    assert r.status_code == 200, r.text
    (_, kwargs), = rec.calls
    seed = kwargs.pop("seed")
    assert isinstance(seed, int) and 0 <= seed < 2**32
    assert r.json()["pieces"][0]["seed"] == seed
    assert kwargs == {"n": 1, "length": "4 beats", "temperature": 1.0, "top_k": None,
                      "top_p": None, "primer": None, "threads": 1, **UNSET}


def test_musical_controls_reach_generate_and_shape_the_pieces():
    """Key, strictness, range, voices, density, ending and early end from the form are the
    arguments generate gets, and the pieces keep them."""
    from musgen.engine.constraints import parse_key

    scale = parse_key("D minor").pitch_classes
    rec = Recorder()
    fields = {"n": "2", "length": "16", "seed": "5", "key": " D minor ",
              "scale_strictness": "1", "pitch_range": "C3-C6", "max_voices": "3",
              "density": "2.5", "ending": "beat", "allow_early_end": "on", "max_rest": "0.5"}
    with TestClient(create_app(generate=rec)) as c:
        r = c.post("/api/generate", data=fields)
        assert r.status_code == 200, r.text
        scores = [midi.read_bytes(c.get(p["midi_url"]).content) for p in r.json()["pieces"]]
    (_, kwargs), = rec.calls
    assert {k: kwargs[k] for k in ("key", "scale_strictness", "pitch_range", "max_voices",
                                   "density", "ending", "allow_early_end", "max_rest")} == {
        "key": "D minor", "scale_strictness": 1.0, "pitch_range": "C3-C6", "max_voices": 3,
        "density": 2.5, "ending": "beat", "allow_early_end": True, "max_rest": 0.5}
    for score in scores:
        assert set((score.notes["pitch"] % 12).tolist()) <= set(scale)
        assert 48 <= score.notes["pitch"].min() and score.notes["pitch"].max() <= 84


def test_version_2_controls_for_a_version_2_model(tmp_path):
    """A codec-version-2 model is offered with its styles; tempo, style and instruments from
    the form reach generate (the instrument list split, numbers as numbers) and the pieces
    follow them; a version-1 model refuses them with generate's own message."""
    config = musgen.codec.default_config(version=2, styles=("chorale", "folk"))
    random_model_dir(tmp_path / "models" / "v2", vocab_size=config.vocab_size,
                     embedding_dim=8, lstm_units=[16], seed=4, codec=config.to_dict())
    v1 = musgen.codec.default_config()
    random_model_dir(tmp_path / "models" / "v1", vocab_size=v1.vocab_size,
                     embedding_dim=8, lstm_units=[16], seed=5, codec=v1.to_dict())
    rec = Recorder()
    with TestClient(create_app(tmp_path / "models", generate=rec)) as c:
        models = {m["name"]: m for m in c.get("/api/options").json()["models"]}
        assert models["v2"]["features"] == ["styles", "tempo", "instruments"]
        assert models["v2"]["styles"] == ["chorale", "folk"]
        assert models["v1"]["features"] == [] and models["v1"]["styles"] == []
        r = c.post("/api/generate", data={"model": "v2", "n": "1", "length": "8", "seed": "2",
                                          "bpm": "90", "style": "folk",
                                          "instruments": "piano, 33 ,drums"})
        assert r.status_code == 200, r.text
        score = midi.read_bytes(c.get(r.json()["pieces"][0]["midi_url"]).content)
        (_, kwargs), = rec.calls
        assert (kwargs["bpm"], kwargs["style"], kwargs["instruments"]) == (
            90.0, "folk", ["piano", 33, "drums"])
        assert 60e6 / score.tempos["tempo"][0] == pytest.approx(90, rel=0.04)
        assert set(score.programs["program"].tolist()) <= {0, 33}
        r = c.post("/api/generate", data={**SMALL, "model": "v1", "bpm": "90"})
        assert r.status_code == 400
        assert r.json()["error"].startswith("bpm: this model's codec has no tempo tokens")


def test_pieces_are_those_generate_makes_and_repeat_with_their_seed(client):
    first = client.post("/api/generate", data=SMALL).json()["pieces"]
    again = client.post("/api/generate", data=SMALL).json()["pieces"]
    expected = musgen.generate(n=2, length="8 beats", seed=3)
    for a, b, score in zip(first, again, expected):
        assert a["id"] != b["id"]
        got = client.get(a["midi_url"])
        assert got.status_code == 200 and got.headers["content-type"] == "audio/midi"
        assert got.content == client.get(b["midi_url"]).content == _midi_bytes(score)
        assert a["notes"] == score.n_notes
        assert a["seconds"] == pytest.approx(score.duration_seconds, abs=0.01)
        assert f'filename="musgen-{DEFAULT_MODEL}-seed3-' in got.headers["content-disposition"]


def test_primer_is_continued(client):
    primer = _primer_file()
    r = client.post("/api/generate", data={"length": "8", "seed": "1"},
                    files={"primer": ("p.mid", primer)})
    assert r.status_code == 200, r.text
    piece = midi.read_bytes(client.get(r.json()["pieces"][0]["midi_url"]).content)
    head = midi.read_bytes(primer).notes
    assert piece.n_notes > len(head)
    np.testing.assert_array_equal(piece.notes[["pitch", "start"]][: len(head)],
                                  head[["pitch", "start"]])


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("fields, message", [
    ({"n": "0"}, "n: 0 is outside the allowed range >= 1"),
    ({"n": "two"}, "n: 'two' is not an integer"),
    ({"n": "9"}, "n: 9 pieces is more than the 8 allowed per request"),
    ({"length": "0"}, "length: 0 is outside the allowed range >= 1"),
    ({"length": "257"}, "length: 257 beats is more than the 256 beats allowed per piece"),
    ({"length": "5000", "length_unit": "tokens"},
     "length: 5000 tokens is more than the 4096 tokens allowed per piece"),
    ({"length_unit": "bars"}, "length_unit: 'bars', expected one of beats, notes, tokens"),
    ({"temperature": "-0.5"}, "temperature: -0.5 is outside the allowed range [0.0, 5.0]"),
    ({"temperature": "nan"}, "temperature: 'nan' is not a finite number"),
    ({"temperature": "hot"}, "temperature: 'hot' is not a number"),
    ({"top_k": "-1"}, "top_k: -1 is outside the allowed range >= 0"),
    ({"top_k": "1.5"}, "top_k: '1.5' is not an integer"),
    ({"top_p": "0"}, "top_p: 0.0 is outside the allowed range (0, 1]"),
    ({"top_p": "1.5"}, "top_p: 1.5 is outside the allowed range [0.0, 1.0]"),
    ({"seed": "-1"}, "seed: -1 is outside the allowed range [0, 9007199254740991]"),
    ({"seed": str(2**60)}, f"seed: {2**60} is outside the allowed range [0, 9007199254740991]"),
    ({"model": "nope"}, f"model: unknown model 'nope'; choose one of {DEFAULT_MODEL}, jsb-v1"),
    ({"colour": "blue"}, "colour: not an option of this server's generate(); the options are "
                         "allow_early_end, bpm, density, ending, instruments, key, length, "
                         "length_unit, max_rest, max_voices, min_voices, model, n, pitch_range, "
                         "primer, scale_strictness, seed, style, temperature, top_k, top_p"),
    ({"key": "H major"}, "key: 'H major'"),
    ({"max_rest": "-1"}, "max_rest: -1.0 is outside the allowed range [0.0, 64.0]"),
    ({"max_rest": "soon"}, "max_rest: 'soon' is not a number"),
    ({"key": "C" * 201}, "key: 201 characters, more than the 200 allowed"),
    ({"scale_strictness": "2"}, "scale_strictness: 2.0 is outside the allowed range [0.0, 1.0]"),
    ({"pitch_range": "84-48"}, "pitch_range:"),
    ({"max_voices": "0"}, "max_voices: 0 is outside the allowed range [1, 32]"),
    ({"density": "0"}, "density: 0.0 is outside the allowed range (0, 32.0]"),
    ({"ending": "sometimes"}, "ending: 'sometimes', expected one of auto, beat, bar, model, "
                              "none"),
    ({"allow_early_end": "maybe"}, "allow_early_end: 'maybe', expected on or off"),
    ({"instruments": "piano,,drums"}, "instruments: 'piano,,drums' has an empty entry; expected "
                                      "names or numbers separated by commas"),
    ({"primer": "song.mid"}, "primer: expected a MIDI file upload"),
])
def test_bad_fields_get_400_naming_the_field(client, fields, message):
    r = client.post("/api/generate", data=fields)
    assert r.status_code == 400
    error = r.json()["error"]
    # messages of generate's own checks are quoted by their start
    assert error == message or (message.endswith(("'", ":")) and error.startswith(message))
    assert "\n" not in error


def test_repeated_field_and_file_in_a_text_field(client):
    r = client.post("/api/generate", data={"n": ["1", "2"]})
    assert r.status_code == 400 and r.json()["error"] == "n: given more than once"
    r = client.post("/api/generate", files={"seed": ("s.mid", b"MThd")})
    assert r.status_code == 400 and r.json()["error"] == "seed: a file was sent, expected a value"


def test_bad_primer_files(client):
    r = client.post("/api/generate", files={"primer": ("p.mid", b"RIFF not midi at all")})
    assert r.status_code == 400
    assert r.json()["error"] == ("primer: byte 8: RIFF file is not an RMID file (expected "
                                 "'RMID' at byte 8)")
    # A damaged file that can be recovered is used, and the page is told.
    good = _primer_file()
    r = client.post("/api/generate", data={"length": "4"},
                    files={"primer": ("p.mid", good[:-4])})  # End-of-Track cut off
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] and "primer" in r.json()["warnings"][0]


# ----------------------------------------------------------------------------- limits
def test_upload_size_limits():
    limits = Limits(max_upload_bytes=2000, max_primer_notes=4)
    with TestClient(create_app(limits=limits)) as c:
        # over the primer limit, under the body limit: refused by the service
        r = c.post("/api/generate", files={"primer": ("p.mid", b"M" * 2001)})
        assert r.status_code == 413
        assert r.json() == {"error": "primer: 2001 bytes is more than the 2000 bytes allowed"}
        # a body over the whole-request limit is refused before it is parsed
        r = c.post("/api/generate", files={"primer": ("p.mid", b"M" * 200_000)})
        assert r.status_code == 413
        assert r.json()["error"].startswith("request body: ")
        assert "is larger than the 67536 bytes allowed (a primer MIDI file may have up to " \
               "2000 bytes)" in r.json()["error"]

        def chunks():  # no Content-Length: counted as it streams
            for _ in range(100):
                yield b"x" * 1000

        r = c.post("/api/generate", content=chunks(),
                   headers={"content-type": "multipart/form-data; boundary=zz"})
        assert r.status_code == 413
        assert r.json()["error"].startswith("request body: more than 67536 bytes")
        r = c.post("/api/generate", files={"primer": ("p.mid", _primer_file())})
        assert r.status_code == 400
        assert r.json() == {"error": "primer: 6 notes is more than the 4 allowed"}


def test_store_keeps_the_most_recent_pieces(audio_available):
    with TestClient(create_app(limits=Limits(max_stored_pieces=2))) as c:
        service = c.app.state.service
        first = c.post("/api/generate", data={**SMALL, "n": "1"}).json()["pieces"][0]
        assert c.get(first["audio_urls"]["wav"]).status_code == 200
        audio_file = service.store.audio_path(service.piece(first["id"]), "wav")
        assert audio_file.is_file()
        c.post("/api/generate", data=SMALL)
        r = c.get(first["midi_url"])
        assert r.status_code == 404 and "does not exist" in r.json()["error"]
        assert not audio_file.exists()  # its audio went with it
        assert len(service.store) == 2
    assert not service.store.folder.exists()  # the app's shutdown removes the audio folder


# ----------------------------------------------------------------------------- path tricks
@pytest.mark.parametrize("url", [
    "/static/../web/app.py",
    "/static/%2e%2e%2fapp.py",
    "/static/..%2F..%2Fpyproject.toml",
    "/static/app.py",          # a file beside static/, not in it
    "/static/%2Fetc%2Fpasswd",
    "/api/pieces/..%2F..%2Fetc%2Fpasswd/midi",
    "/api/pieces/%2e%2e/audio.wav",
    "/api/pieces/0123456789abcdef0123456789abcdef/roll.png",
    "/api/pieces/0123456789abcdef0123456789abcdef/audio.wav",
])
def test_no_url_reaches_the_file_system(client, url):
    r = client.get(url)
    assert r.status_code == 404
    assert b"musgen.web" not in r.content and b"root:" not in r.content


@pytest.mark.parametrize("name", ["../../etc", "/etc/passwd", str(default_model_dir()),
                                  "default/../default", "models/default"])
def test_model_is_a_name_never_a_path(client, name):
    r = client.post("/api/generate", data={**SMALL, "model": name})
    assert r.status_code == 400 and r.json()["error"].startswith(f"model: unknown model {name!r}")


def test_audio_format_must_be_offered(client, audio_available):
    piece = client.post("/api/generate", data=SMALL).json()["pieces"][0]
    for fmt in ("aiff", "mp3", "wav%2F..%2F..%2Fx"):
        r = client.get(f"/api/pieces/{piece['id']}/audio.{fmt}")
        assert r.status_code == 404


# ----------------------------------------------------------------------------- media
def test_piece_audio_lasts_as_long_as_the_piece(client, audio_available):
    piece = client.post("/api/generate", data=SMALL).json()["pieces"][0]
    assert set(piece["audio_urls"]) >= {"wav", "flac"}
    r = client.get(piece["audio_urls"]["wav"])
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(r.content)) as w:
        seconds = w.getnframes() / w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float) / 32768
    assert piece["seconds"] <= seconds <= piece["seconds"] + 2.05
    assert 20 * np.log10(np.sqrt(np.mean(pcm ** 2))) > -50
    # the player may ask for a part of the file
    part = client.get(piece["audio_urls"]["wav"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == r.content[:100]
    sf = pytest.importorskip("soundfile")
    flac = client.get(piece["audio_urls"]["flac"])
    assert flac.status_code == 200 and flac.headers["content-type"] == "audio/flac"
    data, rate = sf.read(io.BytesIO(flac.content))
    assert len(data) / rate == pytest.approx(seconds, abs=1e-3)


def test_without_a_synthesizer_the_page_says_why(monkeypatch):
    import musgen.render as r

    monkeypatch.setattr(r, "audio_status", lambda soundfont=None: (False, "no SoundFont found"))
    with TestClient(create_app()) as c:
        assert c.get("/api/options").json()["audio"] == {
            "available": False, "why": "no SoundFont found", "formats": []}
        piece = c.post("/api/generate", data=SMALL).json()["pieces"][0]
        assert piece["audio_urls"] == {}
        r = c.get(f"/api/pieces/{piece['id']}/audio.wav")
        assert r.status_code == 404
        assert r.json()["error"] == "audio is not available on this server: no SoundFont found"


def test_piece_roll_shows_its_notes(client):
    from matplotlib.image import imread
    from musgen.render.pianoroll import part_colors, piano_roll_figure
    from musgen.web.roll import ROLL_HEIGHT, ROLL_WIDTH

    piece = client.post("/api/generate", data=SMALL).json()["pieces"][0]
    r = client.get(piece["roll_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    pixels = (imread(io.BytesIO(r.content), format="png")[..., :3] * 255).round().astype(int)
    assert pixels.shape == (ROLL_HEIGHT, ROLL_WIDTH, 3)
    score = midi.read_bytes(client.get(piece["midi_url"]).content)
    fig = piano_roll_figure(score, title="x", width=ROLL_WIDTH, height=ROLL_HEIGHT, dpi=100)
    ax = fig.axes[0]
    color = np.round(np.asarray(part_colors(1)[0][:3]) * 255).astype(int)
    tpb = score.ticks_per_beat
    hits = 0
    for note in score.notes:
        mid_beat = (note["start"] + note["end"]) / 2 / tpb
        x, y = ax.transData.transform((mid_beat, note["pitch"]))
        hits += np.abs(pixels[round(ROLL_HEIGHT - y), round(x)] - color).max() <= 3
    assert hits == score.n_notes
    assert client.get(piece["roll_url"]).content == r.content  # drawn once, then kept


# ----------------------------------------------------------------------------- catalog
def test_models_folder_adds_models_by_name(tmp_path):
    config = musgen.codec.default_config()
    random_model_dir(tmp_path / "models" / "tiny", vocab_size=config.vocab_size,
                     embedding_dim=8, lstm_units=[16], seed=1, codec=config.to_dict())
    random_model_dir(tmp_path / "models" / DEFAULT_MODEL, vocab_size=config.vocab_size,
                     embedding_dim=8, lstm_units=[16], seed=2, codec=config.to_dict())
    (tmp_path / "models" / "not-a-model").mkdir()
    with TestClient(create_app(tmp_path / "models")) as c:
        models = c.get("/api/options").json()["models"]
        assert [(m["name"], m["shipped"]) for m in models] == [
            (DEFAULT_MODEL, True), ("jsb-v1", True), (f"{DEFAULT_MODEL}-2", False),
            ("tiny", False)]
        r = c.post("/api/generate", data={**SMALL, "model": "tiny"})
        assert r.status_code == 200, r.text
        expected = musgen.generate(tmp_path / "models" / "tiny", n=2, length="8 beats", seed=3)
        got = c.get(r.json()["pieces"][1]["midi_url"]).content
        assert got == _midi_bytes(expected[1])
    with pytest.raises(musgen.ModelFormatError, match="--models .*nowhere: no such folder"):
        create_app(tmp_path / "nowhere")


def test_damaged_model_folder_is_a_500_without_its_path(tmp_path, capsys):
    config = musgen.codec.default_config()
    path = random_model_dir(tmp_path / "models" / "broken", vocab_size=config.vocab_size,
                            embedding_dim=8, lstm_units=[16], seed=1, codec=config.to_dict())
    (path / "weights.safetensors").write_bytes(b"not safetensors")
    with TestClient(create_app(tmp_path / "models")) as c:
        r = c.post("/api/generate", data={**SMALL, "model": "broken"})
    assert r.status_code == 500
    assert r.json() == {"error": "model 'broken' cannot be loaded on this server (its files are "
                                 "damaged; the server's log says how)"}
    assert str(tmp_path) not in r.text
    assert "weights.safetensors" in capsys.readouterr().err


# ----------------------------------------------------------------------------- concurrency
def test_eight_concurrent_requests_are_all_served(live_server):
    """Each generation blocks until all eight are running at once and the page's options were
    served meanwhile: generation runs in worker threads, off the event loop."""
    import httpx

    barrier = threading.Barrier(9, timeout=60)  # 8 requests + this test

    def generate(model=None, **kwargs):
        barrier.wait()
        return musgen.generate(model, **kwargs)

    generate.__signature__ = inspect.signature(musgen.generate)
    base = live_server(create_app(generate=generate))
    results = [None] * 8

    def post(i):
        with httpx.Client(timeout=120) as h:
            results[i] = h.post(f"{base}/api/generate",
                                data={"n": "1", "length": "4", "seed": str(i)})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    with httpx.Client(timeout=60) as h:  # answered while all eight generations are waiting
        assert h.get(f"{base}/api/options").status_code == 200
    barrier.wait()
    for t in threads:
        t.join(120)
    assert [r.status_code for r in results] == [200] * 8
    seeds = [r.json()["pieces"][0]["seed"] for r in results]
    assert seeds == list(range(8))


def test_eight_concurrent_real_generations(live_server):
    import httpx

    base = live_server(create_app())
    results = [None] * 8

    def post(i):
        with httpx.Client(timeout=300) as h:
            results[i] = h.post(f"{base}/api/generate",
                                data={"n": "2", "length": "16", "seed": str(i)})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert [r.status_code for r in results] == [200] * 8
    for i, r in enumerate(results):
        expected = musgen.generate(n=2, length="16 beats", seed=i)
        with httpx.Client() as h:
            got = h.get(base + r.json()["pieces"][0]["midi_url"]).content
        assert got == _midi_bytes(expected[0])


# ----------------------------------------------------------------------------- command line
def _musgen(*args, **kw):
    return subprocess.run([sys.executable, "-m", "musgen", *map(str, args)],
                          capture_output=True, text=True, **kw)


@pytest.mark.parametrize("args, message", [
    (["--max-pieces", "0"], "musgen serve: error: --max-pieces must be >= 1"),
    (["--models", "/nonexistent-models"],
     "musgen serve: error: --models /nonexistent-models: no such folder"),
])
def test_cli_serve_bad_options_are_one_line(args, message):
    r = _musgen("serve", *args)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [message]


def test_cli_serve_serves_the_page(tmp_path):
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "musgen", "serve", "--port", str(port),
                             "--max-pieces", "3", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = None
        for _ in range(300):  # wait for start-up, up to a minute
            if proc.poll() is not None:
                break
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/api/options", timeout=5).json()
                break
            except httpx.TransportError:
                threading.Event().wait(0.2)
        assert body is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert body["limits"]["max_pieces"] == 3
        r = httpx.post(f"http://127.0.0.1:{port}/api/generate", data={"n": "4"}, timeout=30)
        assert r.status_code == 400 and "more than the 3 allowed" in r.json()["error"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"musgen serve: http://127.0.0.1:{port}/" in err
