"""Make the stored regression sample of the shipped version-1 model ``jsb-v1`` (the default model
before codec version 2).

    python tools/make_regression_sample.py [--check]

For a few fixed settings (seeds, lengths, sampling filters, a token primer) it records the
token ids that ``musgen.generate`` samples with that model, in
``tests/data/regression/default_v1_tokens.json``. ``tests/test_regression.py`` then asserts that
every backend still generates exactly those tokens: a version-1 model must keep generating what
it generated when the sample was made, whatever the later codec versions add.

The tokens are captured by running the engine with the very arguments ``generate`` passes, and
the script checks that ``generate`` returned the decoding of those tokens. ``--check`` compares
with the stored file instead of writing it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
#: The shipped version-1 model the sample is made with.
V1_NAME = "jsb-v1"
OUT = REPO / "tests" / "data" / "regression" / "default_v1_tokens.json"

#: The settings sampled: keyword arguments of ``musgen.generate`` (JSON-serializable).
CASES = [
    {"n": 2, "length": "32 beats", "seed": [0, 1]},
    {"n": 1, "length": "64 tokens", "seed": 2, "top_p": 0.9},
    {"n": 1, "length": "24 notes", "seed": 3, "temperature": 0.8, "top_k": 20},
    {"n": 1, "length": "16 beats", "seed": 4, "temperature": 0.0},
    {"n": 1, "length": "48 tokens", "seed": 5, "primer": "corpus_small/train/train_000.mid:40"},
]


def primer_tokens(spec: str, codec) -> np.ndarray:
    """``"<file under tests/data>:<k>"``: the first k tokens of the file's encoding (BOS first)."""
    from musgen import codec as codec_mod
    from musgen import midi

    name, k = spec.rsplit(":", 1)
    tokens = codec_mod.encode(midi.read(REPO / "tests" / "data" / name), codec, backend="python")
    return np.asarray(tokens[:int(k)], dtype=np.int32)


def sample_case(case: dict, backend: str) -> list[list[int]]:
    """The token streams (primer included) that ``generate(**case)`` decodes on ``backend``."""
    from musgen import codec as codec_mod
    from musgen import engine, generate
    from musgen.generation import parse_length
    from musgen.modelzoo import resolve_model

    eng = engine.load(resolve_model(V1_NAME), backend=backend)
    codec = eng.codec
    kwargs = dict(case)
    primer = None
    if "primer" in kwargs:
        primer = primer_tokens(kwargs.pop("primer"), codec)
    amount, unit = parse_length(kwargs["length"])
    grammar = codec_mod.grammar(codec)
    is_note = np.isin(codec.token_types, [codec_mod.TYPE_PITCH, codec_mod.TYPE_DRUM_PITCH])
    if unit == "beats":
        budget, engine_unit, cap = amount * codec.steps_per_beat, "steps", 256 * amount + 256
    elif unit == "notes":
        budget, engine_unit, cap = amount, "notes", 32 * amount + 64
    else:
        budget, engine_unit, cap = amount, "tokens", amount + 64
    prime = np.array([codec.bos_id], np.int32) if primer is None else primer
    streams = eng.generate_tokens(
        kwargs["n"], primer=prime, length=budget, unit=engine_unit,
        temperature=kwargs.get("temperature", 1.0), top_k=kwargs.get("top_k"),
        top_p=kwargs.get("top_p"), seed=kwargs["seed"], grammar=grammar, eos_id=codec.eos_id,
        clock_steps=np.asarray(codec.token_steps, np.int32), is_note=is_note.astype(np.uint8),
        max_tokens=cap)
    out = []
    for gen in streams:
        tokens = np.concatenate([prime, gen]).astype(np.int32)
        if tokens[-1] != codec.eos_id and grammar.can_end[grammar.walk(tokens)]:
            tokens = np.concatenate([tokens, [codec.eos_id]]).astype(np.int32)
        out.append(tokens)
    scores = generate(resolve_model(V1_NAME), primer=primer, backend=backend,
                      **{k: v for k, v in kwargs.items()})
    for tokens, score in zip(out, scores):
        want = codec_mod.decode(tokens, codec, backend="python").notes
        if not np.array_equal(want, score.notes):
            sys.exit(f"{case}: generate() did not return the decoding of the sampled tokens")
    return [t.tolist() for t in out]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the stored file")
    args = parser.parse_args()
    results = []
    for case in CASES:
        per_backend = {b: sample_case(case, b) for b in ("python", "cpp")}
        if per_backend["python"] != per_backend["cpp"]:
            sys.exit(f"{case}: the python and cpp engines disagree")
        results.append({"generate": case, "tokens": per_backend["python"]})
    doc = {"model": "python/musgen/models/jsb-v1", "codec_version": 1, "cases": results}
    if args.check:
        stored = json.loads(OUT.read_text())
        if stored != doc:
            print(f"{V1_NAME} no longer generates the stored tokens", file=sys.stderr)
            return 1
        print(f"{OUT.relative_to(REPO)}: the same tokens")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}: {sum(len(c['tokens']) for c in results)} streams")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
