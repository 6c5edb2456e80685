"""Training defaults by measurement: the earlier defaults against today's, side by side in one
run, their epochs interleaved (A, B, A, B, ...) in one process so both see the same machine.

Each setting trains with musgen's own loop (``musgen.training.loop``: the same model, optimizer,
validation, learning-rate drops, checkpoints) on JSB Chorales (quarter grid, standard split),
each within its own time budget (``--minutes``, default 16: the budget the shipped model's
JSB figures in bench/results/training.md were made with). Printed:

* part 1: training tokens/s at batch 32, 64 and 128, with and without XLA (short interleaved
  runs of the same windows, before musgen's loop turns on op determinism, under which Keras
  runs no XLA), the data the defaults were chosen from;
* part 2, per setting: tokens/s of whole epochs (validation included), the validation NLL per
  token after every epoch (token-weighted over the whole valid split, computed alike for both
  settings and outside the timed part), the time to reach the reference validation NLL (the
  best the earlier defaults reach within their budget, or within ``--reference-epochs``), and
  the test NLL per token of each setting's best epoch (same windows, same weighting). On a
  busy machine epochs of the same setting vary 2-5x in length, so the time ratio is printed
  twice: measured, and estimated as training tokens needed / part 1's interleaved tokens/s
  (steadier; it leaves validation out).

Targets: the defaults reach the reference in at most 0.7x the earlier defaults' time, with a
test NLL no worse. ``--quick``: 2 epochs each on a quarter of the pieces (checks the script).
Training takes both cores for many minutes: run it with ``nice -n 10``.
Run alone: ``python bench/bench_train.py [--minutes 16] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MUSGEN_DATA", ROOT.parent / "shared" / "data"))
#: The defaults before they were chosen by measurement: batch 32, learning rate 2e-3, validation
#: at the training batch size (no XLA then or now: Keras's "auto" chose none for this model).
EARLIER = {"batch_size": 32, "learning_rate": 2e-3, "validation_batch_size": None}


# ----------------------------------------------------------------------------- measuring
def token_nll(model, x: np.ndarray, y: np.ndarray, pad_id: int, batch: int = 256) -> float:
    """Mean NLL (nats) per real target token of windows ``x -> y``."""
    import tensorflow as tf

    total, count = 0.0, 0
    for lo in range(0, len(x), batch):
        logits = model(x[lo:lo + batch], training=False)
        target = y[lo:lo + batch]
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=np.maximum(target, 0).astype(np.int32), logits=logits).numpy()
        real = target != pad_id
        total += float(nll[real].sum())
        count += int(real.sum())
    return total / max(count, 1)


def throughput_table(dataset, rounds: int, quick: bool) -> dict:
    """Part 1: training tokens/s by batch size and compiler, short interleaved runs."""
    import keras

    from musgen.training.config import TrainConfig
    from musgen.training.model import build_keras_model, model_section
    from musgen.training.windows import epoch_windows

    x, y = epoch_windows(dataset, "train", window=128, stride=64, seed=0, epoch=0, shuffle=True)
    pad = int(dataset.codec.pad_id)
    models = {}
    for bs in ((32, 64) if quick else (32, 64, 128)):
        for xla in (False, True):
            m = build_keras_model(model_section(TrainConfig(batch_size=bs), dataset.codec
                                                .vocab_size))
            m.compile(optimizer=keras.optimizers.Adam(2e-3, clipnorm=1.0),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                      ignore_class=pad),
                      jit_compile=xla)
            m.fit(x[:2 * bs], y[:2 * bs], batch_size=bs, epochs=1, verbose=0)  # compile
            models[(bs, xla)] = m
    rates: dict = {k: [] for k in models}
    for _ in range(rounds):
        for (bs, xla), m in models.items():
            n = bs * max(2 if quick else 4, (128 if quick else 384) // bs)
            t0 = time.perf_counter()
            m.fit(x[:n], y[:n], batch_size=bs, epochs=1, verbose=0)
            rates[(bs, xla)].append(n * x.shape[1] / (time.perf_counter() - t0))
    base = statistics.median(rates[(32, False)])
    print("part 1: training tokens/s (median of interleaved rounds)")
    for (bs, xla), r in rates.items():
        med = statistics.median(r)
        print(f"  batch {bs:4d}, XLA {'on ' if xla else 'off'}: {med:10,.0f} tokens/s "
              f"({med / base:.2f}x batch 32 without XLA)")
    return {k: statistics.median(v) for k, v in rates.items()}


class Setting:
    """One setting trained with musgen's loop, an epoch at a time."""

    def __init__(self, name: str, dataset, overrides: dict, minutes: float, work: Path):
        from musgen.training.config import TrainConfig
        from musgen.training.loop import _Run

        base = asdict(TrainConfig())
        base.update(overrides)
        base["max_minutes"] = minutes
        self.name, self.cfg = name, TrainConfig(**base)
        self.run = _Run(dataset, self.cfg, None, work / name / "checkpoints", strategy=None,
                        quiet=True, tensorboard=None)
        self.pad = int(dataset.codec.pad_id)
        self.valid_xy = self.run.valid[:2]
        self.elapsed, self.last, self.done = 0.0, 0.0, False
        self.curve: list = []  # (cumulative seconds, validation NLL per token, tokens trained)
        self.rates: list = []
        self.best, self.best_weights = float("inf"), None
        self.train_tokens = 0

    def can_go(self) -> bool:
        cfg = self.cfg
        return (not self.done and self.run.epoch < cfg.epochs
                and not (self.run.epoch > 0 and self.elapsed + self.last > cfg.max_minutes * 60))

    def epoch(self) -> None:
        run = self.run
        x, y, w = run.data("train", run.epoch, True)
        t0 = time.perf_counter()
        train_loss, val_loss = run.fit_epoch(x, y, w)
        improved, done = run.update_counters(train_loss, val_loss, time.perf_counter() - t0)
        run.save_checkpoint(improved, done)
        self.last = time.perf_counter() - t0
        self.elapsed += self.last
        run.epoch += 1
        self.done = done
        tokens = int((y != self.pad).sum())
        self.train_tokens += tokens
        self.rates.append(tokens / self.last)
        nll = token_nll(run.model, *self.valid_xy, self.pad)  # outside the timed part
        self.curve.append((self.elapsed, nll, self.train_tokens))
        if nll < self.best:
            self.best, self.best_weights = nll, run.model.get_weights()

    def time_to(self, target: float) -> float | None:
        return next((t for t, v, _ in self.curve if v <= target + 1e-12), None)

    def tokens_to(self, target: float) -> int | None:
        return next((n for _, v, n in self.curve if v <= target + 1e-12), None)

    def test_nll(self, dataset) -> float:
        from musgen.training.windows import epoch_windows

        self.run.model.set_weights(self.best_weights)
        x, y = epoch_windows(dataset, "test", window=self.cfg.window, stride=self.cfg.stride,
                             seed=0, epoch=0, shuffle=False)
        return token_nll(self.run.model, x, y, self.pad)


def side_by_side(dataset, minutes: float, work: Path, extra: dict, rates: dict,
                 reference_epochs: int | None) -> None:
    """Part 2: the earlier and today's defaults, epochs interleaved (``extra``: settings both
    take, e.g. fewer epochs for --quick; ``rates``: part 1's tokens/s by (batch, xla))."""
    from musgen.training.config import TrainConfig

    today = {k: getattr(TrainConfig(), k) for k in EARLIER}
    first = {**EARLIER, **extra}
    if reference_epochs:
        first["epochs"] = reference_epochs
    settings = [Setting("earlier", dataset, first, minutes, work),
                Setting("default", dataset, dict(extra), minutes, work)]
    print(f"\npart 2: earlier defaults {EARLIER} against today's {today}, "
          f"{minutes:g} minutes each, epochs interleaved")
    while any(s.can_go() for s in settings):
        for s in settings:
            if s.can_go():
                s.epoch()
                t, v, _ = s.curve[-1]
                print(f"  {s.name:8s} epoch {s.run.epoch:3d}: {t / 60:6.2f} min, valid NLL/token "
                      f"{v:.4f}, {s.rates[-1]:8,.0f} tokens/s", flush=True)
    earlier, new = settings
    target = earlier.best
    t_ref = earlier.time_to(target)
    t_new = new.time_to(target)
    tests = {s.name: s.test_nll(dataset) for s in settings}
    for s in settings:
        t = s.time_to(target)
        print(f"{s.name:8s}: {len(s.curve)} epochs in {s.elapsed / 60:.2f} min, median "
              f"{statistics.median(s.rates):,.0f} tokens/s (epochs, validation included), best "
              f"valid NLL/token {s.best:.4f}, reaches {target:.4f} "
              f"{'after %.2f min' % (t / 60) if t is not None else 'not within the budget'}, "
              f"test NLL/token {tests[s.name]:.4f}")
    speed = statistics.median(new.rates) / statistics.median(earlier.rates)
    if t_new is not None:
        print(f"ratio: time to the reference validation NLL, default / earlier = "
              f"{t_new / t_ref:.2f} measured (target <= 0.7: "
              f"{'met' if t_new <= 0.7 * t_ref else 'NOT met'})")
        rate_new = rates.get((new.cfg.batch_size, False))
        rate_ref = rates.get((earlier.cfg.batch_size, False))
        if rate_new and rate_ref:
            est = (new.tokens_to(target) / rate_new) / (earlier.tokens_to(target) / rate_ref)
            print(f"ratio: estimated from training tokens needed ({new.tokens_to(target):,} vs "
                  f"{earlier.tokens_to(target):,}) and part 1's tokens/s = {est:.2f} "
                  f"(target <= 0.7: {'met' if est <= 0.7 else 'NOT met'})")
    else:
        print("ratio: the default did not reach the reference validation NLL within the budget "
              "(target <= 0.7: NOT met)")
    print(f"ratio: test NLL default - earlier = {tests['default'] - tests['earlier']:+.4f} "
          f"(target <= 0: {'met' if tests['default'] <= tests['earlier'] + 1e-4 else 'NOT met'});"
          f" tokens/s default / earlier = {speed:.2f}x")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=16.0,
                        help="time budget of each setting (default 16)")
    parser.add_argument("--reference-epochs", type=int, default=None,
                        help="train the earlier defaults this many epochs (instead of the time "
                             "budget) for the reference validation NLL")
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs each on a quarter of the pieces (checks the script)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    corpus = DATA / "corpora" / "jsb_chorales" / "quarter"
    if not corpus.is_dir():
        print(f"bench_train: {corpus} is missing; set MUSGEN_DATA", file=sys.stderr)
        return 1
    import keras

    from musgen.data import Dataset, prepare

    print(f"bench_train: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
          "(a shared machine moves these figures; the ratios come from interleaved runs)")
    with tempfile.TemporaryDirectory(prefix="musgen-bench-train-") as tmp:
        tmp = Path(tmp)
        src = corpus
        if args.quick:  # a quarter of each split's pieces, split folders kept
            src = tmp / "quarter"
            for split in ("train", "valid", "test"):
                (src / split).mkdir(parents=True)
                for p in sorted((corpus / split).glob("*.mid"))[::4]:
                    (src / split / p.name).symlink_to(p)
        prepare(src, tmp / "jsb", quiet=True)
        dataset = Dataset.open(tmp / "jsb")
        keras.utils.set_random_seed(0)
        rates = throughput_table(dataset, rounds=1 if args.quick else 2, quick=args.quick)
        extra = {"epochs": 2} if args.quick else {}
        side_by_side(dataset, min(args.minutes, 5.0) if args.quick else args.minutes,
                     tmp / "runs", extra, rates, args.reference_epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
