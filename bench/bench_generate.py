"""Benchmark of the generation loop's own costs, each as ratios from one run:

1. the generation rules: time per token with every constraint on (key mask, pitch range, most
   voices, density bias, the beat ending and min_length) against none (the grammar only), at
   batch 1 and 256 (target: <= 10% slower);
2. finished streams leaving the batch: ``n`` pieces of "64 beats" (default 1000), the share of
   stream-steps that made a kept token, against what stepping every stream until the longest
   ended would have given (target: >= 0.95);
3. primer warm-up: time per primer token (layer by layer, input projections as one matrix
   product per layer) against stepping the primer token by token, and against the time per
   generated token at batch 1, in the same run.

Usage: python bench/bench_generate.py [--model DIR] [--n 1000] [--threads T] [--quick]
(--quick: small sizes, to check the script runs). The default model is the shipped one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_seconds  # noqa: E402


def _engine(model):
    from musgen import engine
    from musgen.generation import default_model_dir

    return engine.load(model or default_model_dir(), backend="cpp")


def _all_rules(eng):
    from musgen.engine.constraints import StaticArrays, parse_key
    from musgen.engine.rules import Rules
    from musgen.generation import token_tables

    tables = token_tables(eng.codec)
    static = StaticArrays(tables, list(eng.codec.token_names))
    static.key(parse_key("D minor"), 1.0)
    static.pitch_range(48, 84)
    allowed, bias = static.arrays()
    # ending "none" (and no early end) keeps the token count the same as without rules
    return Rules(tables, ending="none", allowed=allowed, bias=bias, max_voices=4, density=2.0)


def rules_cost(eng, batch: int, tokens: int, threads, repeats: int) -> tuple:
    """(seconds per token without rules, with every rule) at one batch size: every stream
    makes ``tokens`` tokens either way (EOS is taken out of the grammar of the run without
    rules, and the rules' min_length masks it), so only the per-token costs differ."""
    from types import SimpleNamespace

    from musgen import codec

    grammar = codec.grammar(eng.codec)
    no_eos = SimpleNamespace(table=grammar.table.copy(), start_state=grammar.start_state,
                             can_end=grammar.can_end)
    no_eos.table[:, eng.codec.eos_id] = -1
    rules = _all_rules(eng)

    def once(g, r):
        t0 = time.perf_counter()
        out = eng.generate_tokens(batch, primer=[eng.codec.bos_id], length=10**9, grammar=g,
                                  eos_id=eng.codec.eos_id, max_tokens=tokens, seed=1,
                                  threads=threads, rules=r)
        return (time.perf_counter() - t0) / sum(len(t) for t in out)
    once(no_eos, None)
    # interleaved, so machine noise hits both alike
    plain, ruled = [], []
    for _ in range(repeats):
        plain.append(once(no_eos, None))
        ruled.append(once(grammar, rules))
    return float(np.median(plain)), float(np.median(ruled))


def useful_share(eng, n: int, threads) -> dict:
    """Rows the engine stepped for n pieces of 64 beats against the rows stepping every stream
    to the longest would take."""
    from musgen import codec
    from musgen.engine.rules import Rules
    from musgen.generation import token_tables

    tables = token_tables(eng.codec)
    t0 = time.perf_counter()
    out = eng.generate_tokens(n, primer=[eng.codec.bos_id], length=64 * tables.steps_per_beat,
                              unit="steps", grammar=codec.grammar(eng.codec),
                              eos_id=eng.codec.eos_id, max_tokens=256 * 64 + 256, seed=0,
                              threads=threads, rules=Rules(tables))
    seconds = time.perf_counter() - t0
    lengths = np.array([len(t) for t in out])
    made = int(lengths.sum())
    # each step after the warm-up makes one token of every stream it computes
    return dict(seconds=seconds, tokens=made, rows=out.rows_stepped,
                share=(made - n) / out.rows_stepped,
                share_without_dropping=(made - n) / (n * (lengths.max() - 1)))


def warm_up_costs(eng, primer_len: int, gen_tokens: int, repeats: int) -> dict:
    """Seconds per token: warm-up (batched), warm-up stepped token by token, generation at
    batch 1 (all on one thread)."""
    from musgen import codec

    cpp = eng._cpp
    tok = np.random.default_rng(0).integers(3, eng.vocab_size, (1, primer_len)).astype(np.int32)
    batched = median_seconds(lambda: cpp.warm_up_logits(tok, 1), repeats) / primer_len
    stepped = median_seconds(lambda: cpp.logits(tok, 1), repeats) / primer_len
    grammar = codec.grammar(eng.codec)

    def gen():
        eng.generate_tokens(1, primer=[eng.codec.bos_id], length=10**9, grammar=grammar,
                            max_tokens=gen_tokens, seed=3, threads=1)
    generated = median_seconds(gen, repeats) / gen_tokens
    return dict(batched=batched, stepped=stepped, generated=generated)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model directory (default: the shipped one)")
    p.add_argument("--n", type=int, default=1000, help="pieces of 64 beats for the share")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="small sizes: check the script runs")
    args = p.parse_args(argv)
    eng = _engine(args.model)
    repeats = 2 if args.quick else args.repeats
    n = 40 if args.quick else args.n
    print(f"model: {eng.path}, {eng.config['model']['lstm_units']} units, "
          f"{eng._cpp.kernels} kernels")
    for batch, tokens in ((1, 300 if args.quick else 2000), (256, 40 if args.quick else 300)):
        # batch 1 on one thread: a team's spin barriers on a busy machine would measure noise
        plain, ruled = rules_cost(eng, batch, tokens, 1 if batch == 1 else args.threads,
                                  repeats)
        print(f"rules, batch {batch:>3}: {plain * 1e6:8.2f} us/token without, "
              f"{ruled * 1e6:8.2f} with every constraint: {ruled / plain:.3f}x "
              f"(target <= 1.10)")
    share = useful_share(eng, n, args.threads)
    print(f"{n} pieces of 64 beats: {share['tokens']} tokens in {share['seconds']:.1f} s, "
          f"{share['rows']} rows stepped: useful share {share['share']:.3f} (target >= 0.95; "
          f"stepping every stream to the longest: {share['share_without_dropping']:.3f})")
    w = warm_up_costs(eng, 256 if args.quick else 4096, 200 if args.quick else 1000, repeats)
    print(f"primer warm-up: {w['batched'] * 1e6:.2f} us/token layer by layer, "
          f"{w['stepped'] * 1e6:.2f} stepped ({w['stepped'] / w['batched']:.2f}x); generation "
          f"at batch 1: {w['generated'] * 1e6:.2f} us/token ({1 / w['generated']:.0f} tokens/s, "
          f"warm-up {w['generated'] / w['batched']:.2f}x faster per token)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
