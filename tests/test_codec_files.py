"""The codec on real MIDI files: the shipped test files (always) and, opt-in, whole corpora.

On every file the C++ and Python encoders give identical tokens, the tokens obey the grammar,
and decoding gives ``quantize(score)`` on both backends."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from musgen import MidiWarning, codec, midi
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
    for b in backends:
        back = codec.decode(tokens[0], cfg, backend=b, tempo=first_tempo(score, cfg))
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
