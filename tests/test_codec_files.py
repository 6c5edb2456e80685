"""The codec on real MIDI files: the shipped test files (always) and, opt-in, whole corpora.

On every file the C++ and Python encoders give identical tokens, the tokens obey the grammar,
and decoding gives ``quantize(score)`` on both backends."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from musgen import CodecWarning, MidiWarning, codec, midi
from musgen._backend import has_cpp
from musgen.codec._python import first_tempo

# Random and real scores hold long silences and notes that encode shortens (with a CodecWarning);
# the warnings themselves are tested in test_codec_limits.py.
pytestmark = pytest.mark.filterwarnings("ignore::musgen.CodecWarning")

DATA = Path(__file__).resolve().parent / "data" / "midi"
CONFIGS = {
    "beats": codec.default_config(),
    "drums": codec.default_config(keep_drums=True),
    "seconds": codec.default_config(timing="seconds"),
    "v2": codec.default_config(version=2),
}


def shipped_files() -> list:
    return sorted(str(p) for p in DATA.rglob("*") if p.suffix.lower() in (".mid", ".midi",
                                                                          ".rmi", ".kar"))


def read_good(paths, backend=None):
    """(scores, paths) of the files that read; damaged-but-recovered files are included."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MidiWarning)
        res = midi.read_many(paths, backend=backend, on_error="skip")
    return res.scores, res.paths


def check_file(score, path, cfg, backends):
    tokens = [codec.encode(score, cfg, backend=b) for b in backends]
    for t in tokens[1:]:
        assert t.tolist() == tokens[0].tolist(), f"{path}: backends disagree"
    g = codec.grammar(cfg)
    assert g.walk(tokens[0]) == codec.S_END, path
    expected = codec.quantize(score, cfg)
    tempo = first_tempo(score, cfg) if cfg.version == 1 else None
    for b in backends:
        back = codec.decode(tokens[0], cfg, backend=b, tempo=tempo)
        assert back.equals(expected), f"{path}: decode({b}) differs from quantize"
    return int(np.count_nonzero(cfg.token_types[tokens[0]] == codec.TYPE_VELOCITY))


@pytest.fixture(scope="module")
def shipped():
    scores, paths = read_good(shipped_files())
    assert len(paths) >= 50, f"expected the shipped test files under {DATA}, found {len(paths)}"
    return scores, paths


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_codec_files_shipped_roundtrip_and_parity(shipped, name):
    scores, paths = shipped
    backends = ["cpp", "python"] if has_cpp() else ["python"]
    cfg = CONFIGS[name]
    encoded_notes = sum(check_file(s, p, cfg, backends) for s, p in zip(scores, paths))
    assert encoded_notes > 1000  # the files hold real music, not only edge cases


def test_codec_files_encode_many_matches_encode(shipped, backend):
    scores, _ = shipped
    cfg = CONFIGS["drums"]
    many = codec.encode_many(scores, cfg, threads=2, backend=backend)
    assert [m.tolist() for m in many] == [codec.encode(s, cfg, backend=backend).tolist()
                                          for s in scores]


CORPORA = {
    "jsb_chorales": "corpora/jsb_chorales/**/*.mid",
    "nottingham": "corpora/nottingham/*.mid",
    "opengameart": "corpora/opengameart/**/*.mid",
}


@pytest.mark.corpus
@pytest.mark.skipif(not has_cpp(), reason="parity needs the C++ extension")
@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_codec_files_corpus_parity(corpus_root, corpus):
    files = sorted(str(p) for p in corpus_root.glob(CORPORA[corpus]))
    assert files, f"no files for {corpus} under {corpus_root}"
    scores, paths = read_good(files)
    assert len(paths) == len(files), f"{corpus}: {len(files) - len(paths)} files did not read"
    for name, cfg in CONFIGS.items():
        cpp = codec.encode_many(scores, cfg, backend="cpp")
        for s, p, t in zip(scores, paths, cpp):
            assert t.tolist() == codec.encode(s, cfg, backend="python").tolist(), \
                f"{p}: backends disagree ({name})"
        if name == "beats":
            for s, p in zip(scores, paths):
                check_file(s, p, cfg, ["cpp", "python"])


#: Every corpus of the data folder (a new one must be added here: the test checks the list).
ALL_CORPORA = ("jsb_chorales", "music21_bach", "nottingham", "opengameart", "piano_midi_de",
               "pop909")
MIDI_SUFFIXES = (".mid", ".midi", ".rmi", ".kar")


@pytest.mark.corpus
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("corpus", ALL_CORPORA)
def test_codec_files_every_corpus_roundtrip(corpus_root, corpus, version):
    """decode(encode(s)) == quantize(s) for every file of every corpus, on both backends, and
    the backends' tokens are identical (the issue's acceptance test)."""
    found = sorted(p.name for p in (corpus_root / "corpora").iterdir() if p.is_dir())
    assert tuple(found) == ALL_CORPORA, "a corpus was added or removed: update ALL_CORPORA"
    files = sorted(str(p) for p in (corpus_root / "corpora" / corpus).rglob("*")
                   if p.suffix.lower() in MIDI_SUFFIXES)
    scores, paths = read_good(files)
    assert len(paths) == len(files), f"{corpus}: {len(files) - len(paths)} files did not read"
    cfg = codec.default_config(version=version)
    backends = ["cpp", "python"] if has_cpp() else ["python"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodecWarning)  # long silences of real files
        many = codec.encode_many(scores, cfg, backend=backends[0])
        for s, p, t in zip(scores, paths, many):
            tokens = t.tolist()
            if len(backends) == 2:
                assert codec.encode(s, cfg, backend="python").tolist() == tokens, \
                    f"{p}: backends disagree"
            expected = codec.quantize(s, cfg)
            tempo = first_tempo(s, cfg) if version == 1 else None
            for b in backends:
                assert codec.decode(t, cfg, backend=b, tempo=tempo).equals(expected), \
                    f"{p}: decode({b}) differs from quantize"
